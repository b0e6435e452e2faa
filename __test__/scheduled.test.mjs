// ScheduledOboGrant against the local IdP: enrolment by On-Behalf-Of with offline_access,
// renewal by the refresh-token grant (requests counted by grant type), LibreChat's verdicts
// on a revoked grant, a failed exchange and a failing store, one renewal for concurrent
// callers, the caller's signal, and no refresh token in a store value, an error or a log.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { useIdp, newService, FILES, rejection } from './helpers.mjs'
import obo from '../index.js'

const { ScheduledOboGrant, scheduledOboGrantKey, OboTokenResolutionError, OboExchangeError } = obo
const ctx = useIdp()
const KEY = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
const OTHER_KEY = 'ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'
const MISSING = 'Authorize this OBO server separately for this schedule before unattended use.'
const TARGET = { scheduleId: 's1', server: 'files', scopes: FILES }
const YEAR_MS = 365 * 24 * 3600 * 1000

/** A Keyv-like store over a Map that records every call; `fail` makes a method throw. */
function memoryStore() {
  const values = new Map()
  const calls = []
  const fail = {}
  const run = async (method, args, body) => {
    calls.push([method, ...args])
    if (fail[method]) throw new Error(`${method} is down`)
    return body()
  }
  return {
    values,
    calls,
    fail,
    get: (key) => run('get', [key], () => values.get(key)),
    set: (key, value, ttl) => run('set', [key, ttl], () => values.set(key, value)),
    delete: (key) => run('delete', [key], () => values.delete(key)),
  }
}

function setup(options = {}) {
  const { service, logs } = newService(ctx.idp)
  const store = memoryStore()
  const grant = new ScheduledOboGrant(service, { store, encryptionKeys: [KEY], ...options })
  return { service, logs, store, grant }
}

async function enrolled(options) {
  const parts = setup(options)
  const accessToken = await ctx.idp.mintUserToken('alice')
  await parts.grant.enroll({ ...TARGET, accessToken })
  return parts
}

/** Every text a leak could hide in: the error, its cause chain and fields, as JSON and as strings. */
function texts(...values) {
  const out = []
  for (let value of values) {
    for (let depth = 0; value && depth < 5; depth++, value = value.cause) {
      out.push(String(value), String(value.stack), JSON.stringify(value, Object.getOwnPropertyNames(value)))
    }
  }
  return out.join('\n')
}

function assertNoRefreshToken(...values) {
  const issued = ctx.idp.issuedRefreshTokens()
  assert.ok(issued.length > 0)
  const haystack = texts(...values)
  for (const token of issued) assert.ok(!haystack.includes(token), 'a refresh token leaked')
}

function assertMissing(err) {
  assert.ok(err instanceof OboTokenResolutionError, String(err))
  assert.equal(err.reason, 'missing_upstream_provider')
  assert.equal(err.message, MISSING)
  assert.equal(err.userMessage, MISSING)
  assert.equal(err.retryable, false)
}

test('enrolment sends On-Behalf-Of with offline_access and stores only a sealed grant', async () => {
  const { store, logs } = await enrolled()
  assert.equal(ctx.idp.counters.obo, 1)
  assert.equal(ctx.idp.counters.refresh, 0)
  assert.equal(ctx.idp.liveRefreshTokens(), 1, 'the IdP issued a refresh token for offline_access')
  const key = scheduledOboGrantKey('s1', 'files')
  assert.equal(key, 'schedule-obo:s1:files')
  const sets = store.calls.filter(([method]) => method === 'set')
  assert.equal(sets.length, 1)
  const [, setKey, ttl] = sets[0]
  assert.equal(setKey, key)
  assert.ok(ttl > YEAR_MS - 60_000 && ttl <= YEAR_MS, `kept as long as the refresh token lives: ${ttl}`)
  const value = store.values.get(key)
  assert.match(value, /^sog1\./)
  // Look for the header of a JWT this IdP signs (over 30 characters), in the value and in the
  // bytes under its base64: ciphertext never holds it by chance, where a bare 'eyJ' turns up
  // in about one value in a hundred.
  const [header] = (await ctx.idp.mintUserToken('alice')).split('.')
  assert.ok(header.length >= 30)
  const bytes = Buffer.from(value.slice('sog1.'.length), 'base64').toString('latin1')
  for (const text of [value, bytes]) assert.ok(!text.includes(header), 'no JWT in the plain')
  assert.ok(!bytes.includes('"access_token"'), 'the record is sealed')
  assertNoRefreshToken(value, logs.map((l) => l.message).join('\n'))
})

test('a later call is served from the store, then renewed by the refresh-token grant', async () => {
  const { grant, store } = await enrolled()
  const live = ctx.idp.liveRefreshTokens()
  const before = store.values.get('schedule-obo:s1:files')
  const token = await grant.getToken(TARGET)
  assert.equal(token.scheduledObo, true)
  const nowSeconds = Date.now() / 1000
  assert.ok(Number.isInteger(token.expires_at), 'seconds')
  assert.ok(token.expires_at > nowSeconds + 3500 && token.expires_at <= nowSeconds + 3600, String(token.expires_at))
  const claims = await ctx.idp.verify(token.access_token, 'api://mcp-files')
  assert.equal(claims.sub, 'alice')
  assert.equal(ctx.idp.counters.token, 1, 'the stored token: no request')

  const renewed = await grant.getToken({ ...TARGET, forceRefresh: true })
  assert.equal(ctx.idp.counters.refresh, 1)
  assert.equal(ctx.idp.counters.obo, 1, 'no second exchange')
  assert.notEqual(renewed.access_token, token.access_token)
  assert.equal((await ctx.idp.verify(renewed.access_token, 'api://mcp-files')).scp, 'files.read')
  const after = store.values.get('schedule-obo:s1:files')
  assert.notEqual(after, before, 'the rotated grant replaced the stored one')
  // The rotated refresh token is the one presented next: the spent one would be refused.
  await grant.getToken({ ...TARGET, forceRefresh: true })
  assert.equal(ctx.idp.counters.refresh, 2)
  assert.equal(ctx.idp.liveRefreshTokens(), live, 'each renewal spent the token it presented')
})

test('a stored token with 45 s or less left is renewed without being forced', async () => {
  ctx.idp.setExpiresIn(40)
  const { grant } = await enrolled()
  const token = await grant.getToken(TARGET)
  assert.equal(ctx.idp.counters.refresh, 1)
  assert.ok(token.expires_at > Date.now() / 1000 + 3500, 'the renewed token, not the 40 s one')
})

test('the provider renews on forceRefresh and on forceDownstreamRefresh', async () => {
  const { grant } = await enrolled()
  const provider = grant.provider(TARGET)
  const first = await provider()
  assert.equal(first.scheduledObo, true)
  assert.equal(ctx.idp.counters.refresh, 0)
  await provider({ forceDownstreamRefresh: true })
  await provider({ forceRefresh: true })
  assert.equal(ctx.idp.counters.refresh, 2)
})

test('a revoked refresh token deletes the grant and is missing_upstream_provider', async () => {
  const { grant, store, logs } = await enrolled()
  ctx.idp.revokeRefreshTokens('alice')
  const err = await rejection(grant.getToken({ ...TARGET, forceRefresh: true }))
  assertMissing(err)
  assert.ok(err.cause instanceof OboExchangeError)
  assert.equal(err.cause.error, 'invalid_grant')
  assert.equal(err.cause.status, 400)
  assert.equal(store.values.size, 0, 'the spent grant is deleted')
  assert.deepEqual(store.calls.at(-1), ['delete', 'schedule-obo:s1:files'])
  assertNoRefreshToken(err, logs.map((l) => l.message).join('\n'))

  const requests = ctx.idp.counters.token
  assertMissing(await rejection(grant.getToken(TARGET)))
  assert.equal(ctx.idp.counters.token, requests, 'no grant: nothing is sent')
})

test('a transient refresh failure is retryable and keeps the grant', async () => {
  const { grant, store } = await enrolled()
  const stored = store.values.get('schedule-obo:s1:files')
  ctx.idp.injectFaults({ status: 503 })
  const err = await rejection(grant.getToken({ ...TARGET, forceRefresh: true }))
  assert.ok(err instanceof OboTokenResolutionError)
  assert.equal(err.reason, 'session_refresh_failed')
  assert.equal(err.message, 'Temporary OBO grant refresh failure.')
  assert.equal(err.retryable, true)
  assert.equal(err.cause.status, 503)
  assert.equal(ctx.idp.counters.token, 2, 'sent once, not retried here')
  assert.equal(store.values.get('schedule-obo:s1:files'), stored)
  assert.ok((await grant.getToken({ ...TARGET, forceRefresh: true })).access_token)
})

test('a refused exchange stores nothing and is missing_upstream_provider', async () => {
  const { grant, store } = setup()
  const issued = ctx.idp.issuedRefreshTokens().length
  const err = await rejection(grant.enroll({ ...TARGET, accessToken: await ctx.idp.mintUserToken('carol') }))
  assertMissing(err)
  assert.equal(err.cause.error, 'invalid_grant')
  assert.equal(err.cause.suberror, 'consent_required')
  assert.equal(store.calls.length, 0)
  assert.equal(ctx.idp.issuedRefreshTokens().length, issued)
})

test('a transient exchange failure stores nothing and is retryable exchange_failed', async () => {
  const { grant, store } = setup()
  ctx.idp.injectFaults({ status: 503 })
  const err = await rejection(grant.enroll({ ...TARGET, accessToken: await ctx.idp.mintUserToken('alice') }))
  assert.equal(err.reason, 'exchange_failed')
  assert.equal(err.retryable, true)
  assert.equal(err.message, 'Temporary OBO token exchange failure.')
  assert.equal(store.calls.length, 0)
  assert.equal(ctx.idp.counters.token, 1)
})

test('store failures are retryable session_refresh_failed with the store error as cause', async () => {
  const { grant, store } = await enrolled()
  store.fail.get = true
  let err = await rejection(grant.getToken(TARGET))
  assert.equal(err.reason, 'session_refresh_failed')
  assert.equal(err.retryable, true)
  assert.equal(err.message, 'Temporary scheduled OBO credential-store failure.')
  assert.equal(err.cause.message, 'get is down')
  store.fail.get = false

  store.fail.set = true
  err = await rejection(grant.getToken({ ...TARGET, forceRefresh: true }))
  assert.equal(err.reason, 'session_refresh_failed')
  assert.equal(err.cause.message, 'set is down')
  store.fail.set = false

  const fresh = setup()
  fresh.store.fail.set = true
  err = await rejection(fresh.grant.enroll({ ...TARGET, accessToken: await ctx.idp.mintUserToken('alice') }))
  assert.equal(err.retryable, true)
  assert.equal(err.cause.message, 'set is down')

  const revoked = await enrolled()
  ctx.idp.revokeRefreshTokens('alice')
  revoked.store.fail.delete = true
  err = await rejection(revoked.grant.getToken({ ...TARGET, forceRefresh: true }))
  assert.equal(err.reason, 'session_refresh_failed')
  assert.equal(err.cause.message, 'delete is down')
})

test('concurrent callers share one renewal, and forced ones run one after another', async () => {
  ctx.idp.setExpiresIn(40)
  const { grant, store } = await enrolled()
  const tokens = await Promise.all(Array.from({ length: 5 }, () => grant.getToken(TARGET)))
  assert.equal(ctx.idp.counters.refresh, 1)
  assert.equal(store.calls.filter(([method]) => method === 'get').length, 1, 'the others joined the one read')
  assert.equal(new Set(tokens.map((t) => t.access_token)).size, 1)
  tokens[0].access_token = 'changed'
  assert.notEqual(tokens[1].access_token, 'changed', 'each caller gets its own object')

  const forced = await Promise.all(Array.from({ length: 3 }, () => grant.getToken({ ...TARGET, forceRefresh: true })))
  assert.equal(ctx.idp.counters.refresh, 4, 'each forced call renews, each with the rotated token')
  assert.equal(new Set(forced.map((t) => t.access_token)).size, 3)
})

test('an aborted signal rejects at once; a caller that aborts is detached and the renewal still lands', async () => {
  const { grant, store } = await enrolled()
  const aborted = AbortSignal.abort()
  const err = await rejection(grant.getToken({ ...TARGET, forceRefresh: true, signal: aborted }))
  assert.equal(err.name, 'AbortError')
  assert.equal(ctx.idp.counters.refresh, 0)

  const before = store.values.get('schedule-obo:s1:files')
  ctx.idp.injectFaults({ delayMs: 300 })
  const controller = new AbortController()
  const waiting = grant.getToken({ ...TARGET, forceRefresh: true, signal: controller.signal })
  const joined = grant.getToken({ ...TARGET, forceRefresh: true })
  controller.abort()
  assert.equal((await rejection(waiting)).name, 'AbortError')
  await joined
  assert.equal(ctx.idp.counters.refresh, 2, 'the detached renewal went on')
  assert.notEqual(store.values.get('schedule-obo:s1:files'), before)
})

test('a grant opens only under its own key and with a key it was sealed with', async () => {
  const { service, store } = await enrolled({ encryptionKeys: [`1:${KEY}`] })
  const value = store.values.get('schedule-obo:s1:files')
  store.values.set('schedule-obo:s2:files', value)
  const same = new ScheduledOboGrant(service, { store, encryptionKeys: `1:${KEY}` })
  assertMissing(await rejection(same.getToken({ ...TARGET, scheduleId: 's2' })))
  assertMissing(await rejection(same.getToken({ ...TARGET, scopes: 'api://mcp-files/files.write' })))

  const rotated = new ScheduledOboGrant(service, { store, encryptionKeys: [`2:${OTHER_KEY}`, `1:${KEY}`] })
  assert.ok((await rotated.getToken(TARGET)).access_token, 'an older key of the ring still opens')
  const other = new ScheduledOboGrant(service, { store, encryptionKeys: [OTHER_KEY] })
  assertMissing(await rejection(other.getToken(TARGET)))
  assert.ok(store.values.has('schedule-obo:s1:files'), 'a grant that does not open is not deleted')
  assert.equal(ctx.idp.counters.refresh, 0)
})

test('revoke deletes the grant', async () => {
  const { grant, store } = await enrolled()
  await grant.revoke({ scheduleId: 's1', server: 'files' })
  assert.equal(store.values.size, 0)
  assertMissing(await rejection(grant.getToken(TARGET)))
})

test('bad arguments throw errors that name them', async () => {
  const { service } = newService(ctx.idp)
  const store = memoryStore()
  assert.throws(() => new ScheduledOboGrant(service, { encryptionKeys: [KEY] }), /options\.store must be an object/)
  assert.throws(
    () => new ScheduledOboGrant(service, { store: { get() {} }, encryptionKeys: [KEY] }),
    /options\.store\.set must be a function/,
  )
  assert.throws(() => new ScheduledOboGrant(service, { store }), /options\.encryptionKeys \(or options\.credsKey\) is required/)
  assert.throws(
    () => new ScheduledOboGrant(service, { store, encryptionKeys: ['short'] }),
    /options\.encryptionKeys \[0\] is not a 32-byte key/,
  )
  assert.throws(
    () => new ScheduledOboGrant(service, { store, credsKey: 'f34be427ebb29de8d88c107a71546019685ed8b241d8f2ed00c3df97ad2566f0' }),
    /CREDS_KEY is the example value/,
  )
  assert.throws(() => new ScheduledOboGrant({}, { store, encryptionKeys: [KEY] }), /service must be an OboTokenService/)
  const grant = new ScheduledOboGrant(service, { store, credsKey: OTHER_KEY })
  await assert.rejects(grant.getToken({ ...TARGET, scheduleId: '' }), /scheduleId must not be empty/)
  await assert.rejects(grant.getToken({ ...TARGET, scopes: 42 }), /scopes must be a string, got number/)
  await assert.rejects(grant.getToken({ ...TARGET, forceRefresh: 'yes' }), /forceRefresh must be a boolean/)
  await assert.rejects(grant.enroll({ ...TARGET }), /accessToken must be a string, got undefined/)
  await assert.rejects(grant.enroll({ ...TARGET, accessToken: 'x', scopes: '  ' }), /scopes must name at least one scope/)
  assert.throws(() => grant.provider({ scheduleId: 's1' }), /server must be a string/)
  assert.equal(store.calls.length, 0)
})
