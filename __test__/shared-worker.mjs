// One "LibreChat instance" of the shared-tier tests and benchmark: a child process (forked
// with IPC) holding its own OboTokenService. The parent sends `{ id, op, ...args }`, the
// worker answers `{ id, ok, ...result }`. Tokens never leave it: results carry a short
// SHA-256 of each access token, enough to compare processes. It exits when the parent
// disconnects.

import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import obo from '../index.js'

const { OboTokenService } = obo

let service
const logs = []
const fingerprint = (token) => createHash('sha256').update(token).digest('hex').slice(0, 16)
const now = () => Number(process.hrtime.bigint()) / 1e6 // ms

const ops = {
  /** Creates the service from `options` (plus a logger that keeps lines here). */
  start({ options }) {
    service = new OboTokenService({ ...options, logger: (level, message) => logs.push({ level, message }) })
    return {}
  },
  /**
   * `n` concurrent calls, started at epoch ms `at` if given (all processes at once):
   * how many failed, the distinct token fingerprints, and the wall time.
   */
  async exchange({ user, token, scopes, n = 1, fromCache = true, at }) {
    if (at) await sleep(Math.max(0, at - Date.now()))
    const started = now()
    const outcomes = await Promise.allSettled(Array.from({ length: n }, () => service.exchangeOboToken(user, token, scopes, fromCache)))
    const wallMs = now() - started
    const fingerprints = [...new Set(outcomes.filter((o) => o.status === 'fulfilled').map((o) => fingerprint(o.value.access_token)))]
    const failed = outcomes.filter((o) => o.status === 'rejected').map((o) => o.reason?.message)
    return { failed, fingerprints, wallMs }
  },
  /** `count` sequential calls for one key: per-call latency (µs) quantiles and the fingerprints seen. */
  async sequential({ user, token, scopes, count }) {
    const samples = new Float64Array(count)
    const seen = new Set()
    for (let i = 0; i < count; i++) {
      const t0 = now()
      const result = await service.exchangeOboToken(user, token, scopes)
      samples[i] = (now() - t0) * 1000
      seen.add(fingerprint(result.access_token))
    }
    samples.sort()
    return { median: samples[Math.floor(count / 2)], p99: samples[Math.floor(count * 0.99)], fingerprints: [...seen] }
  },
  /** One call per `{ user, token }` in `calls`, one at a time: µs per call. */
  async each({ calls, scopes }) {
    const samples = []
    const seen = []
    for (const { user, token } of calls) {
      const t0 = now()
      const result = await service.exchangeOboToken(user, token, scopes)
      samples.push((now() - t0) * 1000)
      seen.push(fingerprint(result.access_token))
    }
    return { samples, fingerprints: seen }
  },
  invalidate({ user, scopes }) {
    return { dropped: service.invalidate(user, scopes) }
  },
  clear() {
    service.clear()
    return {}
  },
  stats() {
    return { stats: service.stats() }
  },
  logs() {
    return { logs }
  },
}

process.on('message', async ({ id, op, ...args }) => {
  try {
    process.send({ id, ok: true, ...(await ops[op](args)) })
  } catch (err) {
    process.send({ id, ok: false, error: err?.message ?? String(err) })
  }
})
process.on('disconnect', () => process.exit(0))
process.send({ ready: true })
