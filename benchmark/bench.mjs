// `npm run bench`: librechat-obo against a JavaScript reference of LibreChat's exchange,
// in one run, against loopback servers started here. Prints ratios (package / reference)
// and writes benchmark/results.json. BENCH_SCALE=0.1 shrinks every count for a quick look.

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createExchange, fakeAssertion, pool, IMPLS } from './impls.mjs'

const SCALE = Number(process.env.BENCH_SCALE ?? 1)
const count = (n) => Math.max(10, Math.round(n * SCALE))
const SCOPES = 'api://mcp-files/files.read'
const HIT_ASSERTION = fakeAssertion('hit-upstream')
const here = (file) => fileURLToPath(new URL(file, import.meta.url))
const now = () => Number(process.hrtime.bigint()) / 1000 // µs

function quantiles(samples) {
  const sorted = Float64Array.from(samples).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { median: at(0.5), p99: at(0.99) }
}

async function startServers() {
  const child = spawn(process.execPath, [here('./servers.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  return { child, ...JSON.parse(line) }
}

const getJson = async (url) => (await fetch(url)).json()

/** Cache hits awaited one at a time: per-call latency. */
async function hitsSequential(exchange) {
  const user = { openidId: 'hit-user', tenantId: 'tenant' }
  await exchange(user, HIT_ASSERTION, SCOPES)
  const n = count(20_000)
  for (let i = 0; i < 1000; i++) await exchange(user, HIT_ASSERTION, SCOPES)
  const samples = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t0 = now()
    await exchange(user, HIT_ASSERTION, SCOPES)
    samples[i] = now() - t0
  }
  return quantiles(samples)
}

/** 1,000 concurrent cache hits: latency from issue to settle, per call. */
async function hitsConcurrent(exchange) {
  const user = { openidId: 'hit-user', tenantId: 'tenant' }
  await exchange(user, HIT_ASSERTION, SCOPES)
  const rounds = count(30)
  const samples = []
  for (let r = 0; r < rounds; r++) {
    const t0 = now()
    const calls = []
    for (let i = 0; i < 1000; i++) calls.push(exchange(user, HIT_ASSERTION, SCOPES).then(() => samples.push(now() - t0)))
    await Promise.all(calls)
  }
  return quantiles(samples.slice(samples.length / rounds)) // first round is warm-up
}

/** Cold exchanges with distinct keys: throughput and client CPU per exchange. */
async function cold(exchange, assertions, concurrency, label) {
  const users = assertions.map((_, i) => ({ openidId: `${label}-${concurrency}-${i}`, tenantId: 'tenant' }))
  const cpu0 = process.cpuUsage()
  const t0 = now()
  await pool(assertions.length, concurrency, (i) => exchange(users[i], assertions[i], SCOPES))
  const wallUs = now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { perSecond: (assertions.length / wallUs) * 1e6, cpuUsPerExchange: (cpu.user + cpu.system) / assertions.length }
}

/** 1,000 concurrent calls for one key on an empty cache. */
async function fanOut(exchange, assertion, countRequests) {
  const before = await countRequests()
  const t0 = now()
  await Promise.all(Array.from({ length: 1000 }, () => exchange({ openidId: 'fan-out', tenantId: 'tenant' }, assertion, SCOPES)))
  return { wallMs: (now() - t0) / 1000, idpRequests: (await countRequests()) - before }
}

async function memory(kind, issuer) {
  const child = spawn(process.execPath, ['--expose-gc', here('./memory.mjs'), kind, issuer, String(count(100_000))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  await once(child, 'exit')
  return JSON.parse(line)
}

const servers = await startServers()
const results = { machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version }, scale: SCALE, figures: {} }
try {
  const cannedCount = () => getJson(`${servers.canned}/__count`).then((c) => c.token)
  const idpCount = () => getJson(`${servers.idp}/__test/counters`).then((c) => c.obo)
  const mint = (n) => getJson(`${servers.control}/mint?n=${n}`)
  const randomAssertions = (n, tag) => Array.from({ length: n }, (_, i) => fakeAssertion(`${tag}-${i}-${Math.random().toString(36).slice(2)}`))

  for (const kind of IMPLS) {
    const f = {}
    const canned = await createExchange(kind, servers.canned)
    f.hitSequential = await hitsSequential(canned)
    f.hitConcurrent = await hitsConcurrent(canned)
    await cold(canned, randomAssertions(count(500), `warm-${kind}`), 8, 'warm')
    f.coldCanned1 = await cold(canned, randomAssertions(count(2000), `c1-${kind}`), 1, `c1-${kind}`)
    f.coldCanned64 = await cold(canned, randomAssertions(count(10_000), `c64-${kind}`), 64, `c64-${kind}`)
    const idp = await createExchange(kind, servers.idp)
    await cold(idp, await mint(5), 1, `warm-idp-${kind}`) // discovery, connections
    f.coldIdp1 = await cold(idp, await mint(count(300)), 1, `i1-${kind}`)
    f.coldIdp64 = await cold(idp, await mint(count(1000)), 64, `i64-${kind}`)
    await getJson(`${servers.canned}/__config?delayMs=50`)
    f.fanOutCanned = await fanOut(canned, fakeAssertion(`fan-${kind}`), cannedCount)
    await getJson(`${servers.canned}/__config?delayMs=0`)
    f.fanOutIdp = await fanOut(idp, (await mint(1))[0], idpCount)
    f.memory = await memory(kind, servers.canned)
    results.figures[kind] = f
    console.error(`measured ${kind}`)
  }
} finally {
  servers.child.kill('SIGTERM')
}

const { native, reference } = results.figures
const rows = [
  ['cache hit, awaited one at a time: median µs', (f) => f.hitSequential.median, 0.5],
  ['cache hit, awaited one at a time: p99 µs', (f) => f.hitSequential.p99, 0.5],
  ['cache hit, 1,000 concurrent: median µs', (f) => f.hitConcurrent.median, 0.5],
  ['cache hit, 1,000 concurrent: p99 µs', (f) => f.hitConcurrent.p99, 0.5],
  ['cold, canned endpoint, c=1: CPU µs/exchange', (f) => f.coldCanned1.cpuUsPerExchange, 0.5],
  ['cold, canned endpoint, c=64: CPU µs/exchange', (f) => f.coldCanned64.cpuUsPerExchange, 0.5],
  ['cold, canned endpoint, c=1: exchanges/s', (f) => f.coldCanned1.perSecond],
  ['cold, canned endpoint, c=64: exchanges/s', (f) => f.coldCanned64.perSecond],
  ['cold, local IdP, c=1: CPU µs/exchange', (f) => f.coldIdp1.cpuUsPerExchange, 0.5],
  ['cold, local IdP, c=64: CPU µs/exchange', (f) => f.coldIdp64.cpuUsPerExchange, 0.5],
  ['cold, local IdP, c=1: exchanges/s', (f) => f.coldIdp1.perSecond],
  ['cold, local IdP, c=64: exchanges/s', (f) => f.coldIdp64.perSecond],
  ['fan-out 1,000 calls, canned (50 ms): IdP requests', (f) => f.fanOutCanned.idpRequests],
  ['fan-out 1,000 calls, canned (50 ms): wall ms', (f) => f.fanOutCanned.wallMs],
  ['fan-out 1,000 calls, local IdP: IdP requests', (f) => f.fanOutIdp.idpRequests],
  ['fan-out 1,000 calls, local IdP: wall ms', (f) => f.fanOutIdp.wallMs],
  [`memory per cached entry (${count(100_000)} entries): RSS bytes`, (f) => f.memory.rss, 1],
  ['memory per cached entry: JS heap bytes', (f) => f.memory.heapUsed],
]
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2))
results.table = rows.map(([name, pick, target]) => {
  const ratio = pick(native) / pick(reference)
  return { figure: name, native: pick(native), reference: pick(reference), ratio, target: target ?? null }
})
console.log(`librechat-obo benchmark: ${results.machine.cpus} × ${results.machine.cpu}, ${results.machine.memGiB} GiB, node ${results.machine.node}, scale ${SCALE}\n`)
console.log('| figure | librechat-obo | JS reference | ratio | target |')
console.log('|---|---:|---:|---:|---|')
for (const r of results.table) {
  const target = r.target == null ? '' : `≤ ${r.target}${r.ratio <= r.target ? ' ✓' : ' ✗'}`
  console.log(`| ${r.figure} | ${fmt(r.native)} | ${fmt(r.reference)} | ${fmt(r.ratio)} | ${target} |`)
}
console.log(`\nfan-out target: exactly 1 IdP request for 1,000 calls: canned ${native.fanOutCanned.idpRequests}, local IdP ${native.fanOutIdp.idpRequests}`)
writeFileSync(here('./results.json'), JSON.stringify(results, null, 2) + '\n')
