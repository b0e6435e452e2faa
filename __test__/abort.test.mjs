// AbortSignal end to end against the local IdP: an aborted caller rejects with its AbortError
// and is detached; the exchange goes on for the others and fills the cache; nothing is left
// behind (flights, leases in Redis, handles that keep a process alive).

import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { CLIENTS } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES } from './helpers.mjs'
import { redisSuite, startRedis, keysMatching, until } from './redis.mjs'
import obo from '../index.js'

const { createOboFetch } = obo
const ctx = useIdp()
const alice = { openidId: 'alice', provider: 'openid' }
const CHILD = fileURLToPath(new URL('./fixtures/abort-child.mjs', import.meta.url))

/** Runs the child with a bounded lifetime: resolves to its JSON line, or fails if it did not exit by itself. */
function runChild(options, call, timeoutMs = 30_000) {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [CHILD, JSON.stringify(options), JSON.stringify(call)],
      { timeout: timeoutMs, killSignal: 'SIGKILL' },
      (err, stdout) => {
        if (err) reject(new Error(`the child did not exit by itself within ${timeoutMs} ms (${err.signal ?? err.code})`))
        else resolve(JSON.parse(stdout.trim().split('\n').pop()))
      },
    )
  })
}

const serviceOptions = (idp, extra = {}) => ({
  issuer: idp.issuer,
  clientId: CLIENTS.post.clientId,
  clientSecret: CLIENTS.post.clientSecret,
  clientAuthMethod: CLIENTS.post.method,
  ...extra,
})

describe('exchangeOboToken with a signal', () => {
  it('an already-aborted signal rejects at once with its reason, and nothing is sent', async () => {
    const { service } = newService(ctx.idp)
    const token = await ctx.idp.mintUserToken('alice')
    const controller = new AbortController()
    controller.abort()
    const err = await rejection(service.exchangeOboToken(alice, token, FILES, true, undefined, { signal: controller.signal }))
    assert.equal(err, controller.signal.reason)
    assert.equal(err.name, 'AbortError')
    assert.equal(ctx.idp.counters.obo, 0)
    assert.deepEqual([service.stats().misses, service.stats().exchanges], [0, 0])
  })

  it('a caller that aborts while it waits is detached: the others get the token, the cache is filled, no flight is left', async () => {
    const { service } = newService(ctx.idp)
    const token = await ctx.idp.mintUserToken('alice')
    ctx.idp.setOboDelay(300)
    const controller = new AbortController()
    const leaving = service.exchangeOboToken(alice, token, FILES, true, undefined, { signal: controller.signal })
    const staying = [service.exchangeOboToken(alice, token, FILES), service.exchangeOboToken(alice, token, FILES)]
    setTimeout(() => controller.abort(), 50)
    assert.equal((await rejection(leaving)).name, 'AbortError')
    const [a, b] = await Promise.all(staying)
    assert.equal(a.access_token, b.access_token)
    // One leader, two joiners (the aborted one too), one exchange.
    assert.deepEqual([service.stats().misses, service.stats().coalesced, service.stats().exchanges], [3, 2, 1])
    const hits = service.stats().hits
    const cached = await service.exchangeOboToken(alice, token, FILES, true, undefined, { signal: new AbortController().signal })
    assert.equal(cached.access_token, a.access_token)
    assert.equal(service.stats().hits, hits + 1)
    assert.equal(ctx.idp.counters.obo, 1, 'one IdP request for all of them')
  })

  it('a forced exchange whose caller aborts still fills the cache', async () => {
    const { service } = newService(ctx.idp)
    const token = await ctx.idp.mintUserToken('alice')
    ctx.idp.setOboDelay(200)
    const controller = new AbortController()
    const forced = service.exchangeOboToken(alice, token, FILES, false, undefined, { signal: controller.signal })
    setTimeout(() => controller.abort(new Error('user pressed stop')), 30)
    const err = await rejection(forced)
    assert.equal(err.name, 'AbortError')
    assert.equal(err.cause.message, 'user pressed stop')
    ctx.idp.setOboDelay(0)
    // The exchange settles after the abort; wait for it (bounded) through the stats.
    for (let i = 0; i < 100 && service.stats().entries === 0; i++) await new Promise((r) => setTimeout(r, 20))
    await service.exchangeOboToken(alice, token, FILES)
    assert.equal(ctx.idp.counters.obo, 1, 'the later call was a hit')
  })

  it('a signal that is not one is refused by name', async () => {
    const { service } = newService(ctx.idp)
    const err = await rejection(service.exchangeOboToken(alice, 'token', FILES, true, undefined, { signal: 'stop' }))
    assert.ok(err instanceof TypeError)
    assert.equal(err.message, 'options.signal must be an AbortSignal, got string')
  })

  it('a process that aborted an exchange exits by itself once the exchange is done', async () => {
    ctx.idp.setOboDelay(400)
    const result = await runChild(serviceOptions(ctx.idp), { user: alice, token: await ctx.idp.mintUserToken('alice'), scopes: FILES })
    assert.deepEqual(
      { aborted: result.aborted, other: result.other, sameToken: result.sameToken },
      { aborted: 'AbortError', other: 'token', sameToken: true },
    )
    assert.deepEqual([result.stats.exchanges, result.stats.coalesced], [1, 1])
  })
})

describe('resolveOboToken and createOboFetch with a signal', () => {
  it('resolveOboToken passes the signal to the service: an abort detaches, the exchange fills the cache', async () => {
    const { service } = newService(ctx.idp)
    const token = await ctx.idp.mintUserToken('alice')
    ctx.idp.setOboDelay(300)
    const controller = new AbortController()
    const resolving = obo.resolveOboToken(alice, { scopes: FILES }, service, async () => ({ access_token: token }), undefined, false, {
      signal: controller.signal,
    })
    setTimeout(() => controller.abort(), 50)
    assert.equal((await rejection(resolving)).name, 'AbortError')
    ctx.idp.setOboDelay(0)
    const again = await obo.resolveOboToken(alice, { scopes: FILES }, service, async () => ({ access_token: token }))
    assert.ok(again.access_token)
    assert.equal(ctx.idp.counters.obo, 1)
  })

  it('createOboFetch: its own signal aborted sends nothing; a request aborted while its token is resolved rejects', async () => {
    const { service } = newService(ctx.idp)
    const token = await ctx.idp.mintUserToken('alice')
    let sent = 0
    const fetch = async () => {
      sent += 1
      return new Response('ok')
    }
    const lifetime = new AbortController()
    const provider = async () => ({ access_token: token })
    const oboFetch = createOboFetch({
      user: alice,
      oboConfig: { scopes: FILES },
      resolver: service,
      upstreamTokenProvider: provider,
      fetch,
      signal: lifetime.signal,
    })
    ctx.idp.setOboDelay(300)
    const request = new AbortController()
    const pending = oboFetch('http://127.0.0.1:9/mcp', { method: 'POST', body: '{}', signal: request.signal })
    setTimeout(() => request.abort(), 50)
    assert.equal((await rejection(pending)).name, 'AbortError')
    assert.equal(sent, 0)
    lifetime.abort()
    const err = await rejection(oboFetch('http://127.0.0.1:9/mcp'))
    assert.equal(err, lifetime.signal.reason)
    assert.equal(sent, 0)
    assert.throws(
      () => createOboFetch({ user: alice, oboConfig: { scopes: FILES }, resolver: service, upstreamTokenProvider: provider, signal: 5 }),
      {
        name: 'TypeError',
        message: 'signal must be an AbortSignal, got number',
      },
    )
  })

  it('createOboFetch without a provider rejects each request with missing_upstream_provider and its hint', async () => {
    const { service } = newService(ctx.idp)
    const oboFetch = createOboFetch({
      user: alice,
      oboConfig: { scopes: FILES },
      resolver: service,
      upstreamTokenProvider: undefined,
      fetch: async () => new Response(''),
    })
    const err = await rejection(oboFetch('http://127.0.0.1:9/mcp'))
    assert.equal(err.reason, 'missing_upstream_provider')
    assert.equal(err.hint, 'Configure a renewable upstream credential provider before retrying.')
  })
})

redisSuite('AbortSignal with the shared tier', () => {
  const PREFIX = 'obo-abort'
  let redis
  before(async () => {
    redis = await startRedis()
  })
  after(() => redis?.stop())
  const shared = (idp) =>
    serviceOptions(idp, { sharedCache: { url: redis.url, keyPrefix: PREFIX, encryptionKeys: [`1:${'ab'.repeat(32)}`] } })

  it('an aborted leader’s exchange still reaches Redis, another instance is served from it, and no lease is left', async () => {
    await redis.command('FLUSHALL')
    const token = await ctx.idp.mintUserToken('alice')
    const a = new obo.OboTokenService(shared(ctx.idp))
    const b = new obo.OboTokenService(shared(ctx.idp))
    ctx.idp.setOboDelay(300)
    const controller = new AbortController()
    const leaving = a.exchangeOboToken(alice, token, FILES, true, undefined, { signal: controller.signal })
    setTimeout(() => controller.abort(), 50)
    assert.equal((await rejection(leaving)).name, 'AbortError')
    const records = await until(async () => (await keysMatching(redis, `${PREFIX}::OBO_L2:v:*`)).length === 1)
    assert.ok(records, 'A’s exchange went on and its token reached Redis')
    assert.deepEqual(await keysMatching(redis, `${PREFIX}::OBO_L2:l:*`), [], 'no lease left')
    const served = await b.exchangeOboToken(alice, token, FILES)
    assert.ok(served.access_token)
    assert.equal(b.stats().sharedHits, 1, 'B was served from Redis')
    assert.equal(ctx.idp.counters.obo, 1)
  })

  it('a process that aborted an exchange under the shared tier exits by itself', async () => {
    await redis.command('FLUSHALL')
    ctx.idp.setOboDelay(400)
    const result = await runChild(shared(ctx.idp), { user: alice, token: await ctx.idp.mintUserToken('alice'), scopes: FILES })
    assert.deepEqual([result.aborted, result.other, result.sameToken], ['AbortError', 'token', true])
    assert.deepEqual(await keysMatching(redis, `${PREFIX}::OBO_L2:l:*`), [])
  })
})
