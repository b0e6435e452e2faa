// The soak's figures from what soak/run.mjs gathered: per-minute time-to-token quantiles, RSS
// per process per minute and its growth after the first two minutes, IdP requests per key per
// token lifetime, and the pass/fail verdict. `printSummary` is the console form of the JSON.

const MIB = 1024

/** The `q` quantile of sorted numbers (nearest rank), or null when there are none. */
function quantile(sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]
}

const round = (x, digits = 3) => (x === null ? null : Number(x.toFixed(digits)))

/** p50, p99 and max (ms) of a list of latencies. */
function latencyOf(values) {
  const sorted = Float64Array.from(values).sort()
  return { calls: sorted.length, p50: round(quantile(sorted, 0.5)), p99: round(quantile(sorted, 0.99)), max: round(quantile(sorted, 1)) }
}

/** Time-to-token per 10-second bucket (for the chart) and per minute (the report). */
function latencies(samples, durationMs) {
  const buckets = Math.ceil(durationMs / 10_000)
  const every10s = []
  const perMinute = []
  for (let minute = 0; minute * 6 < buckets; minute++) {
    const values = []
    for (let b = minute * 6; b < Math.min(buckets, minute * 6 + 6); b++) {
      const bucket = samples.get(b) ?? []
      every10s.push({ t: b * 10, ...latencyOf(bucket) })
      for (const v of bucket) values.push(v)
    }
    perMinute.push({ minute: minute + 1, ...latencyOf(values) })
  }
  return { every10s, perMinute, all: latencyOf([...samples.values()].flat()) }
}

const median = (xs) => quantile(Float64Array.from(xs).sort(), 0.5)

/**
 * Each process's RSS: per minute (the last sample of the minute), its level at two minutes
 * after it started (or at half its life, if shorter), its end, and the growth between them
 * (each level is the median of 30 s of samples, so one GC does not decide it).
 */
function rssOf(samples, boundMiB) {
  const byName = new Map()
  for (const s of samples) {
    if (!byName.has(s.name)) byName.set(s.name, [])
    byName.get(s.name).push(s)
  }
  const processes = []
  for (const [name, list] of byName) {
    const first = list[0].t
    const last = list[list.length - 1].t
    const baselineAt = first + Math.min(120_000, (last - first) / 2)
    const window = (from, to) => list.filter((s) => s.t >= from && s.t <= to).map((s) => s.kib / MIB)
    const baseline = median(window(baselineAt - 30_000, baselineAt))
    const end = median(window(last - 30_000, last))
    const perMinute = []
    for (const s of list) perMinute[Math.floor(s.t / 60_000)] = round(s.kib / MIB, 1)
    const checked = name.startsWith('worker')
    const growth = round(end - baseline, 1)
    processes.push({
      name,
      pids: [...new Set(list.map((s) => s.pid))],
      startMiB: round(list[0].kib / MIB, 1),
      baselineMiB: round(baseline, 1),
      endMiB: round(end, 1),
      growthMiB: growth,
      checked,
      withinBound: !checked || growth <= boundMiB,
      perMinuteMiB: perMinute.map((v) => v ?? null),
      series: list.map((s) => [round(s.t / 1000, 1), round(s.kib / MIB, 1)]),
    })
  }
  return processes
}

/** IdP requests per key per token lifetime: all token requests, and the distinct tokens each key was handed. */
function idpLoad(results, setup) {
  const keys = setup.users * setup.scopes.length
  const lifetimes = setup.durationMs / 1000 / setup.tokenSeconds
  const perKey = [...results.jtis.values()].map((set) => set.size / lifetimes).sort((a, b) => a - b)
  return {
    counters: results.idp,
    keys,
    keysSeen: results.jtis.size,
    lifetimes: round(lifetimes, 2),
    requestsPerKeyPerLifetime: round(results.idp.token / keys / lifetimes),
    grantRequestsPerKeyPerLifetime: round(results.idp.obo / keys / lifetimes),
    tokensPerKeyPerLifetime: {
      mean: round(perKey.reduce((a, b) => a + b, 0) / Math.max(1, perKey.length)),
      p50: round(quantile(perKey, 0.5)),
      max: round(quantile(perKey, 1)),
    },
  }
}

/** Sums the workers' `stats()` counters (numbers only). */
function statsTotal(finals) {
  const total = {}
  for (const { stats } of finals) {
    for (const [name, value] of Object.entries(stats ?? {})) if (typeof value === 'number') total[name] = (total[name] ?? 0) + value
  }
  return total
}

/** The JSON the soak writes. */
export function summarize(results, setup) {
  const rss = rssOf(results.rss, setup.rssBoundMiB)
  const successRate = results.calls ? results.ok / results.calls : 0
  const checks = {
    wrongTokens: results.wrong === 0,
    expiredTokens: results.expired === 0,
    rss: rss.every((p) => p.withinBound),
    successRate: successRate >= setup.minSuccess,
    // Every live worker stopped cleanly, with no call still pending 40 s after its last one began.
    workersFinished: results.finals.length === setup.workers,
    noHangingCalls: results.finals.every((f) => f.unfinished === 0),
  }
  return {
    setup,
    finishedAt: new Date().toISOString(),
    pass: Object.values(checks).every(Boolean),
    checks,
    calls: results.calls,
    ok: results.ok,
    successRate: round(successRate, 5),
    errorsByCode: results.errors,
    wrongTokens: results.wrong,
    expiredTokens: results.expired,
    shed: results.shed,
    problems: results.problems,
    logs: results.logs,
    idp: idpLoad(results, setup),
    timeToTokenMs: latencies(results.samples, setup.durationMs),
    rss,
    events: results.events.map((e) => ({ t: round(e.t / 1000, 1), what: e.what })),
    workerStats: statsTotal(results.finals),
    unfinishedCalls: results.finals.reduce((a, f) => a + (f.unfinished ?? 0), 0),
  }
}

/** The summary on the console. */
export function printSummary(s) {
  const line = (...parts) => console.log(parts.join(''))
  line(`calls ${s.calls}, ok ${s.ok} (${(s.successRate * 100).toFixed(3)} %), shed ${s.shed}`)
  line(`errors by code: ${JSON.stringify(s.errorsByCode)}`)
  line(`wrong tokens ${s.wrongTokens}, expired tokens ${s.expiredTokens}`)
  for (const p of s.problems.slice(0, 10)) line(`  ${p}`)
  const idp = s.idp
  line(
    `IdP: ${idp.counters.token} token requests (${idp.counters.faults} faulted), ${idp.keys} keys × ${idp.lifetimes} lifetimes: ` +
      `${idp.requestsPerKeyPerLifetime} requests per key per lifetime (${idp.grantRequestsPerKeyPerLifetime} reached the grant); ` +
      `tokens per key per lifetime mean ${idp.tokensPerKeyPerLifetime.mean}, max ${idp.tokensPerKeyPerLifetime.max}`,
  )
  line('time-to-token (ms) per minute:  minute   calls      p50      p99      max')
  for (const m of s.timeToTokenMs.perMinute) {
    line(
      '                                ',
      [m.minute, m.calls, m.p50, m.p99, m.max].map((v, i) => String(v).padStart(i === 0 ? 6 : 8)).join(' '),
    )
  }
  line(`RSS (MiB): process  start  at-2-min  end  growth (bound ${s.setup.rssBoundMiB})`)
  for (const p of s.rss) {
    line(
      `  ${p.name.padEnd(11)} ${String(p.startMiB).padStart(7)} ${String(p.baselineMiB).padStart(8)} ${String(p.endMiB).padStart(7)} ` +
        `${String(p.growthMiB).padStart(7)}${p.withinBound ? '' : '  OVER BOUND'}  per minute ${p.perMinuteMiB.join(' ')}`,
    )
  }
  line(`checks: ${JSON.stringify(s.checks)} → ${s.pass ? 'PASS' : 'FAIL'}`)
}
