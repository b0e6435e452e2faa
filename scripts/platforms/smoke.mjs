// The smoke test `npm run platforms` runs on each target it can run here (under qemu, Wine, or
// natively), in an empty project where librechat-obo and its platform package were installed
// from their tarballs, as a user installs them. It is run as the entry point (`node smoke.mjs`),
// so node:test runs its tests in this one process: without binfmt, `node --test` could not spawn
// an emulated child. The harness (harness.mjs, on the host's Node) runs the local IdP and a
// redis-server on loopback and hands them over in OBO_SMOKE; it stops both when this exits.
// No fetch here: the addon makes every request itself (Node's own fetch cannot connect under
// Wine 8).

import { before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { performance } from 'node:perf_hooks'

const fixtures = JSON.parse(process.env.OBO_SMOKE ?? '{}')
const FILES = 'api://mcp-files/files.read'

// The first thing this process loads, so the time is what a user's first `require` costs.
const started = performance.now()
const obo = createRequire(import.meta.url)('librechat-obo')
console.log(`# require librechat-obo: ${(performance.now() - started).toFixed(1)} ms`)
const { OboTokenService, OboExchangeError } = obo

/**
 * A service for the harness's IdP with the secret client; `shared` (a key prefix) adds the Redis
 * tier, its operations given 10 s instead of 50 ms: under qemu everything is tens of times slower.
 */
function service(shared) {
  const sharedCache = { url: fixtures.redisUrl, keyPrefix: shared, encryptionKeys: [`1:${fixtures.sealKey}`], opTimeoutMs: 10_000 }
  return new OboTokenService({
    issuer: fixtures.issuer,
    clientId: fixtures.clientId,
    clientSecret: fixtures.clientSecret,
    retryDelayMs: 20,
    ...(shared && { sharedCache }),
  })
}

/** The claims of a JWT, decoded without verifying (the IdP signed it; here only who it is for). */
const claimsOf = (jwt) => JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))

/** Settles `promise` and returns its rejection (fails if it resolved). */
async function rejection(promise) {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}

describe(`librechat-obo on ${process.platform}-${process.arch} (Node ${process.version})`, () => {
  const alice = { openidId: 'alice' }
  let local
  let first
  before(() => {
    assert.ok(fixtures.issuer && fixtures.alice && fixtures.bob, 'OBO_SMOKE names the IdP and user tokens')
    local = service()
  })

  it('exchanges a user token at the local IdP', async () => {
    first = await local.exchangeOboToken(alice, fixtures.alice, FILES)
    assert.equal(first.token_type, 'Bearer')
    assert.equal(first.scope, FILES)
    const claims = claimsOf(first.access_token)
    assert.deepEqual([claims.iss, claims.sub, claims.aud, claims.scp], [fixtures.issuer, 'alice', 'api://mcp-files', 'files.read'])
    assert.equal(local.stats().exchanges, 1)
  })

  it('answers the same call from the cache', async () => {
    assert.deepEqual(await local.exchangeOboToken(alice, fixtures.alice, FILES), first)
    const { hits, exchanges, entries } = local.stats()
    assert.deepEqual({ hits, exchanges, entries }, { hits: 1, exchanges: 1, entries: 1 })
  })

  it('invalidate drops the user: the next call goes to the IdP again', async () => {
    assert.equal(local.invalidate(alice), 1)
    assert.equal(local.stats().entries, 0)
    await local.exchangeOboToken(alice, fixtures.alice, FILES)
    assert.equal(local.stats().exchanges, 2)
  })

  it('a failed exchange rejects with the IdP fields and caches nothing', async () => {
    const bob = { openidId: 'bob' }
    const err = await rejection(local.exchangeOboToken(bob, fixtures.bob, FILES))
    assert.ok(err instanceof OboExchangeError, String(err))
    assert.equal(err.status, 400)
    assert.equal(err.error, 'interaction_required')
    assert.deepEqual(err.error_codes, [50076])
    assert.equal(err.retryable, false)
    assert.equal(err.oboFailureReason, 'exchange_failed')
    assert.ok(!err.message.includes(fixtures.bob), 'the message leaves the user token out')
    const { entries, failures } = local.stats()
    assert.deepEqual({ entries, failures }, { entries: 1, failures: 1 })
    await rejection(local.exchangeOboToken(bob, fixtures.bob, FILES))
    assert.equal(local.stats().failures, 2, 'the second call asked the IdP again')
  })

  describe('shared tier: a round trip through redis-server', () => {
    const prefix = `smoke-${process.pid}`
    const skip = !fixtures.redisUrl && 'no redis-server here (the harness ran with SMOKE_REDIS=off)'
    it('what one instance exchanged, another serves from Redis without asking the IdP', { skip }, async () => {
      const writer = service(prefix)
      const reader = service(prefix)
      const token = await writer.exchangeOboToken(alice, fixtures.alice, FILES)
      assert.equal(writer.stats().exchanges, 1)
      const served = await reader.exchangeOboToken(alice, fixtures.alice, FILES)
      const { exchanges, sharedHits } = reader.stats()
      assert.deepEqual({ exchanges, sharedHits }, { exchanges: 0, sharedHits: 1 }, JSON.stringify(reader.stats()))
      assert.deepEqual(served, token)
    })
  })
})
