// Item 2 of issue 15: discovery needs only the discovery document; the JWKS is fetched
// lazily, and only to verify an assertion (`validateAssertion`). These tests assert that
// behaviour against the local IdP with its JWKS endpoint failing on demand.
//
// THEY FAIL until the Rust change lands: today discovery fetches the JWKS as well, so a
// failing JWKS fails every exchange as "OpenID discovery failed".
// The code asserted for a JWKS that cannot be fetched is ERR_JWKS_UNAVAILABLE (retryable,
// oboFailureReason exchange_failed), proposed to the lead with these tests.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { useIdp, newService, rejection, FILES, OboExchangeError } from './helpers.mjs'

const ctx = useIdp()
const alice = { openidId: 'alice' }
const VALIDATE = { audiences: ['api://middle-tier'] }

/** What a JWKS that cannot be fetched must look like to the caller. */
function assertJwksUnavailable(err, what) {
  assert.ok(err instanceof OboExchangeError, `${what}: ${err}`)
  assert.equal(err.code, 'ERR_JWKS_UNAVAILABLE', `${what}: the code names the JWKS (message: ${err.message})`)
  assert.equal(err.retryable, true, what)
  assert.equal(err.oboFailureReason, 'exchange_failed', what)
  assert.match(err.message, /JWKS/, what)
  assert.doesNotMatch(err.message, /OpenID discovery failed/, `${what}: discovery itself worked`)
}

describe('lazy JWKS (fail until the Rust change lands)', () => {
  it('lazy JWKS: a plain exchange needs no JWKS, and succeeds while the JWKS fails', async () => {
    for (const fault of [{ status: 503 }, { status: 404 }]) {
      ctx.idp.resetCounters()
      ctx.idp.setJwksFault(fault)
      const { service } = newService(ctx.idp)
      const token = await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
      assert.equal((await ctx.idp.verify(token.access_token, 'api://mcp-files')).sub, 'alice')
      assert.deepEqual([ctx.idp.counters.discovery, ctx.idp.counters.obo], [1, 1])
      assert.equal(ctx.idp.counters.jwks, 0, `JWKS ${fault.status}: the IdP saw no JWKS request`)
    }
  })

  it('lazy JWKS: with validateAssertion, a JWKS answering 503 fails as ERR_JWKS_UNAVAILABLE, retryable, before any token request', async () => {
    ctx.idp.setJwksFault({ status: 503 })
    const { service } = newService(ctx.idp, { validateAssertion: VALIDATE })
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assertJwksUnavailable(err, 'JWKS 503')
    assert.match(err.message, /503/)
    assert.ok(ctx.idp.counters.jwks >= 1, 'the JWKS was asked for')
    assert.equal(ctx.idp.counters.discovery, 1)
    assert.equal(ctx.idp.counters.token, 0, 'no token request')
  })

  it('lazy JWKS: with validateAssertion, a JWKS that hangs past requestTimeoutMs fails as ERR_JWKS_UNAVAILABLE, retryable', async () => {
    ctx.idp.setJwksFault({ delayMs: 3000 })
    const { service } = newService(ctx.idp, { validateAssertion: VALIDATE, requestTimeoutMs: 500, maxRetries: 0 })
    // No clock: the held JWKS does answer after 3 s, and the default request timeout is
    // longer, so only requestTimeoutMs applied to the JWKS turns this call into a failure.
    const err = await rejection(service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES))
    assertJwksUnavailable(err, 'JWKS hang')
    assert.equal(ctx.idp.counters.token, 0, 'no token request')
  })

  it('lazy JWKS: once the JWKS is healthy again, the next validateAssertion exchange succeeds', async () => {
    ctx.idp.setJwksFault({ status: 503 })
    const { service } = newService(ctx.idp, { validateAssertion: VALIDATE })
    const assertion = await ctx.idp.mintUserToken('alice')
    assertJwksUnavailable(await rejection(service.exchangeOboToken(alice, assertion, FILES)), 'while failing')
    ctx.idp.setJwksFault(undefined)
    const token = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal((await ctx.idp.verify(token.access_token, 'api://mcp-files')).sub, 'alice')
    assert.equal(ctx.idp.counters.token, 1)
    assert.equal(ctx.idp.counters.discovery, 1, 'discovery was not repeated for the JWKS')
  })
})
