// The multi-process section of `npm run bench`: the shared Redis tier against LibreChat's
// own path with Redis (Keyv through @keyv/redis, which goes to Redis on every hit), on one
// redis-server started here on a free loopback port (persistence off, stopped by its pid).
// Runs alone with `node benchmark/bench.mjs --only shared` (or `node benchmark/shared.mjs`);
// skipped with a line when redis-server is absent. Every loop is bounded by a count.

import { randomBytes } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import KeyvRedis from '@keyv/redis'
import { startIdp, CLIENTS, TENANT } from '../__test__/idp/index.mjs'
import { HAS_REDIS, HOW_TO_RUN, startRedis } from '../__test__/redis.mjs'
import { startWorkers, stopWorkers } from '../__test__/workers.mjs'
import { createReferenceService } from './reference.mjs'
import { SCALE, count, hitsSequential, quantiles } from './measure.mjs'
import obo from '../index.js'

const SCOPES = 'api://mcp-files/files.read'
const now = () => Number(process.hrtime.bigint()) / 1000 // µs
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2))

/** Sequential calls, one per user (with that user's own upstream token when `assertion` is a list): per-call µs. */
async function perCall(exchange, users, assertion) {
  const samples = new Float64Array(users.length)
  for (let i = 0; i < users.length; i++) {
    const t0 = now()
    await exchange(users[i], Array.isArray(assertion) ? assertion[i] : assertion, SCOPES)
    samples[i] = now() - t0
  }
  return quantiles(samples)
}

/** Runs the section; resolves to its figures, or null when redis-server is absent. */
export async function runShared() {
  if (!HAS_REDIS) {
    console.log(`\nShared tier (several processes): skipped. ${HOW_TO_RUN}`)
    return null
  }
  const redis = await startRedis()
  const idp = await startIdp()
  const workers = []
  const figures = { scale: SCALE }
  try {
    const key = randomBytes(32).toString('hex')
    const base = { issuer: idp.issuer, clientId: CLIENTS.post.clientId, clientSecret: CLIENTS.post.clientSecret }
    const sharedCache = { url: redis.url, keyPrefix: 'bench', encryptionKeys: [`1:${key}`] }
    const assertion = await idp.mintUserToken('alice')

    // 1. N processes, 100 concurrent calls each, one cold key, started together.
    figures.cold = {}
    for (const n of [2, 4, 8]) {
      for (const [label, options] of [
        ['shared', { ...base, sharedCache }],
        ['perProcess', base],
      ]) {
        const started = await startWorkers(n, options)
        workers.push(...started)
        const user = { openidId: `cold-${n}-${label}`, tenantId: TENANT }
        await Promise.all(
          started.map((w) => w.call('exchange', { user: { openidId: 'warm', tenantId: TENANT }, token: assertion, scopes: SCOPES })),
        )
        const before = idp.counters.obo
        const at = Date.now() + 300
        const results = await Promise.all(started.map((w) => w.call('exchange', { user, token: assertion, scopes: SCOPES, n: 100, at })))
        const failed = results.flatMap((r) => r.failed).length
        figures.cold[`${label}${n}`] = {
          idpRequests: idp.counters.obo - before,
          wallMs: Math.max(...results.map((r) => r.wallMs)),
          tokens: new Set(results.flatMap((r) => r.fingerprints)).size,
          failed,
        }
        await stopWorkers(started.splice(0))
        workers.length = 0
      }
    }

    // 2. Hits on keys another process exchanged: a worker exchanges them, this process reads.
    const n = count(1000)
    // Each user with an upstream token of their own, as in LibreChat.
    const users = Array.from({ length: n }, (_, i) => ({ openidId: `steady-${i}`, tenantId: TENANT }))
    const upstream = await Promise.all(users.map(() => idp.mintUserToken('alice')))
    const [writer] = await startWorkers(1, { ...base, sharedCache })
    workers.push(writer)
    await writer.call('each', { calls: users.map((user, i) => ({ user, token: upstream[i] })), scopes: SCOPES }, 120_000)
    const reader = new obo.OboTokenService({ ...base, sharedCache })
    await reader.exchangeOboToken({ openidId: 'warm-reader', tenantId: TENANT }, assertion, SCOPES) // connections, discovery
    const before = idp.counters.obo
    const nativeFirst = await perCall(reader.exchangeOboToken.bind(reader), users, upstream)
    const nativeSteady = await perCall(reader.exchangeOboToken.bind(reader), users, upstream)
    const readerStats = reader.stats()
    figures.native = {
      first: nativeFirst,
      steady: nativeSteady,
      idpRequests: idp.counters.obo - before,
      sharedHits: readerStats.sharedHits,
    }

    // LibreChat's path: Keyv + @keyv/redis; one instance writes, another reads (every hit is a Redis GET + JSON).
    const stores = [new KeyvRedis(redis.url), new KeyvRedis(redis.url)]
    try {
      const refWriter = await createReferenceService({ ...base, store: stores[0] })
      const refReader = await createReferenceService({ ...base, store: stores[1] })
      const refUsers = users.map((u) => ({ ...u, openidId: `ref-${u.openidId}` }))
      for (let i = 0; i < n; i++) await refWriter.exchangeOboToken(refUsers[i], upstream[i], SCOPES)
      await refReader.exchangeOboToken({ openidId: 'warm-reader', tenantId: TENANT }, assertion, SCOPES)
      const refBefore = idp.counters.obo
      const refFirst = await perCall(refReader.exchangeOboToken, refUsers, upstream)
      const refSteady = await perCall(refReader.exchangeOboToken, refUsers, upstream)
      figures.reference = { first: refFirst, steady: refSteady, idpRequests: idp.counters.obo - refBefore }

      // 3. The in-process hit, with the shared tier on, against the JS reference's in-memory hit.
      const memoryRef = await createReferenceService(base)
      figures.hit = {
        native: await hitsSequential(reader.exchangeOboToken.bind(reader), assertion),
        reference: await hitsSequential(memoryRef.exchangeOboToken, assertion),
      }
    } finally {
      await Promise.all(stores.map((s) => s.disconnect().catch(() => {})))
    }

    // 4. Redis down, breaker open: hits and cold misses against a service without the tier.
    const downShared = new obo.OboTokenService({ ...base, sharedCache })
    const plain = new obo.OboTokenService(base)
    const hitUser = { openidId: 'down-hit', tenantId: TENANT }
    await downShared.exchangeOboToken(hitUser, assertion, SCOPES)
    await plain.exchangeOboToken(hitUser, assertion, SCOPES)
    await redis.kill('SIGKILL')
    for (let i = 0; i < 10 && downShared.stats().sharedBreaker !== 'open'; i++) {
      await downShared.exchangeOboToken({ openidId: `trip-${i}`, tenantId: TENANT }, assertion, SCOPES)
    }
    const breaker = downShared.stats().sharedBreaker
    const hitRounds = []
    for (let round = 0; round < 5; round++) {
      hitRounds.push({
        shared: (await hitsSequential(downShared.exchangeOboToken.bind(downShared), assertion)).median,
        plain: (await hitsSequential(plain.exchangeOboToken.bind(plain), assertion)).median,
      })
    }
    const coldUsers = (tag) => Array.from({ length: count(200) }, (_, i) => ({ openidId: `${tag}-${i}`, tenantId: TENANT }))
    const downBefore = idp.counters.obo
    const coldShared = await perCall(downShared.exchangeOboToken.bind(downShared), coldUsers('down-shared'), assertion)
    const coldSharedRequests = idp.counters.obo - downBefore
    const coldPlain = await perCall(plain.exchangeOboToken.bind(plain), coldUsers('down-plain'), assertion)
    const mid = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
    figures.down = {
      breaker,
      hitAddedUs: mid(hitRounds.map((r) => r.shared - r.plain)),
      hitSharedUs: mid(hitRounds.map((r) => r.shared)),
      hitPlainUs: mid(hitRounds.map((r) => r.plain)),
      coldSharedUs: coldShared.median,
      coldPlainUs: coldPlain.median,
      coldCalls: count(200),
      coldIdpRequests: coldSharedRequests,
    }
  } finally {
    await stopWorkers(workers)
    await idp.close()
    await redis.stop()
  }
  printShared(figures)
  writeFileSync(fileURLToPath(new URL('./results-shared.json', import.meta.url)), `${JSON.stringify(figures, null, 2)}\n`)
  return figures
}

function printShared(f) {
  const check = (ok) => (ok ? ' ✓' : ' ✗')
  console.log(`\nShared tier (several processes, one redis-server on 127.0.0.1), scale ${f.scale}\n`)
  console.log(
    '| cold key, 100 concurrent calls per process | IdP requests (target 1) | wall ms | without the tier: IdP requests | wall ms |',
  )
  console.log('|---|---:|---:|---:|---:|')
  for (const n of [2, 4, 8]) {
    const s = f.cold[`shared${n}`]
    const p = f.cold[`perProcess${n}`]
    const failed = s.failed + p.failed ? ` (${s.failed + p.failed} failed)` : ''
    console.log(
      `| ${n} processes${failed} | ${s.idpRequests}${check(s.idpRequests === 1 && s.tokens === 1)} | ${fmt(s.wallMs)} | ${p.idpRequests} | ${fmt(p.wallMs)} |`,
    )
  }
  const rows = [
    ['hits on keys another process exchanged, steady state: median µs', f.native.steady.median, f.reference.steady.median, 0.1],
    ['hits on keys another process exchanged, steady state: p99 µs', f.native.steady.p99, f.reference.steady.p99, 0.1],
    ['first read of such a key (Redis round trip + decryption): median µs', f.native.first.median, f.reference.first.median, 1.5],
    ['first read of such a key: p99 µs', f.native.first.p99, f.reference.first.p99, 1.5],
    ['in-process hit, shared tier on, vs JS reference in memory: median µs', f.hit.native.median, f.hit.reference.median, 0.5],
    ['in-process hit, shared tier on, vs JS reference in memory: p99 µs', f.hit.native.p99, f.hit.reference.p99, 0.5],
  ]
  console.log('\n| figure | librechat-obo (shared tier) | LibreChat path (Keyv + @keyv/redis) | ratio | target |')
  console.log('|---|---:|---:|---:|---|')
  for (const [name, native, reference, target] of rows) {
    const ratio = native / reference
    console.log(`| ${name} | ${fmt(native)} | ${fmt(reference)} | ${fmt(ratio)} | ≤ ${target}${check(ratio <= target)} |`)
  }
  const d = f.down
  console.log(
    `\nIdP requests while reading ${f.native.sharedHits} keys another process exchanged: librechat-obo ${f.native.idpRequests}, LibreChat path ${f.reference.idpRequests}`,
  )
  console.log(
    `Redis down, breaker ${d.breaker}: a hit costs ${fmt(d.hitSharedUs)} µs against ${fmt(d.hitPlainUs)} µs without the tier, ` +
      `added ${d.hitAddedUs.toFixed(2)} µs (target < 1 µs${check(d.hitAddedUs < 1)}); a cold miss ${fmt(d.coldSharedUs)} µs against ${fmt(d.coldPlainUs)} µs, ` +
      `${d.coldIdpRequests} IdP requests for ${d.coldCalls} cold keys (target: no extra${check(d.coldIdpRequests === d.coldCalls)})`,
  )
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await runShared()
  process.exit(0)
}
