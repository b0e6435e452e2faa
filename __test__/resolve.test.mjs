// resolveOboToken against the local IdP with real JS provider callbacks: every failure
// reason, the federated fallback, forceRefresh, expiry edges, instanceof, fromEnv.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { CLIENTS } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES, OboTokenService, OboExchangeError } from './helpers.mjs'
import obo from '../index.js'

const { resolveOboToken, OboTokenResolutionError } = obo
const ctx = useIdp()
const alice = { openidId: 'alice', provider: 'openid' }
const config = { scopes: FILES }
const inSeconds = (s) => Math.floor(Date.now() / 1000) + s

/** A live-session provider that resolves to alice's token set. */
async function aliceSession(idp, ttl = 3600) {
  const access_token = await idp.mintUserToken('alice', { ttlSeconds: ttl })
  return {
    tokens: { access_token, id_token: 'id', expires_at: inSeconds(ttl) },
    provider: async () => ({ access_token, expires_at: inSeconds(ttl) }),
  }
}

async function failure(promise, reason, retryable, message) {
  const err = await rejection(promise)
  assert.ok(err instanceof OboTokenResolutionError, `${err}`)
  assert.ok(err instanceof Error)
  assert.equal(err.name, 'OboTokenResolutionError')
  assert.equal(err.reason, reason)
  assert.equal(err.retryable, retryable)
  assert.equal(err.userMessage, message)
  assert.equal(err.message, message)
  return err
}

describe('resolveOboToken', () => {
  it('exchanges the live session token through a service and stamps LibreChat expiry', async () => {
    const { service } = newService(ctx.idp)
    const { provider } = await aliceSession(ctx.idp)
    const before = Date.now()
    const tokens = await resolveOboToken(alice, config, service, provider)
    assert.deepEqual(Object.keys(tokens).sort(), ['access_token', 'expires_at', 'obtained_at', 'token_type'])
    assert.equal(tokens.token_type, 'Bearer')
    assert.ok(tokens.obtained_at >= before && tokens.obtained_at <= Date.now())
    const cached = await service.exchangeOboToken(alice, (await provider()).access_token, FILES)
    assert.equal(tokens.expires_at, cached.expires_at - 30_000)
    assert.equal((await ctx.idp.verify(tokens.access_token, 'api://mcp-files')).sub, 'alice')
  })

  it('gives the same result with a service and with its bound exchangeOboToken', async () => {
    const { service } = newService(ctx.idp)
    const { provider } = await aliceSession(ctx.idp)
    const viaService = await resolveOboToken(alice, config, service, provider)
    const viaFunction = await resolveOboToken(alice, config, service.exchangeOboToken.bind(service), provider)
    assert.equal(viaFunction.access_token, viaService.access_token)
    assert.equal(viaFunction.expires_at, viaService.expires_at)
    assert.equal(ctx.idp.counters.obo, 1)
  })

  it('passes LibreChat resolver arguments, with fromCache=false on forceRefresh', async () => {
    const calls = []
    const resolver = async (...args) => {
      calls.push(args)
      return { access_token: 'downstream', expires_in: 3600 }
    }
    const context = { openidSubject: 'alice' }
    const { provider, tokens } = await aliceSession(ctx.idp)
    await resolveOboToken(alice, config, resolver, provider, context)
    await resolveOboToken(alice, config, resolver, provider, context, true)
    assert.deepEqual(calls, [
      [alice, tokens.access_token, FILES, true, context],
      [alice, tokens.access_token, FILES, false, context],
    ])
  })

  it('forceRefresh makes a new IdP request while the cache holds a token', async () => {
    const { service } = newService(ctx.idp)
    const { provider } = await aliceSession(ctx.idp)
    const first = await resolveOboToken(alice, config, service, provider)
    const again = await resolveOboToken(alice, config, service, provider)
    assert.equal(again.access_token, first.access_token)
    assert.equal(ctx.idp.counters.obo, 1)
    const forced = await resolveOboToken(alice, config, service, provider, undefined, true)
    assert.notEqual(forced.access_token, first.access_token)
    assert.equal(ctx.idp.counters.obo, 2)
  })

  it('falls back to federatedTokens, then openidTokens, when there is no live session', async () => {
    const { service } = newService(ctx.idp)
    const { tokens } = await aliceSession(ctx.idp)
    const noSession = async () => null
    const federated = await resolveOboToken({ ...alice, federatedTokens: tokens }, config, service, noSession)
    assert.equal((await ctx.idp.verify(federated.access_token, 'api://mcp-files')).sub, 'alice')
    const openid = await resolveOboToken({ openidId: 'alice', openidTokens: tokens }, config, service, noSession)
    assert.equal(openid.access_token, federated.access_token)
    await failure(
      resolveOboToken({ federatedTokens: tokens }, config, service, noSession),
      'missing_upstream_token',
      false,
      'No valid OpenID access token is available for OBO exchange.',
    )
    assert.equal(ctx.idp.counters.obo, 1)
  })

  it("reads federatedTokens only when it holds access_token, id_token or expires_at, as LibreChat's extractOpenIDTokenInfo", async () => {
    const { service } = newService(ctx.idp)
    const { tokens } = await aliceSession(ctx.idp)
    const noSession = async () => null
    const verified = async (tokenSet) => (await ctx.idp.verify(tokenSet.access_token, 'api://mcp-files')).sub
    const empty = await resolveOboToken({ ...alice, federatedTokens: {}, openidTokens: tokens }, config, service, noSession)
    assert.equal(await verified(empty), 'alice', 'federatedTokens: {} falls through to openidTokens')
    for (const federatedTokens of [{ refresh_token: 'r' }, null, [], 'a string']) {
      const other = await resolveOboToken({ ...alice, federatedTokens, openidTokens: tokens }, config, service, noSession)
      assert.equal(other.access_token, empty.access_token, `federatedTokens: ${JSON.stringify(federatedTokens)} falls through`)
    }
    const missing = 'No valid OpenID access token is available for OBO exchange.'
    for (const federatedTokens of [{ expires_at: inSeconds(600) }, { id_token: 'id' }, { access_token: undefined }, { access_token: '' }]) {
      // A token set without an access token is chosen, and is not valid: LibreChat does not go on to openidTokens.
      await failure(
        resolveOboToken({ ...alice, federatedTokens, openidTokens: tokens }, config, service, noSession),
        'missing_upstream_token',
        false,
        missing,
      )
    }
    await failure(
      resolveOboToken({ ...alice, federatedTokens: {}, openidTokens: {} }, config, service, noSession),
      'missing_upstream_token',
      false,
      missing,
    )
    assert.equal(ctx.idp.counters.token, 1)
  })

  describe('failure reasons', () => {
    const missing = 'No valid OpenID access token is available for OBO exchange.'

    it('missing_upstream_token: no session and no snapshot, or a token within 30 s of expiry', async () => {
      const { service } = newService(ctx.idp)
      await failure(
        resolveOboToken(alice, config, service, async () => null),
        'missing_upstream_token',
        false,
        missing,
      )
      const access_token = await ctx.idp.mintUserToken('alice')
      const nearlyExpired = async () => ({ access_token, expires_at: inSeconds(25) })
      await failure(resolveOboToken(alice, config, service, nearlyExpired), 'missing_upstream_token', false, missing)
      const expiredSnapshot = { ...alice, federatedTokens: { access_token, expires_at: inSeconds(-60) } }
      await failure(
        resolveOboToken(expiredSnapshot, config, service, async () => null),
        'missing_upstream_token',
        false,
        missing,
      )
      await failure(
        resolveOboToken(alice, config, service, async () => 'not a token set'),
        'missing_upstream_token',
        false,
        missing,
      )
      const stringExpiry = async () => ({ access_token, expires_at: String(inSeconds(-5)) })
      await failure(resolveOboToken(alice, config, service, stringExpiry), 'missing_upstream_token', false, missing)
      const valid = await resolveOboToken(alice, config, service, async () => ({ access_token, expires_at: inSeconds(31) }))
      assert.ok(valid.access_token)
      assert.equal(ctx.idp.counters.token, 1)
    })

    it('missing_upstream_access_token: a token set without access_token', async () => {
      const { service } = newService(ctx.idp)
      await failure(
        resolveOboToken(alice, config, service, async () => ({ id_token: 'id', expires_at: inSeconds(600) })),
        'missing_upstream_access_token',
        false,
        'The upstream OpenID access token is missing for OBO exchange.',
      )
    })

    it('session_refresh_failed: retryable when the rejection looks transient', async () => {
      const { service } = newService(ctx.idp)
      const temporary = 'Temporary sign-in session refresh failure.'
      const expired = 'Your sign-in session expired and could not be refreshed. Please sign in again.'
      for (const [thrown, retryable] of [
        [Object.assign(new Error('refresh failed'), { status: 503 }), true],
        [Object.assign(new Error('refresh failed'), { response: { status: 429 } }), true],
        [Object.assign(new Error('fetch failed'), { cause: { code: 'ECONNRESET' } }), true],
        [new Error('The operation timed out'), true],
        [Object.assign(new Error('odd'), { retryable: true }), true],
        [Object.assign(new Error('invalid_grant'), { status: 400 }), false],
        [Object.assign(new Error('socket hang up'), { retryable: false }), false],
        ['a string', false],
      ]) {
        const err = await failure(
          resolveOboToken(alice, config, service, async () => {
            throw thrown
          }),
          'session_refresh_failed',
          retryable,
          retryable ? temporary : expired,
        )
        assert.equal(err.cause, thrown)
      }
    })

    it('session_refresh_failed when the provider throws synchronously', async () => {
      const { service } = newService(ctx.idp)
      const thrown = new Error('session store down')
      const err = await failure(
        resolveOboToken(alice, config, service, () => {
          throw thrown
        }),
        'session_refresh_failed',
        false,
        'Your sign-in session expired and could not be refreshed. Please sign in again.',
      )
      assert.equal(err.cause, thrown)
    })

    it('empty_exchange_response: from a resolver answer, a tagged error, or the IdP', async () => {
      const message = 'The identity provider returned no access token for the OBO exchange.'
      const { provider } = await aliceSession(ctx.idp)
      await failure(
        resolveOboToken(alice, config, async () => ({ expires_in: 3600 }), provider),
        'empty_exchange_response',
        false,
        message,
      )
      await failure(
        resolveOboToken(alice, config, async () => null, provider),
        'empty_exchange_response',
        false,
        message,
      )
      const tagged = Object.assign(new Error('no token'), { oboFailureReason: 'empty_exchange_response', retryable: false })
      const err = await failure(
        resolveOboToken(alice, config, async () => Promise.reject(tagged), provider),
        'empty_exchange_response',
        false,
        message,
      )
      assert.equal(err.cause, tagged)
      const { service } = newService(ctx.idp)
      ctx.idp.injectFaults({ status: 200, body: { token_type: 'Bearer' } })
      const fromIdp = await failure(resolveOboToken(alice, config, service, provider), 'empty_exchange_response', false, message)
      assert.ok(fromIdp.cause instanceof OboExchangeError)
    })

    it('exchange_failed: permanent IdP answers, with the IdP fields on the cause', async () => {
      const { service } = newService(ctx.idp)
      const access_token = await ctx.idp.mintUserToken('carol')
      const err = await failure(
        resolveOboToken({ openidId: 'carol' }, config, service, async () => ({ access_token })),
        'exchange_failed',
        false,
        'The identity provider rejected the OBO token exchange.',
      )
      assert.equal(err.cause.error, 'invalid_grant')
      assert.equal(err.cause.suberror, 'consent_required')
      assert.deepEqual(err.cause.error_codes, [65001])
    })

    it('exchange_failed: transient IdP failures stay retryable', async () => {
      const { service } = newService(ctx.idp)
      const { provider } = await aliceSession(ctx.idp)
      ctx.idp.injectFaults({ status: 503 }, { status: 503 })
      const err = await failure(
        resolveOboToken(alice, config, service, provider),
        'exchange_failed',
        true,
        'Temporary OBO token exchange failure.',
      )
      assert.equal(err.cause.status, 503)
      assert.equal(ctx.idp.counters.token, 2)
    })

    it('exchange_failed: an already-expired answer is retryable', async () => {
      const { provider } = await aliceSession(ctx.idp)
      const message = 'The identity provider returned an already-expired token for the OBO exchange.'
      const past = async () => ({ access_token: 'x', expires_at: Date.now() - 1000, expires_in: 3600 })
      await failure(resolveOboToken(alice, config, past, provider), 'exchange_failed', true, message)
      const zero = async () => ({ access_token: 'x', expires_in: 0 })
      await failure(resolveOboToken(alice, config, zero, provider), 'exchange_failed', true, message)
    })

    it('a resolver that throws synchronously is an exchange failure, not a crash', async () => {
      const { provider } = await aliceSession(ctx.idp)
      const thrown = Object.assign(new Error('boom'), { code: 'ETIMEDOUT' })
      const err = await failure(
        resolveOboToken(
          alice,
          config,
          () => {
            throw thrown
          },
          provider,
        ),
        'exchange_failed',
        true,
        'Temporary OBO token exchange failure.',
      )
      assert.equal(err.cause, thrown)
    })
  })

  it('applies LibreChat expiry arithmetic at its edges', async () => {
    const { provider } = await aliceSession(ctx.idp)
    const resolve = (answer) => resolveOboToken(alice, config, async () => ({ access_token: 'x', ...answer }), provider)
    const lifetime = async (answer) => {
      const tokens = await resolve(answer)
      return tokens.expires_at - tokens.obtained_at
    }
    assert.equal(await lifetime({ expires_in: 300 }), 270_000)
    assert.equal(await lifetime({ expires_in: '300' }), 270_000)
    assert.equal(await lifetime({ expires_in: 10 }), 1_000)
    assert.equal(await lifetime({}), 3_570_000)
    const absolute = Date.now() + 120_000
    assert.equal((await resolve({ expires_in: 3600, expires_at: absolute })).expires_at, absolute - 30_000)
  })

  it('rejects bad arguments with TypeErrors naming them', async () => {
    const { service } = newService(ctx.idp)
    const provider = async () => null
    const cases = [
      [[alice, undefined, service, provider], 'oboConfig must be an object, got undefined'],
      [[alice, { scopes: 7 }, service, provider], 'oboConfig.scopes must be a string, got number'],
      [[alice, config, {}, provider], 'resolver must be an OboTokenService or a function, got object'],
      [[alice, config, service, 'session'], 'upstreamTokenProvider must be a function, got string'],
      [[alice, config, service, provider, undefined, 'yes'], 'forceRefresh must be a boolean, got string'],
      [[alice, config, service, provider, undefined, false, 'signal'], 'options must be an object, got string'],
      [[alice, config, service, provider, undefined, false, { signal: {} }], 'options.signal must be an AbortSignal, got object'],
    ]
    for (const [args, message] of cases) {
      const err = await rejection(resolveOboToken(...args))
      assert.ok(err instanceof TypeError)
      assert.equal(err.message, message)
    }
  })

  it('OboTokenResolutionError can be built by callers, as LibreChat does', () => {
    const err = new OboTokenResolutionError('session_refresh_failed', 'Retry later', true)
    assert.ok(err instanceof Error && err instanceof OboTokenResolutionError)
    assert.deepEqual(
      [err.reason, err.retryable, err.userMessage, err.message, err.cause],
      ['session_refresh_failed', true, 'Retry later', 'Retry later', undefined],
    )
  })
})

describe('OboTokenService.fromEnv', () => {
  const env = () => ({
    OPENID_ISSUER: ctx.idp.issuer,
    OPENID_CLIENT_ID: CLIENTS.basic.clientId,
    OPENID_CLIENT_SECRET: CLIENTS.basic.clientSecret,
    OPENID_TOKEN_ENDPOINT_AUTH_METHOD: 'client_secret_basic',
    LIBRECHAT_OBO_MAX_RETRIES: '0',
  })

  it("reads LibreChat's variables and the package's extras", async () => {
    const service = OboTokenService.fromEnv(env())
    const assertion = await ctx.idp.mintUserToken('alice', { aud: `api://${CLIENTS.basic.clientId}` })
    ctx.idp.injectFaults({ status: 503 })
    const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
    assert.equal(err.status, 503)
    assert.equal(ctx.idp.counters.token, 1, 'LIBRECHAT_OBO_MAX_RETRIES=0 was applied')
    const token = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal((await ctx.idp.verify(token.access_token, 'api://mcp-files')).azp, CLIENTS.basic.clientId)
  })

  it('names a missing or malformed variable', () => {
    const { OPENID_ISSUER, ...withoutIssuer } = env()
    void OPENID_ISSUER
    assert.throws(() => OboTokenService.fromEnv(withoutIssuer), { message: 'OPENID_ISSUER is required' })
    assert.throws(() => OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_MAX_RETRIES: 'two' }), {
      message: "LIBRECHAT_OBO_MAX_RETRIES must be a whole number, got 'two'",
    })
    assert.throws(() => OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_MAX_RETRIES: '99' }), {
      message: /^LIBRECHAT_OBO_MAX_RETRIES \(options\.maxRetries must be an integer from 0 to 10, got 99\)$/,
    })
    assert.throws(() => OboTokenService.fromEnv({ ...env(), PROXY: 'ftp://proxy' }), {
      message: /^PROXY \(options\.proxy must be an http\(s\) URL/,
    })
    assert.throws(() => OboTokenService.fromEnv({ ...env(), OPENID_CLIENT_SECRET: '' }), {
      message: /^OPENID_CLIENT_SECRET \(options\.clientSecret is required/,
    })
  })

  it('reads LIBRECHAT_OBO_REFRESH_AHEAD as a fraction or false', () => {
    assert.throws(() => OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_REFRESH_AHEAD: 'soon' }), {
      message: "LIBRECHAT_OBO_REFRESH_AHEAD must be a number such as 0.8, or false, got 'soon'",
    })
    assert.throws(() => OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_REFRESH_AHEAD: '1.5' }), {
      message: /^LIBRECHAT_OBO_REFRESH_AHEAD \(options\.refreshAhead must be a fraction/,
    })
    assert.ok(OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_REFRESH_AHEAD: 'false' }))
    assert.ok(OboTokenService.fromEnv({ ...env(), LIBRECHAT_OBO_REFRESH_AHEAD: '0.9' }))
  })
})
