// The churn scenario of `npm run bench` (issue 12): short-lived tokens for a few hundred
// users, tool calls arriving at random, the local IdP answering each exchange after
// 100 ms. Tokens live CHURN_LIFETIME_S (default 30 s, 1 s of it the expiry buffer: a
// larger share than LibreChat's 30 s of an hour-long Entra token). Users join at random in
// the first CHURN_JOIN_S (10 s); calls arrive until CHURN_SECONDS (70 s). A call is
// measured once the run is past the joins and its user's first call has answered (a
// user's very first call is cold and must wait for the IdP: that is not churn), so each
// run measures a minute, two token lifetimes. Three runs: refresh-ahead on (default
// 0.8), off, and the JS reference of LibreChat. "Plain hits" are calls in the same run,
// at the same rate, to a long-lived key (the canned endpoint's one-hour tokens): the
// yardstick for "within 2x of a hit".

import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import obo from '../index.js'
import { CREDENTIALS, fakeAssertion } from './impls.mjs'
import { createReferenceService } from './reference.mjs'
import { getJson, SCOPES } from './measure.mjs'

const env = (name, fallback) => Number(process.env[name] ?? fallback)
export const CHURN = {
  users: env('CHURN_USERS', 200),
  /** Calls per user per second, Poisson. */
  rate: env('CHURN_RATE', 10),
  lifetimeS: env('CHURN_LIFETIME_S', 30),
  bufferS: 1,
  joinS: env('CHURN_JOIN_S', 10),
  seconds: env('CHURN_SECONDS', 70),
  idpDelayMs: 100,
  controlUsers: 20,
}

function service(kind, issuer, refreshAhead) {
  if (kind === 'reference') return createReferenceService({ issuer, ...CREDENTIALS, bufferMs: CHURN.bufferS * 1000 })
  const svc = new obo.OboTokenService({ issuer, ...CREDENTIALS, expiryBufferSeconds: CHURN.bufferS, refreshAhead })
  return { exchangeOboToken: svc.exchangeOboToken.bind(svc), stats: () => svc.stats() }
}

function quantiles(samples) {
  const sorted = Float64Array.from(samples).sort()
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1], n: sorted.length }
}

/** One run: `kind` is native or reference; `refreshAhead` for native. */
async function run(label, kind, refreshAhead, servers) {
  const idpCount = () => getJson(`${servers.idp}/__test/counters`).then((c) => c.obo)
  const [churned, control] = await Promise.all([service(kind, servers.idp, refreshAhead), service(kind, servers.canned, refreshAhead)])
  const tokens = await getJson(`${servers.control}/mint?n=${CHURN.users}`)
  const users = tokens.map((token, i) => ({
    who: { openidId: `churn-${label}-${i}`, tenantId: 'tenant' },
    token,
    /** Joins at a random time in the first CHURN_JOIN_S, so token ages are spread. */
    joinsMs: Math.random() * CHURN.joinS * 1000,
    warm: false,
    exchange: churned.exchangeOboToken,
  }))
  const controls = Array.from({ length: CHURN.controlUsers }, (_, i) => ({
    who: { openidId: `control-${label}-${i}`, tenantId: 'tenant' },
    token: fakeAssertion(`control-${label}-${i}`),
    joinsMs: 0,
    warm: true,
    exchange: control.exchangeOboToken,
  }))
  await Promise.all(controls.map((u) => u.exchange(u.who, u.token, SCOPES)))
  const everyone = [...users, ...controls]
  const totalRate = everyone.length * CHURN.rate // calls per second
  const warmMs = CHURN.joinS * 1000
  const endMs = CHURN.seconds * 1000
  const churnSamples = []
  const hitSamples = []
  let errors = 0
  let idpAtWarm
  let inFlight = 0
  const start = performance.now()
  let next = 0
  let measuring = false
  await new Promise((resolve) => {
    const tick = () => {
      const elapsed = performance.now() - start
      if (!measuring && elapsed >= warmMs) {
        measuring = true
        idpCount().then((n) => {
          idpAtWarm = n
        })
      }
      while (next <= elapsed && next < endMs) {
        const user = everyone[Math.floor(Math.random() * everyone.length)]
        next += (-Math.log(1 - Math.random()) / totalRate) * 1000
        if (user.joinsMs > elapsed) continue
        const measured = measuring && user.warm
        const record = measured ? (user.exchange === control.exchangeOboToken ? hitSamples : churnSamples) : null
        const t0 = performance.now()
        inFlight += 1
        user.exchange(user.who, user.token, SCOPES).then(
          () => {
            inFlight -= 1
            user.warm = true
            record?.push(performance.now() - t0)
          },
          () => {
            inFlight -= 1
            errors += 1
          },
        )
      }
      if (next < endMs) setTimeout(tick, 1)
      else resolve()
    }
    tick()
  })
  for (let i = 0; i < 500 && inFlight > 0; i++) await sleep(10)
  const idpRequests = (await idpCount()) - (idpAtWarm ?? 0)
  const measuredS = (endMs - warmMs) / 1000
  const usableS = CHURN.lifetimeS - CHURN.bufferS
  return {
    label,
    churn: quantiles(churnSamples),
    hits: quantiles(hitSamples),
    slowCalls: churnSamples.filter((ms) => ms >= CHURN.idpDelayMs).length,
    errors,
    idpRequests,
    perKeyPerLifetime: idpRequests / (CHURN.users * (measuredS / CHURN.lifetimeS)),
    perKeyPerUsableLifetime: idpRequests / (CHURN.users * (measuredS / usableS)),
    stats: churned.stats?.(),
  }
}

/** The three runs against the servers of bench.mjs; prints a table, returns the figures. */
export async function churn(servers) {
  await getJson(`${servers.control}/idp?expiresIn=${CHURN.lifetimeS}&oboDelayMs=${CHURN.idpDelayMs}`)
  const results = []
  try {
    results.push(await run('refresh-on', 'native', 0.8, servers))
    console.error('measured churn: refresh-ahead on')
    results.push(await run('refresh-off', 'native', false, servers))
    console.error('measured churn: refresh-ahead off')
    results.push(await run('reference', 'reference', undefined, servers))
    console.error('measured churn: JS reference')
  } finally {
    await getJson(`${servers.control}/idp?expiresIn=3600&oboDelayMs=0`)
  }
  const fmt = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(2))
  console.log(
    `\nchurn: ${CHURN.users} users × ${CHURN.rate} calls/s at random, tokens of ${CHURN.lifetimeS} s (${CHURN.bufferS} s buffer), ` +
      `IdP delay ${CHURN.idpDelayMs} ms, ${CHURN.seconds} s per run, users join in the first ${CHURN.joinS} s (not measured), each user's first call not measured\n`,
  )
  console.log(
    '| run | time to token p50 ms | p99 ms | max ms | plain-hit p99 ms | p99 / hit p99 | calls ≥ IdP delay | IdP req / key / lifetime | … / usable lifetime | calls |',
  )
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
  for (const r of results) {
    console.log(
      `| ${r.label} | ${fmt(r.churn.p50)} | ${fmt(r.churn.p99)} | ${fmt(r.churn.max)} | ${fmt(r.hits.p99)} | ${fmt(r.churn.p99 / r.hits.p99)} | ${r.slowCalls} | ${r.perKeyPerLifetime.toFixed(2)} | ${r.perKeyPerUsableLifetime.toFixed(2)} | ${r.churn.n}${r.errors ? ` (${r.errors} errors)` : ''} |`,
    )
  }
  const on = results[0]
  console.log(
    `\ntargets, refresh-ahead on: p99 ≤ 2 × hit p99: ${on.churn.p99 <= 2 * on.hits.p99 ? '✓' : '✗'}; ` +
      `no call ≥ ${CHURN.idpDelayMs} ms: ${on.slowCalls === 0 ? '✓' : '✗'} (max ${fmt(on.churn.max)} ms); ` +
      `≤ 1.1 IdP requests per key per lifetime: ${on.perKeyPerLifetime <= 1.1 ? '✓' : '✗'} (${on.perKeyPerLifetime.toFixed(2)})`,
  )
  if (on.stats) {
    const s = on.stats
    console.log(
      `refresh-ahead on, stats: ${s.refreshesStarted} started, ${s.refreshesSucceeded} succeeded, ${s.refreshesFailed} failed, ${s.servedDuringRefresh} calls served during a refresh, ${s.misses} misses`,
    )
  }
  return results
}
