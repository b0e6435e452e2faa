// The shared Redis tier across real node processes and a real redis-server (started here
// on a free loopback port, stopped by its pid): cross-process single-flight, what one
// process exchanged served by another, invalidate and forced exchanges seen everywhere, a
// Redis killed mid-run, a dead leader's lease, tampered and copied records, key rotation,
// and what Redis holds afterwards. Skipped (with how to run it) without redis-server,
// except under CI.

import { after, afterEach, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { startIdp, CLIENTS, TENANT, USERS } from './idp/index.mjs'
import { redisSuite, startRedis, dump, keysMatching, subscribe, until } from './redis.mjs'
import { startWorker, startWorkers, stopWorkers } from './workers.mjs'
import obo from '../index.js'

const { OboTokenService } = obo
const FILES = 'api://mcp-files/files.read'
const MAIL = 'api://mcp-mail/mail.read'
const PREFIX = 'obo-test'
const OLD = randomBytes(32).toString('hex')
const NEW = randomBytes(32).toString('hex')
const fingerprint = (token) => createHash('sha256').update(token).digest('hex').slice(0, 16)
const MFA = { amr: ['pwd', 'mfa'] } // bob's tenant demands MFA
const userOf = (name) => ({ openidId: USERS[name].oid, tenantId: TENANT })
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

redisSuite('shared tier: node processes and a real redis-server', () => {
  let redis
  let idp
  const workers = []

  before(async () => {
    redis = await startRedis()
    idp = await startIdp()
  })
  after(async () => {
    await stopWorkers(workers.splice(0))
    await idp?.close()
    await redis?.stop()
  })
  beforeEach(async () => {
    // A test that failed while Redis was down leaves it down: start it again on its port.
    if (!(await redis.command('PING').catch(() => null))) await redis.restart()
    await redis.command('FLUSHALL')
    idp.resetCounters()
    idp.setOboDelay(0)
  })
  afterEach(() => stopWorkers(workers.splice(0)))

  const options = (shared = {}) => ({
    issuer: idp.issuer,
    clientId: CLIENTS.post.clientId,
    clientSecret: CLIENTS.post.clientSecret,
    clientAuthMethod: CLIENTS.post.method,
    retryDelayMs: 20,
    sharedCache: { url: redis.url, keyPrefix: PREFIX, encryptionKeys: [`1:${OLD}`], ...shared },
  })
  const spawn = async (n, shared) => {
    const started = await startWorkers(n, options(shared))
    workers.push(...started)
    return started
  }
  /** An in-process instance (its own local tier and its own Redis connections), with its logs. */
  const local = (shared) => {
    const logs = []
    const service = new OboTokenService({ ...options(shared), logger: (level, message) => logs.push({ level, message }) })
    return { service, logs }
  }
  /** Waits (bounded) until `n` processes listen on the tier's channel (a process subscribes on its first Redis call). */
  const subscribers = (n) =>
    until(async () => (await redis.command('PUBSUB', 'NUMSUB', `${PREFIX}::OBO_L2:events`))[1] >= n, { timeoutMs: 5000 })

  test('8 processes × 100 concurrent calls on one cold key: exactly 1 IdP request and the same token everywhere', async () => {
    const all = await spawn(8)
    const token = await idp.mintUserToken('alice')
    idp.setOboDelay(300) // widen the window in which the others must wait, not exchange
    const at = Date.now() + 500
    const results = await Promise.all(all.map((w) => w.call('exchange', { user: userOf('alice'), token, scopes: FILES, n: 100, at })))
    assert.deepEqual(
      results.flatMap((r) => r.failed),
      [],
    )
    assert.equal(new Set(results.flatMap((r) => r.fingerprints)).size, 1, 'one token in all 8 processes')
    assert.equal(idp.counters.obo, 1, 'IdP token requests')
    const stats = (await Promise.all(all.map((w) => w.call('stats')))).map((r) => r.stats)
    assert.equal(
      stats.reduce((sum, s) => sum + s.exchanges, 0),
      1,
    )
    assert.equal(
      stats.reduce((sum, s) => sum + s.sharedLeaderExchanges, 0),
      1,
    )
    assert.equal(
      stats.reduce((sum, s) => sum + s.sharedHits, 0),
      7,
      'the 7 others read the leader’s token',
    )
  })

  test('what process A exchanged, process B serves with 0 IdP requests', async () => {
    const [a, b] = await spawn(2)
    const token = await idp.mintUserToken('alice')
    const first = await a.call('exchange', { user: userOf('alice'), token, scopes: FILES })
    assert.equal(idp.counters.obo, 1)
    const second = await b.call('exchange', { user: userOf('alice'), token, scopes: FILES })
    assert.deepEqual(second.fingerprints, first.fingerprints)
    assert.equal(idp.counters.obo, 1, 'B made no IdP request')
    const { stats } = await b.call('stats')
    assert.equal(stats.sharedHits, 1)
    assert.equal(stats.exchanges, 0)
    assert.equal(stats.sharedBreaker, 'closed')
  })

  test('invalidate on A reaches B: B no longer serves the old token', async () => {
    const [a, b] = await spawn(2)
    const token = await idp.mintUserToken('alice')
    const call = { user: userOf('alice'), token, scopes: FILES }
    const [old] = (await a.call('exchange', call)).fingerprints
    assert.deepEqual((await b.call('exchange', call)).fingerprints, [old])
    assert.ok(await subscribers(2), 'both processes subscribed')
    assert.equal((await a.call('invalidate', { user: userOf('alice') })).dropped, 1)
    // B's local copy is dropped by A's eviction within a round trip; bounded poll.
    const fresh = await until(
      async () => {
        const [seen] = (await b.call('exchange', call)).fingerprints
        return seen !== old && seen
      },
      { timeoutMs: 3000 },
    )
    assert.ok(fresh, 'B got a new token after A invalidated')
    assert.equal(idp.counters.obo, 2, 'B exchanged again (the shared copy was dropped too)')
  })

  test('a forced exchange on A (fromCache=false) reaches B: B serves A’s new token', async () => {
    const [a, b] = await spawn(2)
    const token = await idp.mintUserToken('alice')
    const call = { user: userOf('alice'), token, scopes: FILES }
    const [old] = (await a.call('exchange', call)).fingerprints
    assert.deepEqual((await b.call('exchange', call)).fingerprints, [old])
    assert.ok(await subscribers(2))
    const [renewed] = (await a.call('exchange', { ...call, fromCache: false })).fingerprints
    assert.notEqual(renewed, old)
    const seen = await until(
      async () => {
        const [fp] = (await b.call('exchange', call)).fingerprints
        return fp !== old && fp
      },
      { timeoutMs: 3000 },
    )
    assert.equal(seen, renewed, 'B serves the token A re-exchanged, not the rejected one')
    assert.equal(idp.counters.obo, 2, 'B read it from Redis')
  })

  test('a stale lease left by a dead leader costs the others the rest of the lease, never a hang', async () => {
    const lockTtlMs = 2000
    const [a, b] = await spawn(2, { lockTtlMs })
    const token = await idp.mintUserToken('alice')
    const call = { user: userOf('alice'), token, scopes: FILES }
    idp.setOboDelay(10_000)
    const doomed = a.call('exchange', call).catch(() => 'killed')
    const leases = await until(async () => {
      const found = await keysMatching(redis, `${PREFIX}::OBO_L2:l:*`)
      return found.length > 0 && found
    })
    assert.ok(leases, 'A took the lease')
    // The lease is taken before the request leaves A: kill A only once the IdP holds it.
    assert.ok(await until(async () => idp.counters.obo === 1), 'A’s request reached the IdP')
    await a.kill()
    assert.equal(await doomed, 'killed')
    idp.setOboDelay(0)
    const remaining = await redis.command('PTTL', leases[0])
    assert.ok(remaining > 0, 'the dead leader’s lease is still there')
    const started = Date.now()
    const result = await b.call('exchange', call)
    const waited = Date.now() - started
    assert.deepEqual(result.failed, [])
    assert.equal(result.fingerprints.length, 1)
    // A lower bound (busy machines only add) and a generous upper one: B waited for the
    // lease, and was not held for good by the dead leader (whose IdP call was held 10 s).
    assert.ok(waited >= remaining - 250, `B waited for the lease (${waited} ms, ${remaining} ms left)`)
    assert.ok(waited < lockTtlMs + 7000, `B waited for the lease, not for the dead leader (${waited} ms)`)
    const { stats } = await b.call('stats')
    assert.ok(stats.sharedWaits >= 1)
    assert.equal(idp.counters.obo, 2, "A's request (lost with A) and B's")
  })

  test('a tampered record, a record copied under another user, an unknown key id: counted, never served, exchange succeeds', async () => {
    const a = local()
    const alice = await idp.mintUserToken('alice')
    const bob = await idp.mintUserToken('bob', MFA)
    await a.service.exchangeOboToken(userOf('alice'), alice, FILES)
    const [aliceKey] = await keysMatching(redis, `${PREFIX}::OBO_L2:v:*`)
    const bobToken = await a.service.exchangeOboToken(userOf('bob'), bob, FILES)
    const bobKey = (await keysMatching(redis, `${PREFIX}::OBO_L2:v:*`)).find((k) => k !== aliceKey)
    assert.ok(aliceKey && bobKey)

    // Tampered: one ciphertext bit flipped.
    const record = Buffer.from(await redis.command('GET', aliceKey))
    record[record.length - 1] ^= 1
    await redis.command('SET', aliceKey, record, 'PX', 60_000)
    const b = local()
    const before = idp.counters.obo
    const served = await b.service.exchangeOboToken(userOf('alice'), alice, FILES)
    assert.ok(served.access_token)
    let stats = b.service.stats()
    assert.equal(stats.sharedDecryptFailures, 1)
    assert.equal(stats.sharedHits, 0)
    assert.equal(idp.counters.obo, before + 1, 'B exchanged itself')

    // Copied: bob's record under alice's name (AAD = the key name) does not open.
    await redis.command('SET', aliceKey, await redis.command('GET', bobKey), 'PX', 60_000)
    const c = local()
    const got = await c.service.exchangeOboToken(userOf('alice'), alice, FILES)
    assert.notEqual(fingerprint(got.access_token), fingerprint(bobToken.access_token), "never bob's token")
    stats = c.service.stats()
    assert.equal(stats.sharedDecryptFailures, 1)
    assert.equal(stats.sharedHits, 0)

    // Unknown key id: the same key bytes under id 9 find the record (names agree) but cannot open id 1's.
    const d = local({ encryptionKeys: [`9:${OLD}`] })
    await d.service.exchangeOboToken(userOf('bob'), bob, FILES)
    stats = d.service.stats()
    assert.equal(stats.sharedDecryptFailures, 1)
    assert.equal(stats.sharedHits, 0)
    assert.equal(stats.exchanges, 1)
  })

  test('rotation: "2:new,1:old" reads records of the old key and writes with the new; a process with only the new key cannot read old records', async () => {
    const old = local({ encryptionKeys: [`1:${OLD}`] })
    const rotated = local({ encryptionKeys: [`2:${NEW}`, `1:${OLD}`] })
    const newOnly = local({ encryptionKeys: [`2:${NEW}`] })
    const alice = await idp.mintUserToken('alice')
    const written = await old.service.exchangeOboToken(userOf('alice'), alice, FILES)
    const read = await rotated.service.exchangeOboToken(userOf('alice'), alice, FILES)
    assert.equal(read.access_token, written.access_token)
    assert.equal(rotated.service.stats().sharedHits, 1)
    assert.equal(idp.counters.obo, 1)

    const bob = await idp.mintUserToken('bob', MFA)
    await rotated.service.exchangeOboToken(userOf('bob'), bob, FILES)
    const values = await Promise.all((await keysMatching(redis, `${PREFIX}::OBO_L2:v:*`)).map((k) => redis.command('GET', k)))
    assert.deepEqual(values.map((v) => v[0]).sort(), [1, 2], 'key id bytes: alice under 1 (old), bob under 2 (new)')

    const unread = await newOnly.service.exchangeOboToken(userOf('alice'), alice, FILES)
    assert.notEqual(unread.access_token, written.access_token)
    assert.equal(newOnly.service.stats().sharedHits, 0)
    assert.equal(idp.counters.obo, 3)
  })

  test('Redis killed mid-run: every call succeeds, the added cost is bounded, and the tier comes back on restart', async (t) => {
    const opTimeoutMs = 50
    const a = local({ opTimeoutMs })
    const tokens = await Promise.all(Array.from({ length: 45 }, () => idp.mintUserToken('alice')))
    const user = userOf('alice')
    const timed = async (token) => {
      const t0 = performance.now()
      const result = await a.service.exchangeOboToken(user, token, FILES)
      assert.ok(result.access_token)
      return performance.now() - t0
    }
    for (const token of tokens.slice(0, 5)) await timed(token) // warm-up: discovery, connections
    const up = []
    for (const token of tokens.slice(5, 25)) up.push(await timed(token))
    const hit = tokens[5]
    const hitUp = []
    for (let i = 0; i < 200; i++) hitUp.push(await timed(hit))

    await redis.kill('SIGKILL')
    const down = []
    /** Per call with Redis down: whether the breaker was open before and after, and the Redis failures it added. */
    const whileDown = []
    const failures = () => {
      const s = a.service.stats()
      return { open: s.sharedBreaker === 'open', count: s.sharedErrors + s.sharedTimeouts }
    }
    for (const token of tokens.slice(25, 45)) {
      const before = failures()
      down.push(await timed(token))
      const after = failures()
      whileDown.push({ open: before.open && after.open, added: after.count - before.count })
    }
    const hitDown = []
    for (let i = 0; i < 200; i++) hitDown.push(await timed(hit))
    let stats = a.service.stats()
    assert.equal(stats.sharedBreaker, 'open', 'repeated failures opened the breaker')
    assert.ok(stats.sharedErrors + stats.sharedTimeouts >= 1)
    const warnings = a.logs.filter((l) => l.level === 'warn' && l.message.startsWith('[OboTokenService] Shared cache unavailable'))
    assert.equal(warnings.length, 1, `one warning for the outage, not one per call: ${JSON.stringify(a.logs.map((l) => l.level))}`)

    const added = down.map((ms) => ms - median(up))
    const addedTotal = added.reduce((s, x) => s + x, 0)
    const worst = Math.max(...added)
    const afterOpen = median(down.slice(5))
    const openCalls = whileDown.filter((c) => c.open)
    t.diagnostic(
      `Redis outage cost: cold exchange median ${median(up).toFixed(1)} ms with Redis up; with Redis killed, worst call +${worst.toFixed(1)} ms, ` +
        `${addedTotal.toFixed(0)} ms added over ${down.length} calls (the first calls pay opTimeoutMs ${opTimeoutMs} per Redis step until the breaker opens), ` +
        `median once open ${afterOpen.toFixed(1)} ms; hit median ${(median(hitUp) * 1000).toFixed(1)} µs up, ${(median(hitDown) * 1000).toFixed(1)} µs down`,
    )
    // Generous bounds, so a busy machine cannot break them: they still tell op timeouts
    // (50 ms each) from a call that waits for Redis' connect timeouts or hangs. What the
    // outage costs in op timeouts is proved by the counters below.
    assert.ok(worst < 2 * opTimeoutMs + 5000, `a call with Redis down is bounded (+${worst.toFixed(1)} ms)`)
    assert.ok(addedTotal < 20_000, `the outage added ${addedTotal.toFixed(0)} ms in all`)
    // With the breaker open, a miss costs what it costs without a shared tier: by count, not
    // by clock, a call made while the breaker stayed open tried no Redis operation.
    assert.ok(openCalls.length >= 1, 'the breaker opened during the outage')
    assert.deepEqual(
      openCalls.map((c) => c.added),
      openCalls.map(() => 0),
      'no Redis error or timeout while the breaker is open',
    )

    await redis.restart()
    // The breaker probes again after its cooldown (5 s); cold calls until it closes (bounded).
    const closed = await until(
      async () => {
        await timed(await idp.mintUserToken('alice')) // a cold key: a miss goes to Redis
        return a.service.stats().sharedBreaker === 'closed'
      },
      { timeoutMs: 12_000, everyMs: 250 },
    )
    assert.ok(closed, 'the breaker closed once Redis answered again')
    assert.ok(a.logs.some((l) => l.level === 'debug' && l.message === '[OboTokenService] Shared cache available again'))
    const fresh = await idp.mintUserToken('alice')
    const written = await a.service.exchangeOboToken(user, fresh, FILES)
    const b = local({ opTimeoutMs })
    const read = await b.service.exchangeOboToken(user, fresh, FILES)
    assert.equal(read.access_token, written.access_token)
    stats = b.service.stats()
    assert.equal(stats.sharedHits, 1, 'shared hits again after the restart')
  })

  test('after a run, no key, value or channel message in Redis holds a token, user id, tenant, issuer or scope in the clear', async () => {
    const heard = await subscribe(redis.port, `${PREFIX}::OBO_L2:events`)
    try {
      const a = local()
      const b = local()
      const secrets = [TENANT, USERS.alice.oid, USERS.bob.oid, FILES, MAIL, 'mcp-files', 'mcp-mail', 'files.read', idp.issuer]
      for (const name of ['alice', 'bob']) {
        const assertion = await idp.mintUserToken(name, MFA)
        secrets.push(assertion, assertion.split('.')[1], createHash('sha256').update(assertion).digest('hex'))
        for (const scopes of [FILES, MAIL]) {
          const token = await a.service.exchangeOboToken(userOf(name), assertion, scopes)
          await b.service.exchangeOboToken(userOf(name), assertion, scopes)
          secrets.push(token.access_token, token.access_token.split('.')[1], token.access_token.split('.')[2])
        }
        const forced = await b.service.exchangeOboToken(userOf(name), assertion, FILES, false)
        secrets.push(forced.access_token, forced.access_token.split('.')[1])
      }
      b.service.invalidate(userOf('bob'), MAIL)
      await until(async () => heard.messages.length >= 3, { timeoutMs: 2000 })

      const entries = await dump(redis)
      assert.ok(entries.some((e) => e.key.includes('OBO_L2:v:')))
      assert.ok(entries.some((e) => e.key.includes('OBO_L2:i:')))
      assert.ok(heard.messages.length >= 3, 'fills and evictions were published')
      const texts = [
        ...entries.map((e) => e.key),
        ...entries.flatMap((e) => e.values.map((v) => v.toString('latin1'))),
        ...heard.messages.map((m) => m.toString('latin1')),
      ]
      for (const secret of secrets) {
        const clear = texts.filter((text) => text.includes(secret))
        assert.equal(clear.length, 0, `a secret of length ${secret.length} appears in the clear`)
      }
      for (const e of entries) assert.ok(e.key.startsWith(`${PREFIX}::OBO_L2:`), 'only the tier’s namespace')
    } finally {
      heard.close()
    }
  })

  test('one worker alone (no Redis reachable) still exchanges', async () => {
    const w = await startWorker({ ...options({ url: 'redis://127.0.0.1:1' }) })
    workers.push(w)
    const token = await idp.mintUserToken('alice')
    const result = await w.call('exchange', { user: userOf('alice'), token, scopes: FILES, n: 10 })
    assert.deepEqual(result.failed, [])
    assert.equal(result.fingerprints.length, 1)
    assert.equal(idp.counters.obo, 1)
  })
})
