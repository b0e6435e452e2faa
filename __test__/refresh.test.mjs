// Refresh-ahead against the local IdP, and the events on node:diagnostics_channel: a hit
// past the refresh point is answered at once and starts one background exchange; a failed
// refresh keeps the token and reaches no caller; what is published carries no secret.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import diagnostics from 'node:diagnostics_channel'
import { setTimeout as sleep } from 'node:timers/promises'
import { useIdp, newService, FILES, rejection } from './helpers.mjs'
import { CLIENTS, USERS } from './idp/index.mjs'
import events from '../lib/events.js'

const ctx = useIdp()
const alice = { openidId: 'alice', tenantId: 'tenant' }
const CHANNELS = ['exchange:start', 'exchange:end', 'refresh:start', 'refresh:end', 'cache:evict']

/** Collects what every channel publishes until the test `t` ends. */
function listen(t) {
  const seen = []
  const handlers = CHANNELS.map((name) => {
    const handler = (message) => seen.push({ name, ...message })
    diagnostics.subscribe(`librechat-obo:${name}`, handler)
    return [name, handler]
  })
  t.after(() => {
    for (const [name, handler] of handlers) diagnostics.unsubscribe(`librechat-obo:${name}`, handler)
  })
  return seen
}

/** Polls `check` every 20 ms, for at most `ms`. */
async function until(check, ms = 3000) {
  const deadline = Date.now() + ms
  while (!check() && Date.now() < deadline) await sleep(20)
  assert.ok(check(), 'condition not reached in time')
}

/**
 * 4 s tokens, no buffer, refresh after a quarter: the refresh point is about 1 s in. A key's
 * first hit after PAST_POINT of silence refreshes (1.5 × 1.7 s covers the 2.3 s left); a hit
 * at 1.1 s would not, since a steady key waits for its end (src/cache/traffic.rs).
 */
const PAST_POINT = 1700

function shortLived(options = {}) {
  ctx.idp.setExpiresIn(4)
  return newService(ctx.idp, { expiryBufferSeconds: 0, refreshAhead: 0.25, maxRetries: 0, ...options })
}

test('a hit past the refresh point is answered at once and starts one background refresh', async (t) => {
  const seen = listen(t)
  const { service } = shortLived()
  const upstream = await ctx.idp.mintUserToken('alice')
  const first = await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(PAST_POINT)
  ctx.idp.setOboDelay(300)
  // "At once" without a clock: the hit's promise is already settled when it is returned,
  // so it wins a race against a promise made after it; a caller that waited for the
  // refresh (300 ms at the IdP) would lose.
  const pending = service.exchangeOboToken(alice, upstream, FILES)
  const served = await Promise.race([pending, Promise.resolve('not settled')])
  assert.equal(served.access_token, first.access_token, 'the cached token, at once')
  const meanwhile = await Promise.all([1, 2, 3].map(() => service.exchangeOboToken(alice, upstream, FILES)))
  assert.ok(meanwhile.every((r) => r.access_token === first.access_token))
  await until(() => service.stats().refreshesSucceeded === 1)
  const after = await service.exchangeOboToken(alice, upstream, FILES)
  assert.notEqual(after.access_token, first.access_token, 'the entry was replaced')
  assert.ok(after.expires_at > first.expires_at)
  assert.equal(ctx.idp.counters.obo, 2, 'one refresh for five hits past the point')
  const stats = service.stats()
  assert.deepEqual([stats.refreshesStarted, stats.refreshesSucceeded, stats.refreshesFailed, stats.failures], [1, 1, 0, 0])
  assert.ok(stats.servedDuringRefresh >= 4, `servedDuringRefresh ${stats.servedDuringRefresh}`)

  const names = seen.filter((m) => m.name !== 'cache:evict').map((m) => `${m.name}${m.refresh ? ' (refresh)' : ''}`)
  assert.deepEqual(names, [
    'exchange:start',
    'exchange:end',
    'refresh:start',
    'exchange:start (refresh)',
    'exchange:end (refresh)',
    'refresh:end',
  ])
  const end = seen.find((m) => m.name === 'exchange:end' && m.refresh)
  assert.equal(end.grant, 'jwt_bearer')
  assert.equal(end.outcome, 'success')
  assert.ok(end.durationMs >= 290, `durationMs ${end.durationMs}`)
  assert.equal(end.scopes, FILES)
  assert.match(end.identity, /^[0-9a-f]{16}$/)
  assert.ok(seen.every((m) => m.identity === end.identity && m.key === end.key))
  assert.equal(seen.find((m) => m.name === 'refresh:end').outcome, 'success')
  const text = JSON.stringify(seen)
  for (const secret of [upstream, first.access_token, after.access_token, CLIENTS.post.clientSecret, 'alice', USERS.alice.oid]) {
    assert.ok(!text.includes(secret), 'no token, assertion, secret or user id is published')
  }
})

test('a failed refresh keeps the token until it expires, is counted and logged once, and reaches no caller', async (t) => {
  const seen = listen(t)
  const { service, logs } = shortLived()
  const upstream = await ctx.idp.mintUserToken('alice')
  const first = await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(PAST_POINT)
  ctx.idp.injectFaults({ status: 503 })
  const served = await service.exchangeOboToken(alice, upstream, FILES)
  assert.equal(served.access_token, first.access_token)
  await until(() => service.stats().refreshesFailed === 1)
  for (let i = 0; i < 5; i++) {
    assert.equal((await service.exchangeOboToken(alice, upstream, FILES)).access_token, first.access_token)
  }
  const stats = service.stats()
  assert.deepEqual([stats.refreshesStarted, stats.refreshesFailed, stats.failures, stats.entries], [1, 1, 0, 1])
  assert.equal(ctx.idp.counters.token, 2, 'no retry before the backoff')
  const warnings = logs.filter((l) => l.level !== 'debug')
  assert.equal(warnings.length, 1)
  assert.match(warnings[0].message, /refresh-ahead failed for user: alice; the cached token is served until it expires/)
  assert.ok(!warnings[0].message.includes(upstream))
  const end = seen.find((m) => m.name === 'exchange:end' && m.refresh)
  assert.deepEqual(
    [end.outcome, end.error, end.status, end.errorCodes, end.reason],
    ['failure', 'temporarily_unavailable', 503, [50196], 'exchange_failed'],
  )
  assert.equal(seen.find((m) => m.name === 'refresh:end').outcome, 'failure')
})

test('refreshAhead false: a hit past the point starts nothing; the option is checked by name', async () => {
  const { service } = shortLived({ refreshAhead: false })
  const upstream = await ctx.idp.mintUserToken('alice')
  await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(PAST_POINT)
  await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(100)
  assert.equal(ctx.idp.counters.obo, 1)
  assert.equal(service.stats().refreshesStarted, 0)
  assert.throws(
    () => newService(ctx.idp, { refreshAhead: 1.5 }),
    /options\.refreshAhead must be a fraction of the token lifetime above 0 and below 1/,
  )
  assert.throws(
    () => newService(ctx.idp, { refreshAhead: 'soon' }),
    (err) => err instanceof TypeError && /options\.refreshAhead/.test(err.message),
  )
})

test('fromCache=false past the refresh point exchanges as today, and a forced failure still rejects', async () => {
  const { service } = shortLived()
  const upstream = await ctx.idp.mintUserToken('alice')
  const first = await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(PAST_POINT)
  const forced = await service.exchangeOboToken(alice, upstream, FILES, false)
  assert.notEqual(forced.access_token, first.access_token)
  assert.equal(service.stats().refreshesStarted, 0, 'a forced exchange is no refresh')
  ctx.idp.injectFaults({ status: 400, error: 'invalid_grant' })
  const err = await rejection(service.exchangeOboToken(alice, upstream, FILES, false))
  assert.equal(err.retryable, false)
})

test('evictions are published with their cause', async (t) => {
  const seen = listen(t)
  const { service } = newService(ctx.idp)
  const upstream = await ctx.idp.mintUserToken('alice')
  await service.exchangeOboToken(alice, upstream, FILES)
  service.invalidate(alice)
  await until(() => seen.some((m) => m.name === 'cache:evict'))
  const evicted = seen.find((m) => m.name === 'cache:evict')
  assert.equal(evicted.cause, 'explicit')
  assert.equal(evicted.key, seen[0].key)
  assert.equal(evicted.scopes, FILES)
})

test('without subscribers nothing is published', async () => {
  const channel = diagnostics.channel('librechat-obo:exchange:start')
  assert.equal(channel.hasSubscribers, false)
  const publish = channel.publish
  let published = 0
  channel.publish = (...args) => {
    published += 1
    return publish.apply(channel, args)
  }
  try {
    const { service } = newService(ctx.idp)
    await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
    await sleep(50)
    assert.equal(published, 0)
  } finally {
    // Not `channel.publish = publish`: that would pin the inactive channel's no-op publish
    // on the object, and the channel would stay mute once subscribed.
    delete channel.publish
  }
})

test('a subscriber that arrives after the service was made hears its next exchange', async (t) => {
  const { service } = newService(ctx.idp)
  await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
  const seen = listen(t)
  await service.exchangeOboToken(alice, await ctx.idp.mintUserToken('alice'), FILES)
  await until(() => seen.some((m) => m.name === 'exchange:end'))
  assert.deepEqual(
    seen.map((m) => m.name),
    ['exchange:start', 'exchange:end'],
    'the exchange after the subscription, not the one before',
  )
  assert.equal(service.stats().exchanges, 2)
})

test('a subscriber that arrives while only hits come hears the refresh a hit starts', async (t) => {
  const { service } = shortLived()
  const upstream = await ctx.idp.mintUserToken('alice')
  await service.exchangeOboToken(alice, upstream, FILES)
  await sleep(PAST_POINT)
  const seen = listen(t)
  await service.exchangeOboToken(alice, upstream, FILES)
  await until(() => seen.some((m) => m.name === 'refresh:end'))
  const names = seen.filter((m) => m.name !== 'cache:evict').map((m) => `${m.name}${m.refresh ? ' (refresh)' : ''}`)
  assert.deepEqual(names, ['refresh:start', 'exchange:start (refresh)', 'exchange:end (refresh)', 'refresh:end'])
})

test("shared:breaker publishes only the breaker's state", async (t) => {
  const { publish } = events
  const seen = []
  const handler = (message) => seen.push(message)
  diagnostics.subscribe('librechat-obo:shared:breaker', handler)
  t.after(() => diagnostics.unsubscribe('librechat-obo:shared:breaker', handler))
  publish('shared:breaker', { identity: '', key: '', scopes: '', refresh: false, breaker: 'open' })
  assert.deepEqual(seen, [{ state: 'open' }])
})
