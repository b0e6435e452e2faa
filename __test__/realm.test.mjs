// The package evaluated the way jest evaluates it: every JS module of the package runs in a
// `vm` context with its own intrinsics (Promise, Error, Object...), while the native addon
// (a `.node` file) is loaded by the main realm's `require`. A jest test only sees promises
// and errors of its own realm, so every promise the public API returns must be one of the
// caller's realm (the realm the package's JS was evaluated in), its rejection an error of
// that realm, and no promise of the main realm may be left rejected with nobody to handle it.

import { describe, it, before } from 'node:test'
import assert from 'node:assert/strict'
import vm from 'node:vm'
import { builtinModules, createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import { CLIENTS } from './idp/index.mjs'
import { useIdp, FILES, MAIL } from './helpers.mjs'

const mainRequire = createRequire(import.meta.url)
const ENTRY = fileURLToPath(new URL('../index.js', import.meta.url))

/**
 * A context like jest-environment-node's: its own intrinsics, and the main realm's other
 * globals (process, Buffer, timers, fetch, Headers...) copied in where it has none.
 */
function jestLikeContext() {
  const context = vm.createContext({})
  const own = vm.runInContext('globalThis', context)
  for (const name of Object.getOwnPropertyNames(globalThis)) {
    if (name in own) continue
    const descriptor = Object.getOwnPropertyDescriptor(globalThis, name)
    try {
      Object.defineProperty(own, name, descriptor)
    } catch {
      // A global the context will not take: jest skips such globals too.
    }
  }
  own.global = own
  return context
}

/**
 * jest-runtime's CommonJS loader, reduced: each JS file of the package is compiled with
 * `vm.compileFunction` in the context and run with a `require` that loads core modules and
 * `.node` addons with the main realm's `require` (as jest does) and JS files in the context.
 */
function loadInContext(context, entry) {
  const modules = new Map()
  const load = (filename) => {
    const known = modules.get(filename)
    if (known) return known.exports
    if (filename.endsWith('.node')) return mainRequire(filename)
    const module = { exports: {}, filename, loaded: false }
    modules.set(filename, module)
    const resolveFrom = createRequire(filename)
    const localRequire = (id) => {
      if (id.startsWith('node:') || builtinModules.includes(id)) return mainRequire(id)
      return load(resolveFrom.resolve(id))
    }
    localRequire.resolve = (id) => resolveFrom.resolve(id)
    const params = ['module', 'exports', 'require', '__dirname', '__filename']
    const body = vm.compileFunction(readFileSync(filename, 'utf8'), params, { filename, parsingContext: context })
    body.call(module.exports, module, module.exports, localRequire, dirname(filename), filename)
    module.loaded = true
    return module.exports
  }
  return load(entry)
}

const ctx = useIdp()
const alice = { openidId: 'alice' }
/** The package as a jest test file sees it, and that realm's intrinsics. */
let obo
let realm

before(() => {
  const context = jestLikeContext()
  obo = loadInContext(context, ENTRY)
  realm = vm.runInContext('({ Promise, Error, TypeError, Object })', context)
  assert.notEqual(realm.Promise, Promise, 'the context has its own Promise')
})

const newService = (options = {}, client = CLIENTS.post) =>
  new obo.OboTokenService({
    issuer: ctx.idp.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    retryDelayMs: 20,
    maxRetries: 0,
    ...options,
  })
const badSecret = () => newService({ clientSecret: 'not-the-secret' })

/** The value a promise of the context realm settles with, and whether it rejected. */
async function settled(promise, what) {
  assert.ok(promise instanceof realm.Promise, `${what}: a promise of the caller's realm`)
  try {
    return { value: await promise }
  } catch (err) {
    return { err }
  }
}

async function rejectsInRealm(promise, what) {
  const { err } = await settled(promise, what)
  assert.ok(err !== undefined, `${what}: rejects`)
  assert.ok(err instanceof realm.Error, `${what}: an Error of the caller's realm (${err?.name}: ${err?.message})`)
  return err
}

async function resolvesInRealm(promise, what) {
  const { value, err } = await settled(promise, what)
  assert.equal(err, undefined, `${what}: resolves (${err?.message})`)
  assert.equal(Object.getPrototypeOf(value), realm.Object.prototype, `${what}: an object of the caller's realm`)
  return value
}

/** Runs `fn` with `unhandledRejection` collected (and only collected), for at most `ms`, until `done`. */
async function collectUnhandled(fn, done, ms = 5000) {
  const seen = []
  const saved = process.listeners('unhandledRejection')
  const listener = (reason, promise) => seen.push({ reason, promise })
  process.removeAllListeners('unhandledRejection')
  process.on('unhandledRejection', listener)
  try {
    const result = fn()
    for (const started = Date.now(); !done(seen) && Date.now() - started < ms; ) await sleep(10)
    // One more turn, so a second unhandled promise settling just after the first is seen too.
    await sleep(50)
    return { result, seen }
  } finally {
    process.off('unhandledRejection', listener)
    for (const handler of saved) process.on('unhandledRejection', handler)
  }
}

describe('promises and errors belong to the caller realm (jest)', () => {
  it('a failed miss, and calls joining it', async () => {
    const service = badSecret()
    const assertion = await ctx.idp.mintUserToken('alice')
    const [first, joined] = [service.exchangeOboToken(alice, assertion, FILES), service.exchangeOboToken(alice, assertion, FILES)]
    // Both awaited at once: the two settle in whichever order the native side answers them.
    const errors = await Promise.all([rejectsInRealm(first, 'a miss'), rejectsInRealm(joined, 'a join')])
    for (const err of errors) {
      assert.ok(err instanceof obo.OboExchangeError)
      assert.deepEqual([err.status, err.error, err.retryable], [401, 'invalid_client', false])
    }
    assert.equal(ctx.idp.counters.token, 1)
  })

  it('a miss, a hit, a join, an uncached call and a claims call that succeed', async () => {
    const service = newService()
    const assertion = await ctx.idp.mintUserToken('alice')
    const [miss, join] = [service.exchangeOboToken(alice, assertion, FILES), service.exchangeOboToken(alice, assertion, FILES)]
    const token = await resolvesInRealm(miss, 'a miss')
    await resolvesInRealm(join, 'a join')
    const hit = await resolvesInRealm(service.exchangeOboToken(alice, assertion, FILES), 'a hit')
    assert.equal(hit.access_token, token.access_token)
    await resolvesInRealm(service.exchangeOboToken(alice, assertion, MAIL, false), 'fromCache=false')
    await resolvesInRealm(service.exchangeOboToken(alice, assertion, MAIL, true, undefined, { claims: '{"access_token":{}}' }), 'claims')
    await resolvesInRealm(service.getGraphApiToken(alice, assertion, 'User.Read'), 'getGraphApiToken')
    assert.equal(ctx.idp.counters.token, 4)
  })

  it('argument errors, from the JS checks and from the native checks', async () => {
    const service = newService()
    const typeErr = await rejectsInRealm(service.exchangeOboToken(alice, 'token', 5), 'a wrong type')
    assert.ok(typeErr instanceof realm.TypeError)
    const missing = await rejectsInRealm(service.exchangeOboToken(alice, '', FILES), 'a missing token')
    assert.equal(missing.message, 'Access token is required for OBO exchange')
    assert.deepEqual([missing.code, missing.argument], ['ERR_INVALID_ARG', 'accessToken'], 'the fields are remade too')
    const notOpenId = await rejectsInRealm(service.exchangeOboToken({ email: 'a@example.com' }, 'token', FILES), 'a user without openidId')
    assert.equal(notOpenId.message, 'User must be authenticated via OpenID to perform OBO token exchange')
    const uncached = await rejectsInRealm(service.exchangeOboToken({ email: 'a@example.com' }, 'token', FILES, false), 'the same, uncached')
    assert.equal(uncached.message, notOpenId.message)
    assert.equal(ctx.idp.counters.token, 0)
  })

  it('getGraphApiToken, resolveOboToken and the MCP fetch', async () => {
    const service = badSecret()
    const assertion = await ctx.idp.mintUserToken('alice')
    const graph = await rejectsInRealm(service.getGraphApiToken(alice, assertion, 'User.Read'), 'getGraphApiToken')
    assert.match(graph.message, /^Graph token acquisition failed: /)
    assert.ok(graph.cause instanceof realm.Error)
    const session = async () => ({ access_token: assertion })
    const resolved = await rejectsInRealm(obo.resolveOboToken(alice, { scopes: FILES }, service, session), 'resolveOboToken')
    assert.ok(resolved instanceof obo.OboTokenResolutionError)
    assert.equal(resolved.reason, 'exchange_failed')
    const oboFetch = obo.createOboFetch({ user: alice, oboConfig: { scopes: MAIL }, resolver: service, upstreamTokenProvider: session })
    const fetched = await rejectsInRealm(oboFetch('http://127.0.0.1:9/mcp'), 'the MCP fetch')
    assert.ok(fetched instanceof obo.OboTokenResolutionError)
    assert.equal(ctx.idp.counters.token, 3, 'the fetch failed at the exchange, before any request to 127.0.0.1:9')
  })

  it('a rejection nobody awaits is reported once, as a promise of the caller realm', async () => {
    const service = badSecret()
    const assertion = await ctx.idp.mintUserToken('alice')
    const { result, seen } = await collectUnhandled(
      () => service.exchangeOboToken(alice, assertion, FILES),
      (reports) => reports.length > 0,
    )
    assert.equal(seen.length, 1, 'only the returned promise is unhandled: no promise of the main realm is')
    assert.equal(seen[0].promise, result)
    assert.ok(seen[0].promise instanceof realm.Promise)
    assert.ok(seen[0].reason instanceof realm.Error)
    assert.ok(seen[0].reason instanceof obo.OboExchangeError)
    result.catch(() => {})
  })

  it('so does a join nobody awaits, while the first caller awaits its own', async () => {
    const service = badSecret()
    const assertion = await ctx.idp.mintUserToken('alice')
    let first
    const { result, seen } = await collectUnhandled(
      () => {
        first = service.exchangeOboToken(alice, assertion, FILES).catch((err) => err)
        return service.exchangeOboToken(alice, assertion, FILES)
      },
      (reports) => reports.length > 0,
    )
    assert.ok((await first) instanceof realm.Error)
    assert.equal(seen.length, 1)
    assert.equal(seen[0].promise, result)
    assert.ok(seen[0].promise instanceof realm.Promise)
    assert.ok(seen[0].reason instanceof realm.Error)
    assert.equal(ctx.idp.counters.token, 1)
    result.catch(() => {})
  })
})
