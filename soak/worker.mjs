// One "LibreChat instance" of the soak: a child process (forked with IPC by soak/run.mjs) with
// its own OboTokenService on the shared Redis tier. It calls at a steady rate for its users
// until told to stop, checks every token it is handed (the user and scopes of the call, from
// the token's own claims; its `exp` at that moment), and sends the parent a batch every two
// seconds: latencies, outcomes, problems, and the `jti` of each key's token when it changes.
// Tokens never leave this process. It exits when the parent disconnects.

import obo from '../index.js'

const { OboTokenService } = obo

const BATCH_MS = 2000
/** Calls in flight beyond this are not started (counted as `shed`): a bound, not a queue. */
const MAX_IN_FLIGHT = 2000
/** At most this many problem descriptions per batch (the counts are always complete). */
const MAX_PROBLEMS = 20

let config
let service
let timer
let flusher
let inFlight = 0
let batch = emptyBatch()
/** The last `jti` seen for each key (`user|scopes`): fixed size, one entry per key. */
const lastJti = new Map()

function emptyBatch() {
  return { samples: [], ok: 0, errors: {}, wrong: 0, expired: 0, shed: 0, problems: [], jtis: [], logs: { warn: 0, error: 0 } }
}

/** The claims of a JWS access token, or undefined when it is not one. */
function claimsOf(token) {
  try {
    return JSON.parse(Buffer.from(String(token).split('.')[1], 'base64url').toString('utf8'))
  } catch {
    return undefined
  }
}

/** Why a token with `claims` (claimsOf's answer) is not the token of `user` for `scope` (undefined when it is). */
function wrongness(claims, user, scope) {
  if (!claims) return 'not a JWS'
  const expected = config.expect[scope]
  if (claims.sub !== user.name || claims.oid !== user.oid) return `sub ${claims.sub} for ${user.name}`
  if (claims.aud !== expected.aud) return `aud ${claims.aud} for ${scope}`
  if (claims.scp !== expected.scp) return `scp ${claims.scp} for ${scope}`
  return undefined
}

function problem(text) {
  if (batch.problems.length < MAX_PROBLEMS) batch.problems.push(text)
}

/** One call for `user` and `scope`, timed and checked. */
async function call(user, scope) {
  inFlight += 1
  const t0 = performance.now()
  try {
    const result = await service.exchangeOboToken({ openidId: user.oid, tenantId: config.tenant }, user.token, scope)
    const handedOut = Date.now()
    batch.samples.push(handedOut - config.runStart, performance.now() - t0)
    batch.ok += 1
    const claims = claimsOf(result.access_token)
    const why = wrongness(claims, user, scope)
    if (why) {
      batch.wrong += 1
      problem(`wrong token: ${why}`)
    }
    if (!claims || !(claims.exp * 1000 > handedOut)) {
      batch.expired += 1
      problem(`expired token for ${user.name} ${scope}: exp ${claims?.exp}, handed out at ${handedOut / 1000}`)
    }
    const key = `${user.name}|${scope}`
    if (claims?.jti && lastJti.get(key) !== claims.jti) {
      lastJti.set(key, claims.jti)
      batch.jtis.push(key, claims.jti)
    }
  } catch (err) {
    const name = String(err?.code ?? err?.error ?? err?.name ?? 'unknown')
    const code = err?.status ? `${name} (${err.status})` : name
    batch.errors[code] = (batch.errors[code] ?? 0) + 1
  } finally {
    inFlight -= 1
  }
}

function flush() {
  const sent = batch
  batch = emptyBatch()
  process.send({ type: 'batch', ...sent })
}

/** Starts the steady calls: one every `1000 / rate` ms, users and scopes from a seeded sequence. */
function start(received) {
  config = received
  service = new OboTokenService({
    ...config.options,
    logger: (level) => {
      if (level in batch.logs) batch.logs[level] += 1
    },
  })
  let n = config.seed
  const tick = () => {
    if (Date.now() >= config.runEnd) return stop()
    if (inFlight >= MAX_IN_FLIGHT) {
      batch.shed += 1
      return
    }
    n = (Math.imul(n, 1103515245) + 12345) >>> 0
    const user = config.users[n % config.users.length]
    const scope = config.scopes[(n >>> 16) % config.scopes.length]
    call(user, scope)
  }
  // Every process starts calling at `runStart`, so the run's clock is the same everywhere.
  timer = setTimeout(() => {
    timer = setInterval(tick, 1000 / config.rate)
  }, config.runStart - Date.now())
  flusher = setInterval(flush, BATCH_MS)
  process.send({ type: 'started' })
}

/** Stops calling, waits (at most 40 s) for the calls in flight, sends the last batch and the stats. */
async function stop() {
  if (!timer) return
  clearTimeout(timer)
  clearInterval(timer)
  timer = undefined
  for (let i = 0; i < 400 && inFlight > 0; i++) await new Promise((resolve) => setTimeout(resolve, 100))
  clearInterval(flusher)
  flush()
  process.send({ type: 'final', stats: service.stats(), unfinished: inFlight })
}

process.on('message', (message) => {
  if (message.op === 'start') start(message.config)
  if (message.op === 'stop') stop()
})
process.on('disconnect', () => process.exit(0))
process.send({ type: 'ready' })
