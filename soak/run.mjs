// `npm run soak`: a fleet through a bad day (issue 21, item 2). Eight node processes (the
// instances, soak/worker.mjs) share one redis-server and the local IdP (__test__/idp/), both
// started here on 127.0.0.1. Tokens live about 20 s and refresh-ahead is on; 500 users call at a
// steady rate, each user from two of the processes. On a schedule: Redis is killed and started
// again every minute, 5 % of the IdP's token answers are 503s and 1 % drop the connection, every
// IdP answer is held 2 s for 5 s each minute, and one process is killed and started again
// midway. Every token handed out is checked in the process that got it (soak/worker.mjs).
//
// SOAK_MINUTES (default 10, fractions allowed) sets the length. It prints a summary and writes
// target/soak/soak.json and target/soak/soak.svg; it exits non-zero when a wrong or expired token
// was handed out, when a worker's RSS grew past RSS_BOUND_MIB after its first two minutes, when
// under 99 % of calls succeeded, or when a worker crashed or left a call unsettled. Every process it starts is stopped by pid, also on failure
// and on Ctrl-C; every wait is bounded.

import { fork } from 'node:child_process'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { startIdp, CLIENTS, TENANT, USERS, RESOURCES } from '../__test__/idp/index.mjs'
import { startRedis, until } from '../__test__/redis.mjs'
import { summarize, printSummary } from './report.mjs'
import { chart } from './chart.mjs'

const WORKERS = 8
const USER_COUNT = 500
/** Calls per second per process: 400 a second in all. */
const RATE = 50
const TOKEN_SECONDS = 20
/** The cache serves a token while more than this remains (LibreChat's 30 s would outlive a 20 s token). */
const EXPIRY_BUFFER_SECONDS = 5
const FAULTS = { status503: 0.05, drop: 0.01 }
/** Each minute, from this second for SPIKE_SECONDS, every IdP answer is held SPIKE_MS first. */
const SPIKE = { atSecond: 45, seconds: 5, ms: 2000 }
/** Each minute, at this second, Redis is killed (SIGKILL); it is started again REDIS_DOWN_MS later. */
const REDIS_KILL_SECOND = 30
const REDIS_DOWN_MS = 3000
/** The process killed midway (SIGKILL) and started again after WORKER_DOWN_MS. */
const VICTIM = 3
const WORKER_DOWN_MS = 2000
/**
 * How far a worker's RSS may grow from its level at two minutes (or half its life, if shorter)
 * to its end. Why 16 MiB: see README "Soak".
 */
const RSS_BOUND_MIB = 16
const MIN_SUCCESS = 0.99
const SCOPES = ['api://mcp-files/files.read', 'api://mcp-mail/mail.read']
const OUT = fileURLToPath(new URL('../target/soak/', import.meta.url))
const WORKER = fileURLToPath(new URL('./worker.mjs', import.meta.url))

const minutes = Number(process.env.SOAK_MINUTES ?? 10)
if (!(minutes > 0 && minutes <= 24 * 60)) {
  console.error(`SOAK_MINUTES must be a number of minutes above 0 and at most 1440, got ${process.env.SOAK_MINUTES}`)
  process.exit(2)
}
const durationMs = Math.round(minutes * 60_000)

/** Everything started here, stopped by pid in `shutdown`. */
const fleet = { redis: undefined, idp: undefined, workers: new Array(WORKERS) }
let stopping = false

/** Stops every process and server this run started (by pid), once; bounded waits. */
async function shutdown() {
  if (stopping) return
  stopping = true
  for (const worker of fleet.workers) if (worker) killPid(worker.child.pid)
  await Promise.all(fleet.workers.map((w) => w && Promise.race([w.exited, sleep(5000)])))
  await fleet.redis?.stop()
  await Promise.race([fleet.idp?.close(), sleep(5000)])
}

function killPid(pid, signal = 'SIGKILL') {
  try {
    process.kill(pid, signal)
  } catch {}
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    console.error(`soak: ${signal}, stopping every process it started`)
    await shutdown()
    process.exit(130)
  })
}

/** 500 users the IdP knows, each consented to every resource. */
function soakUsers() {
  const users = []
  for (let i = 0; i < USER_COUNT; i++) {
    const name = `soak-${String(i).padStart(3, '0')}`
    const oid = `50a50000-0000-4000-8000-${String(i).padStart(12, '0')}`
    USERS[name] = { oid, consented: Object.keys(RESOURCES) }
    users.push({ name, oid })
  }
  return users
}

/** What each scope string's token must say: `aud` is the resource, `scp` the scope name. */
function expectations() {
  const expect = {}
  for (const scope of SCOPES) {
    const slash = scope.lastIndexOf('/')
    expect[scope] = { aud: scope.slice(0, slash), scp: scope.slice(slash + 1) }
  }
  return expect
}

/** A seeded generator (mulberry32), so a run's faults can be told apart from chance. */
function random(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** The IdP's faults by rate, and its latency spike by the clock. */
function faultPicker(runStart, seed) {
  const next = random(seed)
  return () => {
    const second = ((Date.now() - runStart) / 1000) % 60
    const delayMs = second >= SPIKE.atSecond && second < SPIKE.atSecond + SPIKE.seconds ? SPIKE.ms : 0
    const r = next()
    if (r < FAULTS.status503) return { status: 503, delayMs }
    if (r < FAULTS.status503 + FAULTS.drop) return { drop: true, delayMs }
    return delayMs ? { delayMs } : undefined
  }
}

/** Forks worker `index` and starts its calls; resolves when it is calling (at most 30 s). */
async function startWorker(index, name, config, onMessage) {
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const worker = { index, name, child, exited, final: undefined }
  fleet.workers[index] = worker
  const started = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${index} did not start within 30 s`)), 30_000)
    exited.then(() => reject(new Error(`worker ${index} exited while starting`)))
    child.on('message', (message) => {
      if (message.type === 'ready') child.send({ op: 'start', config })
      else if (message.type === 'started') {
        clearTimeout(timer)
        resolve()
      } else onMessage(worker, message)
    })
  })
  await started
  return worker
}

/** Samples the RSS (KiB, from /proc) of every live process of the run. */
function sampleRss(results, t) {
  const processes = [{ name: 'idp+driver', pid: process.pid }]
  if (fleet.redis) processes.push({ name: 'redis', pid: fleet.redis.pid })
  for (const w of fleet.workers) if (w && !w.final && w.child.exitCode === null) processes.push({ name: w.name, pid: w.child.pid })
  for (const { name, pid } of processes) {
    try {
      const kib = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])
      if (kib > 0) results.rss.push({ t, name, pid, kib })
    } catch {}
  }
}

/** Kills Redis by its pid and starts it again on its port after REDIS_DOWN_MS. */
async function redisOutage(results, t) {
  results.events.push({ t, what: 'redis killed' })
  await fleet.redis.kill('SIGKILL')
  await sleep(REDIS_DOWN_MS)
  if (stopping) return
  try {
    await fleet.redis.restart()
    results.events.push({ t: t + REDIS_DOWN_MS, what: 'redis restarted' })
  } catch (err) {
    results.events.push({ t: t + REDIS_DOWN_MS, what: `redis did not restart: ${err.message}` })
  }
}

async function main() {
  const users = soakUsers()
  const seed = Number(process.env.SOAK_SEED ?? 21)
  fleet.redis = await startRedis()
  fleet.idp = await startIdp()
  fleet.idp.setExpiresIn(TOKEN_SECONDS)
  const userTtl = Math.ceil(durationMs / 1000) + 600 // outlives the run and every refresh's margin
  for (const user of users) user.token = await fleet.idp.mintUserToken(user.name, { ttlSeconds: userTtl })

  const results = {
    calls: 0,
    ok: 0,
    errors: {},
    wrong: 0,
    expired: 0,
    shed: 0,
    problems: [],
    logs: { warn: 0, error: 0 },
    samples: new Map(), // 10-second bucket → latencies (ms)
    jtis: new Map(), // key → Set of jti
    rss: [],
    events: [],
    finals: [],
  }
  const onMessage = (worker, message) => {
    if (message.type === 'batch') absorb(results, message)
    if (message.type === 'final') {
      worker.final = message
      results.finals.push({ name: worker.name, stats: message.stats, unfinished: message.unfinished })
    }
  }

  const runStart = Date.now() + 5000 // every process is up before the first call
  const runEnd = runStart + durationMs
  const options = {
    issuer: fleet.idp.issuer,
    clientId: CLIENTS.post.clientId,
    clientSecret: CLIENTS.post.clientSecret,
    clientAuthMethod: CLIENTS.post.method,
    expiryBufferSeconds: EXPIRY_BUFFER_SECONDS,
    refreshAhead: 0.8,
    sharedCache: { url: fleet.redis.url, keyPrefix: 'soak', encryptionKeys: [`1:${'5a'.repeat(32)}`] },
  }
  const configFor = (index) => ({
    options,
    tenant: TENANT,
    // Each user calls from two processes (its own and the next), as behind a load balancer.
    users: users.filter((_, i) => i % WORKERS === index || (i + 1) % WORKERS === index),
    scopes: SCOPES,
    expect: expectations(),
    rate: RATE,
    runStart,
    runEnd,
    seed: seed * 1000 + index,
  })
  await Promise.all(Array.from({ length: WORKERS }, (_, i) => startWorker(i, `worker-${i}`, configFor(i), onMessage)))
  fleet.idp.setFaultPicker(faultPicker(runStart, seed))
  console.log(
    `soak: ${minutes} min, ${WORKERS} processes × ${RATE} calls/s, ${USER_COUNT} users × ${SCOPES.length} scopes, ` +
      `${TOKEN_SECONDS} s tokens, redis ${fleet.redis.url}, IdP ${fleet.idp.issuer}`,
  )

  const outages = []
  let victimKilled = false
  const ticks = Math.ceil(durationMs / 1000) + 10
  for (let tick = 0; tick < ticks && Date.now() < runEnd; tick++) {
    await sleep(Math.max(0, runStart + tick * 1000 - Date.now()))
    const t = Date.now() - runStart
    // The tick's second, not the clock's: the ticks that catch up after a blocking restart
    // would all read the same second from the clock, repeating (or skipping) its actions.
    const second = tick
    if (second % 5 === 0) sampleRss(results, t)
    if (second > 0 && second % 60 === REDIS_KILL_SECOND && t + REDIS_DOWN_MS < durationMs) outages.push(redisOutage(results, t))
    if (!victimKilled && t >= durationMs / 2) {
      victimKilled = true
      await restartVictim(results, t, configFor(VICTIM), onMessage)
    }
    if (second % 60 === 0 && second > 0) console.log(`soak: minute ${second / 60} of ${minutes}, ${results.ok} tokens so far`)
  }
  await Promise.all(outages)
  for (const w of fleet.workers) if (!w.final && w.child.connected) w.child.send({ op: 'stop' })
  await Promise.race([Promise.all(fleet.workers.map((w) => finalOf(w))), sleep(60_000)])
  sampleRss(results, Date.now() - runStart)
  results.idp = { ...fleet.idp.counters }
  await shutdown()

  const summary = summarize(results, {
    minutes,
    durationMs,
    workers: WORKERS,
    users: USER_COUNT,
    scopes: SCOPES,
    rate: RATE,
    tokenSeconds: TOKEN_SECONDS,
    expiryBufferSeconds: EXPIRY_BUFFER_SECONDS,
    faults: { ...FAULTS, spike: SPIKE, redisKillSecond: REDIS_KILL_SECOND, redisDownMs: REDIS_DOWN_MS, victim: `worker-${VICTIM}` },
    rssBoundMiB: RSS_BOUND_MIB,
    minSuccess: MIN_SUCCESS,
    seed,
  })
  mkdirSync(OUT, { recursive: true })
  writeFileSync(`${OUT}soak.json`, `${JSON.stringify(summary, null, 2)}\n`)
  writeFileSync(`${OUT}soak.svg`, chart(summary))
  printSummary(summary)
  console.log(`soak: wrote ${OUT}soak.json and ${OUT}soak.svg`)
  return summary.pass
}

/** Adds a worker's batch to the run's totals. */
function absorb(results, batch) {
  const { samples } = batch
  for (let i = 0; i < samples.length; i += 2) {
    const bucket = Math.floor(samples[i] / 10_000)
    if (!results.samples.has(bucket)) results.samples.set(bucket, [])
    results.samples.get(bucket).push(samples[i + 1])
  }
  const failed = Object.values(batch.errors).reduce((a, b) => a + b, 0)
  results.calls += batch.ok + failed
  results.ok += batch.ok
  for (const [code, n] of Object.entries(batch.errors)) results.errors[code] = (results.errors[code] ?? 0) + n
  results.wrong += batch.wrong
  results.expired += batch.expired
  results.shed += batch.shed
  results.logs.warn += batch.logs.warn
  results.logs.error += batch.logs.error
  for (const text of batch.problems) if (results.problems.length < 50) results.problems.push(text)
  for (let i = 0; i < batch.jtis.length; i += 2) {
    const key = batch.jtis[i]
    if (!results.jtis.has(key)) results.jtis.set(key, new Set())
    results.jtis.get(key).add(batch.jtis[i + 1])
  }
}

/** Kills the victim process by its pid, then starts a new one for the same users. */
async function restartVictim(results, t, config, onMessage) {
  const victim = fleet.workers[VICTIM]
  results.events.push({ t, what: `${victim.name} killed` })
  killPid(victim.child.pid)
  await Promise.race([victim.exited, sleep(5000)])
  victim.final = { killed: true }
  await sleep(WORKER_DOWN_MS)
  const again = await startWorker(VICTIM, `worker-${VICTIM}b`, config, onMessage)
  results.events.push({ t: Date.now() - config.runStart, what: `${again.name} started` })
}

/** Resolves when the worker sent its final batch or exited (the caller bounds the wait). */
async function finalOf(worker) {
  await until(() => worker.final || worker.child.exitCode !== null, { timeoutMs: 60_000, everyMs: 100 })
}

let pass = false
try {
  pass = await main()
} catch (err) {
  console.error(`soak: ${err?.stack ?? err}`)
  await shutdown()
  process.exit(2)
}
process.exit(pass ? 0 : 1)
