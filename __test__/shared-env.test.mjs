// fromEnv and the shared tier: LibreChat's own Redis variables (USE_REDIS, REDIS_URI,
// USE_REDIS_CLUSTER, REDIS_USERNAME, REDIS_PASSWORD, REDIS_CA, REDIS_KEY_PREFIX,
// REDIS_KEY_PREFIX_VAR), the key (OBO_CACHE_KEYS, OBO_CACHE_KEY, CREDS_KEY), the tier left
// off with one warning, and errors that name the variable and never a secret. The
// variables that change what reaches Redis are checked against a real redis-server.

import { after, before, beforeEach, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { startIdp, CLIENTS, TENANT, USERS } from './idp/index.mjs'
import { redisSuite, startRedis, startRedisCluster, keysMatching, until } from './redis.mjs'
import { fromEnv } from '../lib/environment.js'
import obo from '../index.js'

const { OboTokenService } = obo
const FILES = 'api://mcp-files/files.read'
const EXAMPLE_CREDS_KEY = 'f34be427ebb29de8d88c107a71546019685ed8b241d8f2ed00c3df97ad2566f0'
const KEY = randomBytes(32).toString('hex')
const alice = { openidId: USERS.alice.oid, tenantId: TENANT }

/** LibreChat's variables for a service (the issuer is never contacted by these tests unless an IdP is given). */
const base = (issuer = 'http://127.0.0.1:9') => ({
  OPENID_ISSUER: issuer,
  OPENID_CLIENT_ID: CLIENTS.post.clientId,
  OPENID_CLIENT_SECRET: CLIENTS.post.clientSecret,
})
const redisEnv = (extra = {}) => ({ USE_REDIS: 'true', REDIS_URI: 'redis://127.0.0.1:6390', OBO_CACHE_KEY: KEY, ...extra })

/**
 * The options `OboTokenService.fromEnv` would build a service with, `sharedCache` among them:
 * the environment module's own entry, with a build that hands the options back.
 */
const sharedCacheFromEnv = (env) => fromEnv((options) => options, { ...base(), ...env })

/** A service from `env` with the warnings it logged. */
function build(env) {
  const warnings = []
  const logger = { warn: (message) => warnings.push(message), debug: () => {} }
  const service = OboTokenService.fromEnv(env, { logger })
  return { service, warnings }
}
const hasTier = (service) => 'sharedBreaker' in service.stats()

describe('options.sharedCache: types checked here, values by the native side', () => {
  const options = (sharedCache) => ({ ...{ issuer: 'http://127.0.0.1:9', clientId: 'c', clientSecret: 's' }, sharedCache })
  const url = 'redis://127.0.0.1:6390'

  test('a wrong type is a TypeError naming the field', () => {
    for (const [sharedCache, name] of [
      ['redis://x', 'options.sharedCache'],
      [{ url: 1, encryptionKeys: [KEY] }, 'options.sharedCache.url'],
      [{ url, encryptionKeys: KEY }, 'options.sharedCache.encryptionKeys'],
      [{ url, encryptionKeys: [KEY], cluster: 'no' }, 'options.sharedCache.cluster'],
      [{ url, encryptionKeys: [KEY], opTimeoutMs: '50' }, 'options.sharedCache.opTimeoutMs'],
      [{ url, encryptionKeys: [KEY], keyPrefix: 7 }, 'options.sharedCache.keyPrefix'],
    ]) {
      assert.throws(
        () => new OboTokenService(options(sharedCache)),
        (err) => err instanceof TypeError && err.message.startsWith(name),
      )
    }
    assert.throws(() => new OboTokenService(options({ url, encryptionKeys: [KEY], redisUrl: url })), {
      message: /^options\.sharedCache\.redisUrl is not a known option/,
    })
  })

  test('values are refused by the native side, naming the field; a good one builds with no I/O', () => {
    assert.throws(() => new OboTokenService(options({ url })), { message: /^options\.sharedCache\.encryptionKeys must hold at least one/ })
    assert.throws(() => new OboTokenService(options({ encryptionKeys: [KEY] })), { message: 'options.sharedCache.url is required' })
    assert.throws(() => new OboTokenService(options({ url, encryptionKeys: [KEY], opTimeoutMs: 0 })), {
      message: /^options\.sharedCache\.opTimeoutMs/,
    })
    const service = new OboTokenService(
      options({ url, encryptionKeys: [KEY], keyPrefix: 'p', opTimeoutMs: 50, lockTtlMs: 5000, maxWaitMs: 1000 }),
    )
    assert.equal(service.stats().sharedBreaker, 'closed')
    assert.equal(service.stats().sharedHits, 0)
    assert.equal('sharedHits' in new OboTokenService(options(undefined)).stats(), false)
  })
})

describe('fromEnv: LibreChat’s Redis variables', () => {
  test('USE_REDIS must be the text true (LibreChat’s isEnabled); without it there is no tier and no warning', () => {
    for (const value of [undefined, '', 'false', '1', 'yes']) {
      const { service, warnings } = build({ ...base(), ...redisEnv({ USE_REDIS: value }) })
      assert.equal(hasTier(service), false, `USE_REDIS=${value}`)
      assert.deepEqual(warnings, [])
    }
    for (const value of ['true', ' TRUE ', 'True']) {
      assert.equal(hasTier(build({ ...base(), ...redisEnv({ USE_REDIS: value }) }).service), true, `USE_REDIS=${value}`)
    }
  })

  test('USE_REDIS without REDIS_URI is refused with LibreChat’s message', () => {
    assert.throws(() => build({ ...base(), ...redisEnv({ REDIS_URI: undefined }) }), {
      message: 'USE_REDIS is enabled but REDIS_URI is not set.',
    })
  })

  test('a REDIS_URI that is not redis:// or rediss:// is named, and not echoed', () => {
    const uri = 'http://user:hunter2-secret@127.0.0.1:6379'
    assert.throws(
      () => build({ ...base(), ...redisEnv({ REDIS_URI: uri }) }),
      (err) => {
        assert.match(err.message, /^REDIS_URI \(options\.sharedCache\.url /)
        assert.ok(!err.message.includes('hunter2'))
        return true
      },
    )
  })

  test('REDIS_USERNAME and REDIS_PASSWORD go into the URL, URL-encoded; credentials in REDIS_URI win', () => {
    const password = 'p@ss:w/rd%41#?& x'
    const { sharedCache } = sharedCacheFromEnv(redisEnv({ REDIS_USERNAME: 'ops user', REDIS_PASSWORD: password }))
    const url = new URL(sharedCache.url)
    assert.equal(decodeURIComponent(url.username), 'ops user')
    assert.equal(decodeURIComponent(url.password), password)
    assert.equal(url.host, '127.0.0.1:6390')
    const inUri = sharedCacheFromEnv(redisEnv({ REDIS_URI: 'redis://me:mine@127.0.0.1:6390', REDIS_USERNAME: 'x', REDIS_PASSWORD: 'y' }))
    assert.equal(inUri.sharedCache.url, 'redis://me:mine@127.0.0.1:6390')
  })

  test('REDIS_KEY_PREFIX, or the variable REDIS_KEY_PREFIX_VAR names; both set is LibreChat’s error', () => {
    assert.equal(sharedCacheFromEnv(redisEnv()).sharedCache.keyPrefix, '')
    assert.equal(sharedCacheFromEnv(redisEnv({ REDIS_KEY_PREFIX: 'deploy42' })).sharedCache.keyPrefix, 'deploy42')
    const viaVar = sharedCacheFromEnv(redisEnv({ REDIS_KEY_PREFIX_VAR: 'DEPLOYMENT_ID', DEPLOYMENT_ID: 'pod-set-7' }))
    assert.equal(viaVar.sharedCache.keyPrefix, 'pod-set-7')
    assert.throws(() => build({ ...base(), ...redisEnv({ REDIS_KEY_PREFIX: 'a', REDIS_KEY_PREFIX_VAR: 'DEPLOYMENT_ID' }) }), {
      message: 'Only either REDIS_KEY_PREFIX_VAR or REDIS_KEY_PREFIX can be set.',
    })
  })

  test('REDIS_CA is a file path: read, refused with a plain redis:// URI (as LibreChat), named when unreadable', () => {
    const dir = mkdtempSync(join(tmpdir(), 'librechat-obo-ca-'))
    try {
      const ca = join(dir, 'ca.pem')
      writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n')
      const { sharedCache } = sharedCacheFromEnv(redisEnv({ REDIS_URI: 'rediss://127.0.0.1:6390', REDIS_CA: ca }))
      assert.match(sharedCache.ca, /BEGIN CERTIFICATE/)
      assert.throws(() => build({ ...base(), ...redisEnv({ REDIS_CA: ca }) }), { message: /^REDIS_CA \(options\.sharedCache\.ca / })
      assert.throws(() => build({ ...base(), ...redisEnv({ REDIS_URI: 'rediss://127.0.0.1:6390', REDIS_CA: join(dir, 'missing.pem') }) }), {
        message: /^REDIS_CA names a file that cannot be read \(ENOENT\)/,
      })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  test('USE_REDIS_CLUSTER or a REDIS_URI list is a Redis Cluster; every node of a list gets REDIS_USERNAME and REDIS_PASSWORD', () => {
    const list = sharedCacheFromEnv(
      redisEnv({ REDIS_URI: 'redis://127.0.0.1:7000, redis://127.0.0.1:7001', REDIS_USERNAME: 'obo', REDIS_PASSWORD: 'p@ss' }),
    ).sharedCache
    assert.equal(list.cluster, true)
    assert.equal(list.url, 'redis://obo:p%40ss@127.0.0.1:7000,redis://obo:p%40ss@127.0.0.1:7001')
    assert.equal(sharedCacheFromEnv(redisEnv({ USE_REDIS_CLUSTER: 'true' })).sharedCache.cluster, true)
    assert.equal(sharedCacheFromEnv(redisEnv({ USE_REDIS_CLUSTER: 'false' })).sharedCache.cluster, undefined)
    for (const extra of [{ USE_REDIS_CLUSTER: 'true' }, { REDIS_URI: 'redis://127.0.0.1:7000,redis://127.0.0.1:7001' }]) {
      const { service, warnings } = build({ ...base(), ...redisEnv(extra) })
      assert.equal(hasTier(service), true)
      assert.deepEqual(warnings, [])
    }
  })

  test('OBO_CACHE_KEYS ("2:<new>,1:<old>") or OBO_CACHE_KEY; both set is an error; a bad key is named, never shown', () => {
    const other = randomBytes(32).toString('hex')
    const list = sharedCacheFromEnv({ ...redisEnv({ OBO_CACHE_KEY: undefined }), OBO_CACHE_KEYS: `2:${other}, 1:${KEY}` })
    assert.deepEqual(list.sharedCache.encryptionKeys, [`2:${other}`, `1:${KEY}`])
    assert.deepEqual(sharedCacheFromEnv(redisEnv()).sharedCache.encryptionKeys, [KEY])
    assert.throws(() => build({ ...base(), ...redisEnv({ OBO_CACHE_KEYS: `1:${KEY}` }) }), {
      message: 'Only either OBO_CACHE_KEYS or OBO_CACHE_KEY can be set.',
    })
    const bad = 'not-a-key-but-a-secret-looking-thing'
    assert.throws(() => build({ ...base(), ...redisEnv({ OBO_CACHE_KEY: bad }) }), {
      message: /^OBO_CACHE_KEY \(options\.sharedCache\.encryptionKeys/,
    })
    try {
      build({ ...base(), ...redisEnv({ OBO_CACHE_KEYS: `1:${bad}`, OBO_CACHE_KEY: undefined }) })
      assert.fail('expected a refusal')
    } catch (e) {
      assert.match(e.message, /^OBO_CACHE_KEYS \(/)
      assert.ok(!e.message.includes(bad))
    }
  })

  test('without OBO_CACHE_KEY(S), the key is derived from CREDS_KEY (the same on every instance)', () => {
    const creds = randomBytes(32).toString('hex')
    const one = sharedCacheFromEnv(redisEnv({ OBO_CACHE_KEY: undefined, CREDS_KEY: creds })).sharedCache.encryptionKeys
    const two = sharedCacheFromEnv(redisEnv({ OBO_CACHE_KEY: undefined, CREDS_KEY: creds })).sharedCache.encryptionKeys
    assert.deepEqual(one, two)
    assert.equal(one.length, 1)
    assert.match(one[0], /^[0-9a-f]{64}$/)
    assert.notEqual(one[0], creds, 'derived, never the raw CREDS_KEY')
  })

  test('the example CREDS_KEY, a CREDS_KEY that is not 64 hex, or none: tier off, ONE warning naming the variable to set, no secret', () => {
    const cases = [
      [EXAMPLE_CREDS_KEY, /example value/],
      ['passphrase-not-hex-and-secret', /64 hex characters/],
      [undefined, /neither OBO_CACHE_KEY nor CREDS_KEY/],
    ]
    for (const [creds, why] of cases) {
      const { service, warnings } = build({ ...base(), ...redisEnv({ OBO_CACHE_KEY: undefined, CREDS_KEY: creds }) })
      assert.equal(hasTier(service), false)
      assert.equal(warnings.length, 1)
      assert.match(warnings[0], why)
      assert.match(warnings[0], /OBO_CACHE_KEY/)
      if (creds) assert.ok(!warnings[0].includes(creds), 'the warning never holds the key')
    }
  })

  test('without a logger the one warning goes through process.emitWarning', async () => {
    const seen = []
    const listener = (warning) => seen.push(warning)
    process.on('warning', listener)
    try {
      const service = OboTokenService.fromEnv({ ...base(), ...redisEnv({ OBO_CACHE_KEY: undefined, CREDS_KEY: EXAMPLE_CREDS_KEY }) })
      await new Promise((resolve) => setImmediate(resolve))
      assert.equal(hasTier(service), false)
      assert.equal(seen.length, 1)
      assert.equal(seen[0].code, 'LIBRECHAT_OBO_SHARED_CACHE')
    } finally {
      process.off('warning', listener)
    }
  })

  test('LIBRECHAT_OBO_SHARED_CACHE=false keeps the tier off with no warning; sharedCache in `extra` wins over the variables', () => {
    const off = build({ ...base(), ...redisEnv({ LIBRECHAT_OBO_SHARED_CACHE: 'false' }) })
    assert.equal(hasTier(off.service), false)
    assert.deepEqual(off.warnings, [])
    assert.throws(
      () => build({ ...base(), ...redisEnv({ LIBRECHAT_OBO_SHARED_CACHE: 'maybe' }) }),
      /LIBRECHAT_OBO_SHARED_CACHE must be true or false/,
    )
    const explicit = OboTokenService.fromEnv({ ...base(), ...redisEnv() }, { sharedCache: undefined })
    assert.equal(hasTier(explicit), false)
  })
})

redisSuite('fromEnv against a real redis-server', () => {
  const PASSWORD = 'p@ss:w/rd%41#?& x'
  let redis
  let idp
  before(async () => {
    redis = await startRedis({ extraArgs: ['--requirepass', PASSWORD], password: PASSWORD })
    idp = await startIdp()
  })
  after(async () => {
    await idp?.close()
    await redis?.stop()
  })
  beforeEach(async () => {
    await redis.command('FLUSHALL')
    idp.resetCounters()
  })

  const env = (extra = {}) => ({
    ...base(idp.issuer),
    USE_REDIS: 'true',
    REDIS_URI: redis.url,
    REDIS_PASSWORD: PASSWORD,
    OBO_CACHE_KEY: KEY,
    ...extra,
  })
  /** A second instance built from `envB` reads what one built from `envA` exchanged: true if it was a shared hit. */
  async function shared(envA, envB = envA) {
    const a = build(envA)
    const b = build(envB)
    const token = await idp.mintUserToken('alice')
    const first = await a.service.exchangeOboToken(alice, token, FILES)
    const second = await b.service.exchangeOboToken(alice, token, FILES)
    return { hit: b.service.stats().sharedHits === 1 && first.access_token === second.access_token, a, b }
  }

  test('REDIS_PASSWORD with reserved characters reaches Redis intact (URL-encoded): two instances share, no secret logged', async () => {
    const { hit, a, b } = await shared(env())
    assert.equal(hit, true)
    assert.equal(a.service.stats().sharedErrors, 0)
    assert.deepEqual([...a.warnings, ...b.warnings], [])
  })

  test('REDIS_USERNAME (an ACL user) with REDIS_PASSWORD', async () => {
    const user = 'obo@user:1'
    const secret = 'an:other/p@ss%'
    await redis.command('ACL', 'SETUSER', user, 'reset', 'on', `>${secret}`, '~*', '&*', '+@all')
    const { hit } = await shared(env({ REDIS_USERNAME: user, REDIS_PASSWORD: secret }))
    assert.equal(hit, true)
  })

  test('REDIS_KEY_PREFIX and REDIS_KEY_PREFIX_VAR put the tier under <prefix>::OBO_L2:', async () => {
    await shared(env({ REDIS_KEY_PREFIX: 'deploy42' }))
    assert.ok((await keysMatching(redis, 'deploy42::OBO_L2:v:*')).length === 1)
    await redis.command('FLUSHALL')
    await shared(env({ REDIS_KEY_PREFIX_VAR: 'DEPLOYMENT_ID', DEPLOYMENT_ID: 'pod-set-7' }))
    assert.ok((await keysMatching(redis, 'pod-set-7::OBO_L2:v:*')).length === 1)
    await redis.command('FLUSHALL')
    await shared(env())
    const all = await keysMatching(redis, '*')
    assert.ok(all.length > 0)
    assert.ok(
      all.every((k) => k.startsWith('OBO_L2:')),
      'no prefix: no leading ::',
    )
  })

  test('two deployments with different prefixes do not share', async () => {
    const { hit } = await shared(env({ REDIS_KEY_PREFIX: 'one' }), env({ REDIS_KEY_PREFIX: 'two' }))
    assert.equal(hit, false)
  })

  test('the key derived from one CREDS_KEY is shared by every instance; another CREDS_KEY does not read it', async () => {
    const creds = randomBytes(32).toString('hex')
    const same = await shared(env({ OBO_CACHE_KEY: undefined, CREDS_KEY: creds }))
    assert.equal(same.hit, true)
    await redis.command('FLUSHALL')
    const other = await shared(
      env({ OBO_CACHE_KEY: undefined, CREDS_KEY: creds }),
      env({ OBO_CACHE_KEY: undefined, CREDS_KEY: randomBytes(32).toString('hex') }),
    )
    assert.equal(other.hit, false)
  })

  test('rotation through OBO_CACHE_KEYS: "2:new,1:old" reads what "1:old" wrote; "2:new" alone does not', async () => {
    const fresh = randomBytes(32).toString('hex')
    const old = { OBO_CACHE_KEY: undefined, OBO_CACHE_KEYS: `1:${KEY}` }
    assert.equal((await shared(env(old), env({ OBO_CACHE_KEY: undefined, OBO_CACHE_KEYS: `2:${fresh},1:${KEY}` }))).hit, true)
    await redis.command('FLUSHALL')
    assert.equal((await shared(env(old), env({ OBO_CACHE_KEY: undefined, OBO_CACHE_KEYS: `2:${fresh}` }))).hit, false)
  })
})

redisSuite('fromEnv against a real Redis Cluster', () => {
  let cluster
  let idp
  before(async () => {
    cluster = await startRedisCluster()
    idp = await startIdp()
  })
  after(async () => {
    await idp?.close()
    await cluster?.stop()
  })

  test('USE_REDIS_CLUSTER with the nodes in REDIS_URI: one exchange for two instances, invalidate reaches both', async () => {
    const env = { ...base(idp.issuer), USE_REDIS: 'true', USE_REDIS_CLUSTER: 'true', REDIS_URI: cluster.url, OBO_CACHE_KEY: KEY }
    const a = build(env)
    const b = build(env)
    const token = await idp.mintUserToken('alice')
    const first = await a.service.exchangeOboToken(alice, token, FILES)
    const second = await b.service.exchangeOboToken(alice, token, FILES)
    assert.equal(second.access_token, first.access_token)
    assert.equal(idp.counters.obo, 1)
    assert.equal(b.service.stats().sharedHits, 1)
    const sizes = await Promise.all(cluster.nodes.map((node) => node.command('DBSIZE')))
    assert.equal(sizes.filter((n) => n > 0).length, 1, 'one user: value and index on one node (their hash tag)')
    await a.service.invalidate(alice)
    const dropped = await until(async () => b.service.stats().entries === 0, { timeoutMs: 3000 })
    assert.ok(dropped, 'b dropped its copy when a invalidated')
    assert.deepEqual([a.warnings, b.warnings], [[], []])
    assert.equal(a.service.stats().sharedErrors + b.service.stats().sharedErrors, 0)
  })
})
