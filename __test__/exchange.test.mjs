// Real exchanges against the local IdP: tokens, cache, single-flight, retry, expiry.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import * as jose from 'jose'
import { CLIENTS, TENANT } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES, MAIL, OboExchangeError } from './helpers.mjs'

const ctx = useIdp()
const alice = { openidId: 'alice', tenantId: TENANT }

describe('exchangeOboToken against the local IdP', () => {
  it('returns a token for the downstream resource that verifies against the IdP keys', async () => {
    const { service } = newService(ctx.idp)
    const before = Date.now()
    const token = await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    assert.deepEqual(Object.keys(token).sort(), ['access_token', 'expires_at', 'expires_in', 'scope', 'token_type'])
    assert.equal(token.token_type, 'Bearer')
    assert.equal(token.scope, FILES)
    assert.equal(token.expires_in, 3600)
    assert.ok(token.expires_at >= before + 3_600_000 && token.expires_at <= Date.now() + 3_600_000)
    const claims = await ctx.idp.verify(token.access_token, 'api://mcp-files')
    assert.equal(claims.sub, 'alice')
    assert.equal(claims.azp, CLIENTS.post.clientId)
    assert.equal(claims.scp, 'files.read')
    assert.equal(claims.tid, TENANT)
  })

  it('works with client_secret_basic', async () => {
    const { service } = newService(ctx.idp, {}, CLIENTS.basic)
    const assertion = await ctx.idp.mintUserToken('alice', { aud: `api://${CLIENTS.basic.clientId}` })
    const token = await service.exchangeOboToken(alice, assertion, MAIL)
    assert.equal((await ctx.idp.verify(token.access_token, 'api://mcp-mail')).sub, 'alice')
  })

  it('answers a second call from the cache without a request', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const first = await service.exchangeOboToken(alice, assertion, FILES)
    const second = await service.exchangeOboToken(alice, assertion, FILES)
    assert.deepEqual(second, first)
    assert.equal(ctx.idp.counters.obo, 1)
    assert.deepEqual(service.stats(), {
      hits: 1,
      misses: 1,
      coalesced: 0,
      exchanges: 1,
      retries: 0,
      failures: 0,
      entries: 1,
      refreshesStarted: 0,
      refreshesSucceeded: 0,
      refreshesFailed: 0,
      servedDuringRefresh: 0,
    })
  })

  it('hits for an equal copy of the assertion string, never for an assertion one character apart', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const first = await service.exchangeOboToken(alice, assertion, FILES)
    const copy = Buffer.from(assertion).toString() // equal text, another string object
    assert.deepEqual(await service.exchangeOboToken(alice, copy, FILES), first)
    // A character inside the signature (the last one may only carry padding bits).
    const at = assertion.length - 10
    const tampered = assertion.slice(0, at) + (assertion[at] === 'A' ? 'B' : 'A') + assertion.slice(at + 1)
    const err = await rejection(service.exchangeOboToken(alice, tampered, FILES))
    assert.ok(err instanceof OboExchangeError)
    assert.deepEqual(err.error_codes, [50013], 'the IdP saw the tampered assertion')
    assert.equal(ctx.idp.counters.obo, 2)
  })

  it('serves a hit whose token string the wrapper no longer remembers (over 1,024 tokens later)', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const first = await service.exchangeOboToken({ openidId: 'user-0' }, assertion, FILES)
    const users = Array.from({ length: 1024 }, (_, i) => ({ openidId: `user-${i + 1}` }))
    for (let i = 0; i < users.length; i += 64) {
      await Promise.all(users.slice(i, i + 64).map((user) => service.exchangeOboToken(user, assertion, FILES)))
    }
    assert.deepEqual(await service.exchangeOboToken({ openidId: 'user-0' }, assertion, FILES), first)
    assert.equal(ctx.idp.counters.obo, 1025)
  })

  it('makes a new request with fromCache=false and caches its result', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const cached = await service.exchangeOboToken(alice, assertion, FILES)
    const forced = await service.exchangeOboToken(alice, assertion, FILES, false)
    assert.notEqual(forced.access_token, cached.access_token)
    assert.equal(ctx.idp.counters.obo, 2)
    const after = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal(after.access_token, forced.access_token)
    assert.equal(ctx.idp.counters.obo, 2)
  })

  it('never shares a token across users, scopes, tenants, issuers or assertions', async () => {
    const { service } = newService(ctx.idp)
    const aliceToken = await ctx.idp.mintUserToken('alice')
    const variants = [
      [alice, aliceToken, FILES],
      [{ openidId: 'bob' }, await ctx.idp.mintUserToken('bob', { amr: ['pwd', 'mfa'] }), FILES],
      [alice, aliceToken, 'api://mcp-files/files.write'],
      [{ ...alice, tenantId: 'other-tenant' }, aliceToken, FILES],
      [{ ...alice, openidIssuer: 'https://other-issuer.example' }, aliceToken, FILES],
      [alice, await ctx.idp.mintUserToken('alice'), FILES],
      [alice, aliceToken, FILES, { openidSubject: 'alice', tenantId: 'context-tenant' }],
    ]
    const tokens = new Set()
    for (const [user, assertion, scopes, context] of variants) {
      tokens.add((await service.exchangeOboToken(user, assertion, scopes, true, context)).access_token)
    }
    assert.equal(tokens.size, variants.length)
    assert.equal(ctx.idp.counters.obo, variants.length)
    assert.equal(service.stats().entries, variants.length)
  })

  it('makes one request for 50 concurrent calls on one key, and all get the same token', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.setOboDelay(100)
    const assertion = await ctx.idp.mintUserToken('alice')
    // Half of the callers pass an equal copy of the context tenant, so they reach the
    // native single-flight table rather than the wrapper's.
    const calls = Array.from({ length: 50 }, (_, i) =>
      service.exchangeOboToken(alice, assertion, FILES, true, i % 2 ? { tenantId: ` ${TENANT}` } : undefined),
    )
    const results = await Promise.all(calls)
    assert.equal(ctx.idp.counters.obo, 1)
    assert.equal(new Set(results.map((r) => r.access_token)).size, 1)
    assert.equal(new Set(results).size, 50, 'each caller gets its own response object')
    const stats = service.stats()
    assert.deepEqual([stats.misses, stats.coalesced, stats.exchanges], [50, 49, 1])
  })

  it('delivers a shared failure to every joiner and caches nothing', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.setOboDelay(100)
    const assertion = await ctx.idp.mintUserToken('carol')
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, () => service.exchangeOboToken({ openidId: 'carol' }, assertion, FILES)),
    )
    assert.equal(ctx.idp.counters.obo, 1)
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected')
      assert.ok(outcome.reason instanceof OboExchangeError)
      assert.equal(outcome.reason.suberror, 'consent_required')
    }
    assert.equal(service.stats().entries, 0)
  })

  it('concurrent first calls for two scopes make two requests, and each gets the token for its own scope', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.setOboDelay(50)
    const assertion = await ctx.idp.mintUserToken('alice')
    // Same user, same assertion, both calls in flight at once: only the scopes tell them apart.
    const calls = [FILES, MAIL, FILES, MAIL].map((scopes) => service.exchangeOboToken(alice, assertion, scopes))
    const results = await Promise.all(calls)
    assert.equal(ctx.idp.counters.obo, 2, 'one request per scope set')
    const expected = [
      ['api://mcp-files', 'files.read', FILES],
      ['api://mcp-mail', 'mail.read', MAIL],
    ]
    for (const [i, result] of results.entries()) {
      const [aud, scp, scope] = expected[i % 2]
      const claims = jose.decodeJwt(result.access_token)
      assert.deepEqual([claims.aud, claims.scp, result.scope], [aud, scp, scope], `call ${i} (${scope}) got the token of its own scope`)
      assert.equal((await ctx.idp.verify(result.access_token, aud)).sub, 'alice')
    }
  })

  it('after a shared failure, the next call with the same arguments asks the IdP again', async () => {
    const { service } = newService(ctx.idp, { maxRetries: 0 })
    ctx.idp.setOboDelay(50)
    const assertion = await ctx.idp.mintUserToken('alice')
    ctx.idp.injectFaults({ status: 503 })
    const joined = Array.from({ length: 5 }, () => service.exchangeOboToken(alice, assertion, FILES))
    // A caller that tries again as soon as it sees the failure must not be handed the finished failure.
    const retriedAtOnce = joined[0].catch(() => service.exchangeOboToken(alice, assertion, FILES))
    const outcomes = await Promise.allSettled(joined)
    assert.equal(ctx.idp.counters.token, 1, 'the five callers shared one request')
    for (const outcome of outcomes) {
      assert.equal(outcome.status, 'rejected')
      assert.deepEqual([outcome.reason.status, outcome.reason.retryable], [503, true])
    }
    const again = await retriedAtOnce
    assert.equal(ctx.idp.counters.token, 2, 'the retry made a new request')
    assert.equal((await ctx.idp.verify(again.access_token, 'api://mcp-files')).sub, 'alice')
    const later = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal(later.access_token, again.access_token, 'and its token is cached')
    assert.equal(ctx.idp.counters.token, 2)
  })

  it('retries a 503 once and succeeds: two requests', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.injectFaults({ status: 503 })
    await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    assert.equal(ctx.idp.counters.token, 2)
    assert.equal(service.stats().retries, 1)
  })

  it('retries a dropped connection', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.injectFaults({ drop: true })
    await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    assert.equal(ctx.idp.counters.token, 2)
  })

  it('gives up after maxRetries with a retryable error', async () => {
    const { service } = newService(ctx.idp, { maxRetries: 2 })
    ctx.idp.injectFaults({ status: 503 }, { status: 502, body: '<html>bad gateway</html>' }, { status: 429 })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assert.equal(ctx.idp.counters.token, 3)
    assert.equal(err.status, 429)
    assert.equal(err.retryable, true)
    assert.equal(err.oboFailureReason, 'exchange_failed')
    assert.equal(service.stats().entries, 0)
  })

  it('times out a slow IdP and retries', async () => {
    // Generous margins: a loaded CI machine must still answer a normal exchange in time.
    const { service } = newService(ctx.idp, { requestTimeoutMs: 1000, maxRetries: 0 })
    ctx.idp.injectFaults({ delayMs: 2500 })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assert.equal(err.code, 'ETIMEDOUT')
    assert.equal(err.retryable, true)

    const { service: patient } = newService(ctx.idp, { requestTimeoutMs: 1000 })
    ctx.idp.injectFaults({ delayMs: 2500 })
    await patient.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    assert.equal(patient.stats().retries, 1)
  })

  it('makes one request for invalid_grant', async () => {
    const { service } = newService(ctx.idp, { maxRetries: 3 })
    const foreign = await ctx.idp.mintUserToken('alice', { aud: 'api://another-app' })
    const err = await rejection(service.exchangeOboToken(alice, foreign, FILES))
    assert.equal(ctx.idp.counters.token, 1)
    assert.equal(err.error, 'invalid_grant')
    assert.deepEqual(err.error_codes, [50013])
    assert.equal(err.retryable, false)
  })

  it('refuses an expired or non-JWT assertion before the network', async () => {
    const { service, logs } = newService(ctx.idp)
    const expired = await ctx.idp.mintUserToken('alice', { ttlSeconds: -60 })
    const late = await rejection(service.exchangeOboToken(alice, expired, FILES))
    assert.ok(late instanceof OboExchangeError)
    assert.equal(late.code, 'ERR_ASSERTION_EXPIRED')
    assert.equal(late.retryable, false)
    assert.equal(late.oboFailureReason, 'exchange_failed')
    assert.match(late.message, /expired at \d+ \(epoch seconds\)/)
    for (const opaque of ['opaque-reference-token', 'a.b.c', `${expired.split('.')[0]}.${expired.split('.')[1]}.`]) {
      const err = await rejection(service.exchangeOboToken(alice, opaque, FILES))
      assert.equal(err.code, 'ERR_ASSERTION_NOT_JWS', opaque)
    }
    assert.equal(ctx.idp.counters.token, 0)
    assert.ok(!JSON.stringify(logs).includes(expired))
    assert.equal(service.stats().failures, 4)
  })

  it('honours Retry-After', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.injectFaults({ status: 429, retryAfter: 1 })
    const started = Date.now()
    await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    assert.ok(Date.now() - started >= 1000, 'waited for Retry-After')
    assert.equal(ctx.idp.counters.token, 2)
  })

  it('does not serve a token whose lifetime is under the buffer', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.setExpiresIn(20)
    const assertion = await ctx.idp.mintUserToken('alice')
    const first = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal(first.expires_in, 20)
    await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal(ctx.idp.counters.obo, 2)

    const { service: lenient } = newService(ctx.idp, { expiryBufferSeconds: 5 })
    await lenient.exchangeOboToken(alice, assertion, FILES)
    await lenient.exchangeOboToken(alice, assertion, FILES)
    assert.equal(ctx.idp.counters.obo, 3)
  })

  it('accepts expires_in as a numeric string, and means 3600 when it is missing', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    ctx.idp.setExpiresIn('1799')
    assert.equal((await service.exchangeOboToken(alice, assertion, FILES)).expires_in, 1799)
    ctx.idp.setExpiresIn(undefined)
    assert.equal((await service.exchangeOboToken(alice, assertion, MAIL)).expires_in, 3600)
  })

  it('caches nothing when the IdP answers without an access token', async () => {
    const { service } = newService(ctx.idp)
    ctx.idp.injectFaults({ status: 200, body: { token_type: 'Bearer', expires_in: 3600 } })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assert.equal(err.oboFailureReason, 'empty_exchange_response')
    assert.equal(err.retryable, false)
    assert.equal(err.message, 'The identity provider returned no access token for the OBO exchange')
    assert.equal(service.stats().entries, 0)
  })

  it('invalidates one user, or one user and scope, and clears all', async () => {
    const { service } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    const bob = { openidId: 'bob' }
    const bobAssertion = await ctx.idp.mintUserToken('bob', { amr: ['mfa'] })
    await service.exchangeOboToken(alice, assertion, FILES)
    await service.exchangeOboToken(alice, assertion, MAIL)
    await service.exchangeOboToken(bob, bobAssertion, FILES)
    assert.equal(service.invalidate(alice, MAIL), 1)
    assert.equal(service.invalidate(alice), 1)
    assert.equal(service.stats().entries, 1)
    await service.exchangeOboToken(bob, bobAssertion, FILES)
    assert.equal(ctx.idp.counters.obo, 3, 'bob is still cached')
    service.clear()
    assert.equal(service.stats().entries, 0)
  })

  it('discovers the token endpoint once; a wrong issuer fails before any token request', async () => {
    const { service } = newService(ctx.idp, { issuer: `${ctx.idp.issuer}/nowhere`, maxRetries: 0 })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assert.match(err.message, /OpenID discovery failed/)
    assert.equal(ctx.idp.counters.token, 0)

    const { service: good } = newService(ctx.idp)
    const assertion = await ctx.idp.mintUserToken('alice')
    await Promise.all([good.exchangeOboToken(alice, assertion, FILES), good.exchangeOboToken(alice, assertion, MAIL)])
    await good.exchangeOboToken(alice, assertion, 'User.Read')
    assert.equal(ctx.idp.counters.discovery, 1)
  })
})
