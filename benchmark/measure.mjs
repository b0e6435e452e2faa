// The measurements, shared by bench.mjs (librechat-obo and the JS reference) and
// msal.mjs (MSAL Node, in a child process that trusts the TLS IdP). Every loop is
// bounded by a count; BENCH_SCALE shrinks the counts.

import { fakeAssertion, pool } from './impls.mjs'

export const SCALE = Number(process.env.BENCH_SCALE ?? 1)
export const count = (n) => Math.max(10, Math.round(n * SCALE))
export const SCOPES = 'api://mcp-files/files.read'
const HIT_ASSERTION = fakeAssertion('hit-upstream')
const now = () => Number(process.hrtime.bigint()) / 1000 // µs

export function quantiles(samples) {
  const sorted = Float64Array.from(samples).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { median: at(0.5), p99: at(0.99) }
}

export const getJson = async (url) => (await fetch(url)).json()

/** Cache hits awaited one at a time: per-call latency. */
export async function hitsSequential(exchange, assertion = HIT_ASSERTION) {
  const user = { openidId: 'hit-user', tenantId: 'tenant' }
  await exchange(user, assertion, SCOPES)
  const n = count(20_000)
  for (let i = 0; i < 1000; i++) await exchange(user, assertion, SCOPES)
  const samples = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const t0 = now()
    await exchange(user, assertion, SCOPES)
    samples[i] = now() - t0
  }
  return quantiles(samples)
}

/** 1,000 concurrent cache hits: latency from issue to settle, per call. */
export async function hitsConcurrent(exchange, assertion = HIT_ASSERTION) {
  const user = { openidId: 'hit-user', tenantId: 'tenant' }
  await exchange(user, assertion, SCOPES)
  const rounds = count(30)
  const samples = []
  for (let r = 0; r < rounds; r++) {
    const t0 = now()
    const calls = []
    for (let i = 0; i < 1000; i++) calls.push(exchange(user, assertion, SCOPES).then(() => samples.push(now() - t0)))
    await Promise.all(calls)
  }
  return quantiles(samples.slice(samples.length / rounds)) // first round is warm-up
}

/** Cold exchanges with distinct keys: throughput and client CPU per exchange. */
export async function cold(exchange, assertions, concurrency, label) {
  const users = assertions.map((_, i) => ({ openidId: `${label}-${concurrency}-${i}`, tenantId: 'tenant' }))
  const cpu0 = process.cpuUsage()
  const t0 = now()
  await pool(assertions.length, concurrency, (i) => exchange(users[i], assertions[i], SCOPES))
  const wallUs = now() - t0
  const cpu = process.cpuUsage(cpu0)
  return { perSecond: (assertions.length / wallUs) * 1e6, cpuUsPerExchange: (cpu.user + cpu.system) / assertions.length }
}

/** 1,000 concurrent calls for one key on an empty cache. */
export async function fanOut(exchange, assertion, countRequests) {
  const before = await countRequests()
  const t0 = now()
  await Promise.all(Array.from({ length: 1000 }, () => exchange({ openidId: 'fan-out', tenantId: 'tenant' }, assertion, SCOPES)))
  return { wallMs: (now() - t0) / 1000, idpRequests: (await countRequests()) - before }
}
