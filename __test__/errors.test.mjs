// What callers see when things go wrong: IdP error fields, argument errors, logging.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { CLIENTS } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES, OboTokenService, OboExchangeError } from './helpers.mjs'
import serviceModule from '../lib/service.js'

const ctx = useIdp()
const alice = { openidId: 'alice' }

describe('IdP errors reach JavaScript', () => {
  it('carries interaction_required with its claims challenge, not retryable', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('bob')
    const err = await rejection(service.exchangeOboToken({ openidId: 'bob' }, assertion, FILES))
    assert.ok(err instanceof OboExchangeError && err instanceof Error)
    assert.equal(err.name, 'OboExchangeError')
    assert.equal(err.status, 400)
    assert.equal(err.error, 'interaction_required')
    assert.match(err.error_description, /^AADSTS50076: /)
    assert.deepEqual(err.error_codes, [50076])
    assert.equal(err.suberror, 'basic_action')
    assert.deepEqual(JSON.parse(err.claims).access_token.capolids.values, ['mfa-policy-1'])
    assert.match(err.trace_id, /^[0-9a-f-]{36}$/)
    assert.match(err.correlation_id, /^[0-9a-f-]{36}$/)
    assert.equal(err.retryable, false)
    assert.equal(err.oboFailureReason, 'exchange_failed')
    assert.match(err.message, /interaction_required\): AADSTS50076: /)
    assert.ok(!err.message.includes(assertion))
    assert.equal(err.wwwAuthenticate, `Bearer error="insufficient_claims", claims="${Buffer.from(err.claims).toString('base64')}"`)
    assert.equal(ctx.idp.counters.token, 1)
  })

  /** `err.cause` is the HTTP client's error with its own causes, each one in the message and none holding a secret or the URL. */
  function assertCausedBelowHttp(err, secrets) {
    const chain = []
    for (let cause = err.cause; cause && chain.length < 10; cause = cause.cause) chain.push(cause)
    assert.ok(chain.length >= 2, `the HTTP client's errors, each with its own cause: ${err.message}`)
    for (const cause of chain) {
      assert.ok(cause instanceof Error)
      assert.ok(err.message.includes(cause.message), `${cause.message} is in the message: ${err.message}`)
      for (const secret of [...secrets, '127.0.0.1:9']) assert.ok(!cause.message.includes(secret))
    }
  }

  it('keeps the causes of a failure below HTTP as its cause chain, with no secret at any level', async () => {
    const { service } = newService(ctx.idp, { tokenEndpoint: 'http://127.0.0.1:9/token', maxRetries: 0 })
    const assertion = await ctx.idp.mintUserToken('alice')
    const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
    assert.equal(err.code, 'ECONNREFUSED')
    assertCausedBelowHttp(err, [assertion, CLIENTS.post.clientSecret])
  })

  it('keeps the causes of a discovery that could not connect, as a token request does', async () => {
    const { service } = newService(ctx.idp, { issuer: 'http://127.0.0.1:9', maxRetries: 0 })
    const assertion = await ctx.idp.mintUserToken('alice')
    const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
    assert.ok(err instanceof OboExchangeError)
    assert.equal(err.code, 'ERR_IDP_DISCOVERY')
    assert.equal(err.retryable, true)
    assert.match(err.message, /^OpenID discovery failed for http:\/\/127\.0\.0\.1:9: the discovery request could not connect/)
    assertCausedBelowHttp(err, [assertion, CLIENTS.post.clientSecret])
  })

  it('offers a WWW-Authenticate value for missing consent, and none for other errors', async () => {
    const { service } = newService(ctx.idp)
    const consent = await rejection(service.exchangeOboToken({ openidId: 'carol' }, await ctx.idp.mintUserToken('carol'), FILES))
    assert.equal(consent.wwwAuthenticate, 'Bearer error="insufficient_claims"')
    const badScope = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), 'api://mcp-files/nope'))
    assert.equal(badScope.wwwAuthenticate, undefined)
  })

  it('passes a claims answer to the IdP and bypasses the cache for it', async () => {
    const { service } = newService(ctx.idp)
    const bob = { openidId: 'bob' }
    const challenged = await rejection(service.exchangeOboToken(bob, await ctx.idp.mintUserToken('bob'), FILES))
    // The client completes MFA and comes back with a new upstream token and the claims.
    const afterMfa = await ctx.idp.mintUserToken('bob', { amr: ['pwd', 'mfa'] })
    const cached = await service.exchangeOboToken(bob, afterMfa, FILES)
    assert.equal(ctx.idp.lastClaims(), undefined)
    const answered = await service.exchangeOboToken(bob, afterMfa, FILES, true, undefined, { claims: challenged.claims })
    assert.equal(ctx.idp.lastClaims(), challenged.claims)
    assert.notEqual(answered.access_token, cached.access_token)
    assert.equal(ctx.idp.counters.obo, 3)
    const next = await service.exchangeOboToken(bob, afterMfa, FILES)
    assert.equal(next.access_token, answered.access_token, 'the answer was cached')
    assert.equal(ctx.idp.counters.obo, 3)
    const badClaims = await rejection(service.exchangeOboToken(bob, afterMfa, FILES, true, undefined, { claims: '{not json' }))
    assert.equal(badClaims.error, 'invalid_request')
    await assert.rejects(service.exchangeOboToken(bob, afterMfa, FILES, true, undefined, { claims: 5 }), {
      name: 'TypeError',
      message: 'options.claims must be a string, got number',
    })
  })

  for (const [name, user, scopes, error, code] of [
    ['missing consent', 'carol', FILES, 'invalid_grant', 65001],
    ['an unknown resource', 'alice', 'api://nobody/read', 'invalid_resource', 500011],
    ['a bad scope', 'alice', 'api://mcp-files/files.delete', 'invalid_scope', 70011],
    ['two resources in one scope string', 'alice', `${FILES} api://mcp-mail/mail.read`, 'invalid_request', 700022],
  ]) {
    it(`reports ${name} as ${error} (${code}) after one request`, async () => {
      const { service } = newService(ctx.idp)
      const err = await rejection(service.exchangeOboToken({ openidId: user }, await ctx.idp.mintUserToken(user), scopes))
      assert.equal(err.error, error)
      assert.deepEqual(err.error_codes, [code])
      assert.equal(err.retryable, false)
      assert.equal(ctx.idp.counters.token, 1)
    })
  }

  it('reports an assertion for another app and a tampered assertion as invalid_grant 50013', async () => {
    const { service } = newService(ctx.idp)
    const foreign = await ctx.idp.mintUserToken('alice', { aud: 'api://someone-else' })
    const valid = await ctx.idp.mintUserToken('alice')
    const tampered = valid.slice(0, -4) + (valid.endsWith('AAAA') ? 'BBBB' : 'AAAA')
    for (const assertion of [foreign, tampered]) {
      const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
      assert.deepEqual([err.error, err.error_codes], ['invalid_grant', [50013]])
    }
  })

  it('reports a wrong client secret as invalid_client, status 401, without the secret', async () => {
    const secret = 'definitely-wrong-secret'
    const { service, logs } = newService(ctx.idp, { clientSecret: secret })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assert.equal(err.status, 401)
    assert.equal(err.error, 'invalid_client')
    assert.deepEqual(err.error_codes, [7000215])
    assert.equal(err.retryable, false)
    assert.ok(!JSON.stringify({ ...err, message: err.message }).includes(secret))
    assert.ok(!logs.some((l) => l.message.includes(secret)))
  })

  it('getGraphApiToken prefixes the message and keeps the tags and IdP fields', async () => {
    const { service, logs } = newService(ctx.idp)
    const ok = await service.getGraphApiToken(alice, await ctx.idp.mintUserToken('alice'), 'User.Read Mail.Read')
    assert.equal((await ctx.idp.verify(ok.access_token, 'https://graph.microsoft.com')).scp, 'User.Read Mail.Read')

    const err = await rejection(service.getGraphApiToken({ openidId: 'carol' }, await ctx.idp.mintUserToken('carol'), 'User.Read'))
    assert.match(
      err.message,
      /^Graph token acquisition failed: The identity provider rejected the OBO exchange \(HTTP 400, invalid_grant\): AADSTS65001/,
    )
    assert.ok(err instanceof OboExchangeError)
    assert.equal(err.retryable, false)
    assert.equal(err.oboFailureReason, 'exchange_failed')
    assert.equal(err.suberror, 'consent_required')
    assert.ok(err.cause instanceof OboExchangeError)
    assert.ok(logs.some((l) => l.level === 'error' && l.message === '[GraphTokenService] Failed to acquire Graph API token for user carol'))

    const bad = await rejection(service.getGraphApiToken(alice, '', 'User.Read'))
    assert.equal(bad.message, 'Graph token acquisition failed: Access token is required for OBO exchange')
  })

  it('never logs or reports a token, an assertion or the secret', async () => {
    const { service, logs } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const token = await service.exchangeOboToken(alice, assertion, FILES)
    ctx.idp.injectFaults({ status: 503 }, { status: 503 })
    const err = await rejection(service.exchangeOboToken(alice, assertion, FILES, false))
    const everything = JSON.stringify(logs) + err.message + JSON.stringify(err)
    for (const secret of [assertion, token.access_token, CLIENTS.post.clientSecret]) {
      assert.ok(!everything.includes(secret))
    }
    assert.ok(logs.some((l) => l.level === 'warn' && /retrying in \d+ ms/.test(l.message)))
  })
})

describe('bad arguments get errors that name them', () => {
  const service = () => newService(ctx.idp).service

  it('keeps LibreChat messages for missing values, in LibreChat order', async () => {
    const svc = service()
    const message = async (...args) => (await rejection(svc.exchangeOboToken(...args))).message
    assert.equal(await message(alice, '', FILES), 'Access token is required for OBO exchange')
    assert.equal(await message(alice, undefined, ''), 'Access token is required for OBO exchange')
    assert.equal(await message(alice, 'token', ''), 'Scopes are required for OBO exchange')
    assert.equal(await message(alice, 'token', '   '), 'Scopes are required for OBO exchange')
    const notOpenId = 'User must be authenticated via OpenID to perform OBO token exchange'
    assert.equal(await message({ email: 'a@example.com' }, 'token', FILES), notOpenId)
    assert.equal(await message(undefined, 'token', FILES), notOpenId)
    assert.equal(await message({ openidId: '  ' }, 'token', FILES), notOpenId)
    assert.equal(ctx.idp.counters.token, 0)
  })

  it("names the refused argument in a field, under this package's code", async () => {
    const svc = service()
    const refusal = (...args) => rejection(svc.exchangeOboToken(...args))
    const cases = [
      [[alice, '', FILES], 'accessToken'],
      [[alice, 'token', ' '], 'scopes'],
      [[{ email: 'a@example.com' }, 'token', FILES], 'user'],
      [[alice, 'token', 'a\u001fb'], 'scopes'],
      [[alice, 'token', FILES, true, undefined, { audience: 'a\u001fb' }], 'options.audience'],
      [[alice, 'token', FILES, true, undefined, { audience: 7 }], 'options.audience'],
      [[alice, 'token', 5], 'scopes'],
      [[{ openidId: 42 }, 'token', FILES], 'user.openidId'],
    ]
    for (const [args, argument] of cases) {
      const err = await refusal(...args)
      assert.equal(err.code, 'ERR_INVALID_ARG', err.message)
      assert.equal(err.argument, argument, err.message)
      assert.ok(err instanceof Error)
    }
    assert.throws(() => svc.invalidate({ openidId: 'a\u001fb' }), { code: 'ERR_INVALID_ARG', argument: 'user.openidId' })
  })

  it('an ID-JAG chain asked of a service that is not id_jag names grantType, by value', async () => {
    const err = await rejection(serviceModule.chainOf(service(), 'https://mcp.example.com/mcp'))
    assert.ok(err instanceof OboExchangeError)
    assert.deepEqual([err.code, err.option, err.message], ['ERR_INVALID_OPTION', 'grantType', "the service's grantType is not 'id_jag'"])
  })

  it("names the refused option in a field, from JS's checks and Rust's alike", () => {
    const base = { issuer: ctx.idp.issuer, clientId: 'middle-tier', clientSecret: 's' }
    const cases = [
      [{ ...base, issuer: undefined }, 'issuer'],
      [{ ...base, issuer: 42 }, 'issuer'],
      [{ ...base, clientID: 'typo' }, 'clientID'],
      [{ ...base, maxRetries: -1 }, 'maxRetries'],
      [{ ...base, grantType: 'id_jag', authorizationServer: { clientId: 'a' } }, 'authorizationServer.clientSecret'],
      [{ ...base, sharedCache: { url: 'http://x', encryptionKeys: ['0'.repeat(64)] } }, 'sharedCache.url'],
    ]
    for (const [options, option] of cases) {
      assert.throws(
        () => new OboTokenService(options),
        (err) => {
          assert.equal(err.code, 'ERR_INVALID_OPTION', err.message)
          assert.equal(err.option, option, err.message)
          assert.equal(err.argument, undefined)
          return true
        },
      )
    }
  })

  it('rejects wrong types with a TypeError naming the argument', async () => {
    const svc = service()
    const cases = [
      [[alice, 'token', 5], 'scopes must be a string, got number'],
      [[alice, { token: 1 }, FILES], 'accessToken must be a string, got object'],
      [['alice', 'token', FILES], 'user must be an object, got string'],
      [[{ openidId: 42 }, 'token', FILES], 'user.openidId must be a string, got number'],
      [[{ openidId: 'a', tenantId: ['t'] }, 'token', FILES], 'user.tenantId must be a string, got an array'],
      [[alice, 'token', FILES, 'yes'], 'fromCache must be a boolean, got string'],
      [[alice, 'token', FILES, true, 7], 'identityContext must be an object, got number'],
      [[alice, 'token', FILES, true, { openidSubject: 1 }], 'identityContext.openidSubject must be a string, got number'],
    ]
    for (const [args, expected] of cases) {
      const err = await rejection(svc.exchangeOboToken(...args))
      assert.ok(err instanceof TypeError, expected)
      assert.equal(err.message, expected)
    }
    const sep = await rejection(svc.exchangeOboToken(alice, 'token', 'a\u001fb'))
    assert.equal(sep.message, 'scopes must not contain the U+001F character')
    assert.throws(() => svc.invalidate(alice, 3), { name: 'TypeError', message: 'scopes must be a string, got number' })
  })

  it('rejects bad options when the service is built', () => {
    const base = { issuer: ctx.idp.issuer, clientId: 'middle-tier', clientSecret: 's' }
    const cases = [
      [undefined, /^options must be an object, got undefined$/],
      [{ ...base, issuer: undefined }, /^options\.issuer is required$/],
      [{ ...base, issuer: 'idp.example.com' }, /^options\.issuer must be an absolute URL/],
      [{ ...base, issuer: 42 }, /^options\.issuer must be a string, got number$/],
      [{ ...base, clientId: '' }, /^options\.clientId is required$/],
      [{ ...base, clientSecret: undefined }, /^options\.clientSecret is required for client_secret_post$/],
      [
        { ...base, clientAuthMethod: 'tls_client_auth' },
        /^options\.clientAuthMethod must be 'client_secret_post', 'client_secret_basic' or 'private_key_jwt'/,
      ],
      [{ ...base, clientAuthMethod: 'private_key_jwt' }, /^options\.clientAssertionKey is required for private_key_jwt$/],
      [
        {
          ...base,
          clientAuthMethod: 'private_key_jwt',
          clientAssertionKey: '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----',
          clientAssertionKeyId: 'k',
        },
        /^options\.clientAssertionKey is not a PEM RSA or EC private key$/,
      ],
      [
        { ...base, grantType: 'password' },
        /^options\.grantType must be 'jwt_bearer', 'token_exchange', 'id_jag' or 'auto', got 'password'$/,
      ],
      [
        { ...base, grantType: 'auto', tokenEndpoint: `${ctx.idp.issuer}/token` },
        /^options\.grantType 'auto' reads grant_types_supported from discovery/,
      ],
      [
        { ...base, subjectTokenType: 'urn:ietf:params:oauth:token-type:jwt' },
        /^options\.subjectTokenType applies only to grantType 'token_exchange' or 'auto'$/,
      ],
      [
        { ...base, grantType: 'token_exchange', requestedTokenType: 'access token' },
        /^options\.requestedTokenType must be a token type URI/,
      ],
      [{ ...base, maxRetries: -1 }, /^options\.maxRetries must be an integer from 0 to 10, got -1$/],
      [{ ...base, retryDelayMs: 1.5 }, /^options\.retryDelayMs must be an integer/],
      [{ ...base, expiryBufferSeconds: '30' }, /^options\.expiryBufferSeconds must be a number, got string$/],
      [{ ...base, proxy: 'socks://x' }, /^options\.proxy must be an http\(s\) URL/],
      [{ ...base, logger: 'console' }, /^options\.logger must be a function or an object/],
      [{ ...base, clientID: 'typo' }, /^options\.clientID is not a known option/],
      [{ ...base, grantType: 'id_jag' }, /^options\.authorizationServer is required for grantType 'id_jag'/],
      [
        { ...base, authorizationServer: { clientId: 'a', clientSecret: 's' } },
        /^options\.authorizationServer applies only to grantType 'id_jag'$/,
      ],
      [{ ...base, grantType: 'id_jag', authorizationServer: 'as' }, /^options\.authorizationServer must be an object, got string$/],
      [
        { ...base, grantType: 'id_jag', authorizationServer: { clientID: 'a' } },
        /^options\.authorizationServer\.clientID is not a known option/,
      ],
      [
        { ...base, grantType: 'id_jag', authorizationServer: { clientId: 7 } },
        /^options\.authorizationServer\.clientId must be a string, got number$/,
      ],
      [
        { ...base, grantType: 'id_jag', authorizationServer: { clientId: 'a' } },
        /^options\.authorizationServer\.clientSecret is required for client_secret_post$/,
      ],
      [
        { ...base, grantType: 'id_jag', authorizationServer: { clientId: 'a', clientSecret: 's', issuer: 'as.example' } },
        /^options\.authorizationServer\.issuer must be an absolute URL/,
      ],
    ]
    for (const [options, expected] of cases) {
      assert.throws(() => new OboTokenService(options), { message: expected })
    }
    assert.doesNotThrow(() => new OboTokenService({ ...base, proxy: 'http://127.0.0.1:3128', logger: console }))
  })
})

describe('the logger', () => {
  it('accepts LibreChat logger objects', async () => {
    const lines = []
    const logger = { debug: (m) => lines.push(['debug', m]), warn: (m) => lines.push(['warn', m]), error: (m) => lines.push(['error', m]) }
    const { service } = newService(ctx.idp, { logger })
    await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    await new Promise((resolve) => setTimeout(resolve, 50))
    assert.ok(lines.some(([level, m]) => level === 'debug' && m.includes('Requesting new OBO token for user: alice')))
  })

  it('a throwing logger does not take the process down', () => {
    const child = spawnSync(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `
        import { startIdp, CLIENTS } from './__test__/idp/index.mjs'
        import obo from './index.js'
        const idp = await startIdp()
        const service = new obo.OboTokenService({ issuer: idp.issuer, clientId: CLIENTS.post.clientId,
          clientSecret: CLIENTS.post.clientSecret, logger: () => { throw new Error('logger broke') } })
        const token = await service.exchangeOboToken({ openidId: 'alice' }, await idp.mintUserToken('alice'), 'api://mcp-files/files.read')
        await new Promise((r) => setTimeout(r, 100))
        console.log('survived', token.token_type)
        await idp.close()
        `,
      ],
      { cwd: new URL('..', import.meta.url), encoding: 'utf8', timeout: 20_000 },
    )
    assert.equal(child.status, 0, child.stderr)
    assert.match(child.stdout, /survived Bearer/)
  })
})
