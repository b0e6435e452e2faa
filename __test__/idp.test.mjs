// The local IdP's own test switches, so that a test relying on them fails for the
// package's reasons, not the IdP's: the JWKS fault switch and its counter.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { useIdp } from './helpers.mjs'

const ctx = useIdp()
const jwks = (options) => fetch(`${ctx.idp.issuer}/jwks`, options)

describe('the JWKS fault switch', () => {
  it('answers 503 or 404 until cleared, and counts every JWKS request', async () => {
    ctx.idp.setJwksFault({ status: 503 })
    assert.equal((await jwks()).status, 503)
    ctx.idp.setJwksFault({ status: 404 })
    assert.equal((await jwks()).status, 404)
    ctx.idp.setJwksFault(undefined)
    const healthy = await jwks()
    assert.equal(healthy.status, 200)
    assert.equal((await healthy.json()).keys.length, 1)
    assert.equal(ctx.idp.counters.jwks, 3)
    assert.equal(ctx.idp.counters.token, 0)
  })

  it('drops the connection, or holds the answer (a hang for a client timeout)', async () => {
    ctx.idp.setJwksFault({ drop: true })
    await assert.rejects(jwks(), TypeError)
    ctx.idp.setJwksFault({ delayMs: 2000 })
    // No clock: the TimeoutError says the client gave up before the held answer came.
    await assert.rejects(jwks({ signal: AbortSignal.timeout(200) }), { name: 'TimeoutError' })
    assert.equal(ctx.idp.counters.jwks, 2)
  })

  it("leaves the IdP's own verify alone, and is cleared by resetCounters", async () => {
    const token = await ctx.idp.mintUserToken('alice')
    ctx.idp.setJwksFault({ status: 503 })
    assert.equal((await ctx.idp.verify(token, 'api://middle-tier')).sub, 'alice')
    assert.equal(ctx.idp.counters.jwks, 0)
    ctx.idp.resetCounters()
    assert.equal((await jwks()).status, 200)
  })
})
