'use strict'

// OboTokenService: checks argument types (so a wrong type gets an error naming the
// argument), answers cache hits with an already-settled promise through the front,
// turns failed exchanges into OboExchangeError. The native binding checks values and
// does the work; options.js checks the options, environment.js reads LibreChat's
// environment.

const { NativeOboService } = require('./native.js')
const { Calls } = require('./calls.js')
const { Front, tokenResponse } = require('./front.js')
const { SEPARATOR, NO_IDENTITY, packIdentity } = require('./identity.js')
const { checkOptions } = require('./options.js')
const { fromEnv } = require('./environment.js')
const { publish, watched } = require('./events.js')
const { OboExchangeError, typeError } = require('./errors.js')
const { abortError, checkSignal, detach } = require('./abort.js')

/**
 * A required string argument: a falsy value (LibreChat's `!accessToken`) is the empty
 * string, which the native side refuses with LibreChat's message; a truthy one must
 * be a string.
 */
function requiredString(value, name) {
  if (!value) return ''
  if (typeof value !== 'string') throw typeError(name, 'a string', value)
  return value
}

function checkFromCache(fromCache) {
  if (fromCache === undefined) return true
  if (typeof fromCache !== 'boolean') throw typeError('fromCache', 'a boolean', fromCache)
  return fromCache
}

const CALL_OPTIONS = ['claims', 'audience', 'resource', 'resourceMetadata']

/** `options.signal` of exchangeOboToken (checked), or undefined; a non-object `options` is refused. */
function signalOf(options) {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object') throw typeError('options', 'an object', options)
  return checkSignal(options.signal, 'options.signal')
}

/**
 * `options` of exchangeOboToken: `claims` (a JSON claims request answering a claims
 * challenge), and the RFC 8693 `audience` and `resource`; each a string when given
 * (the native side refuses U+001F in them). Undefined when none is given, so the hot
 * path passes nothing extra. (`signal` is read by `signalOf`; it never reaches the native side.)
 */
function checkCallOptions(options) {
  if (options === undefined || options === null) return undefined
  let checked
  for (const name of CALL_OPTIONS) {
    const value = options[name]
    if (value === undefined || value === null) continue
    if (typeof value !== 'string') throw typeError(`options.${name}`, 'a string', value, { option: false })
    checked = { ...checked, [name]: value }
  }
  return checked
}

/**
 * Readers of a service's private parts for the sibling modules that need them (resolve:
 * the logger and subject field; the doctor: the native plan and chain; ScheduledOboGrant:
 * the native handle). Set once in the class's static block, where `#fields` are in scope;
 * each answers undefined for anything but an OboTokenService.
 */
let loggerOf
let subjectOf
let nativeOf

/** A native outcome's `error` (a failure the addon hands over as fields) thrown as OboExchangeError, made in this realm. */
function throwIfFailed(error) {
  if (error) throw new OboExchangeError(error.message, error)
}

/** A caller's own copy of a shared response. */
function copyResponse(response) {
  return { ...response }
}

/** The fields a native refusal carries besides its message (see src/binding/thrown.rs). */
const REFUSAL_FIELDS = ['code', 'argument', 'option']

/**
 * An error the native side threw (an argument it refused), remade in this module's realm
 * with the same name, message and fields: under jest the addon's errors belong to the main
 * realm, where the caller's `instanceof Error` does not hold. The original is `cause`.
 */
function ownRealmError(err) {
  if (err instanceof Error || err === null || typeof err !== 'object' || Object.prototype.toString.call(err) !== '[object Error]') {
    return err
  }
  const mine = err.name === 'TypeError' ? new TypeError(err.message, { cause: err }) : new Error(err.message, { cause: err })
  for (const field of REFUSAL_FIELDS) {
    if (err[field] !== undefined) mine[field] = err[field]
  }
  return mine
}

/**
 * LibreChat's OBO token service, in Rust: exchange, cache, single-flight, retry.
 * Create one per client registration at start-up and share it.
 */
class OboTokenService {
  #native
  #log
  /** Which of the user's tokens this service exchanges (see `subjectOf`). */
  #subject
  /** The digests and token strings kept on this side of a hit. */
  #front
  /** The native exchanges in flight, and the function they settle through. */
  #calls = new Calls()
  /** Whether the native side takes the events as watched (as it does from the start; `#watchEvents`). */
  #watched = true

  static {
    const mine = (service) => typeof service === 'object' && service !== null && #native in service
    loggerOf = (service) => (mine(service) ? service.#log : undefined)
    subjectOf = (service) => (mine(service) ? service.#subject : undefined)
    nativeOf = (service) => (mine(service) ? service.#native : undefined)
  }

  /** @param {import('../index').OboServiceOptions} options */
  constructor(options) {
    const native = checkOptions(options)
    this.#log = native.logger ?? (() => {})
    this.#native = new NativeOboService({ ...native, events: publish, settle: this.#calls.settle })
    // A hit's refresh leaves the JS thread and may publish, so it says first whether anyone listens.
    this.#front = new Front(this.#native, native.maxCacheEntries, (...call) => {
      this.#watchEvents()
      this.#native.refresh(...call)
    })
    this.#subject = this.#native.subjectField()
    this.#watchEvents()
  }

  /**
   * A service configured from LibreChat's environment: `OPENID_ISSUER`,
   * `OPENID_CLIENT_ID`, `OPENID_CLIENT_SECRET`, `PROXY`, the auth method from
   * `OPENID_TOKEN_ENDPOINT_AUTH_METHOD`, and this package's `LIBRECHAT_OBO_*` extras.
   * `extra` adds options that have no variable (a logger).
   */
  static fromEnv(env = process.env, extra = {}) {
    return fromEnv((options) => new OboTokenService(options), env, extra)
  }

  /**
   * LibreChat's `exchangeOboToken`: same arguments, results and error tags.
   * A cache hit resolves without leaving the JavaScript thread. `options.claims` passes a
   * client's answer to a claims challenge on to the IdP; such a request bypasses the cache.
   * `options.audience` / `options.resource` name the target of an RFC 8693 exchange and
   * are part of the cache key. `options.signal`: aborted already, the call rejects at once
   * with its AbortError and starts nothing; aborted later, this caller is detached and the
   * exchange goes on (others may share it; its token is cached).
   */
  exchangeOboToken(user, accessToken, scopes, fromCache = true, identityContext, options) {
    // No options, no signal: the hot path goes straight on, without the abort wrapper.
    if (options === undefined) return this.#exchangeOboToken(user, accessToken, scopes, fromCache, identityContext, options)
    let signal
    try {
      signal = signalOf(options)
      if (signal?.aborted) return Promise.reject(abortError(signal))
    } catch (err) {
      return Promise.reject(err)
    }
    return detach(this.#exchangeOboToken(user, accessToken, scopes, fromCache, identityContext, options), signal)
  }

  /** `exchangeOboToken` without the signal. */
  #exchangeOboToken(user, accessToken, scopes, fromCache, identityContext, options) {
    try {
      const token = requiredString(accessToken, 'accessToken')
      const scope = token && requiredString(scopes, 'scopes')
      // A missing token or scope string: the native side refuses it with LibreChat's
      // message, before it reads anything else (LibreChat checks these first).
      if (!scope) return this.#settled(this.#exchange(NO_IDENTITY, token, scope, false))
      const useCache = checkFromCache(fromCache)
      const call = checkCallOptions(options)
      const identity = packIdentity(user, identityContext)
      if (useCache && call?.claims === undefined) {
        const hit = this.#front.hit(identity, token, scope, call)
        if (hit !== undefined) return Promise.resolve(hit)
        return this.#joinOrStart(identity, token, scope, call)
      }
      const remember = (id, response) => this.#front.remember(token, scope, call, id, response)
      return this.#settled(this.#exchange(identity, token, scope, useCache, call), undefined, remember)
    } catch (err) {
      return Promise.reject(ownRealmError(err))
    }
  }

  /**
   * The outcome of a native exchange (`#exchange`, which never rejects: failures arrive
   * as `{ error }`) as LibreChat's response or error. `forget` runs as the exchange
   * settles, before any caller sees the outcome.
   */
  async #settled(pending, forget, remember) {
    const outcome = await pending
    forget?.()
    return this.#settle(outcome, remember)
  }

  /**
   * Starts a native exchange; a promise of its settled outcome. The promise is made here,
   * in this module's realm: under jest (each test file in a `vm` context, the `.node` file
   * loaded by the main realm's `require`) a promise the addon made would be the main
   * realm's, whose rejections the test's realm never sees. Refused arguments throw.
   */
  #exchange(identity, accessToken, scopes, fromCache, call) {
    this.#watchEvents()
    return this.#calls.start((callId) => this.#native.exchange(callId, identity, accessToken, scopes, fromCache, call))
  }

  /**
   * Tells the native side when the events gained their first subscriber or lost their last
   * (`watched`); checked before each call that leaves the JS thread, never on a hit.
   */
  #watchEvents() {
    const on = watched()
    if (on === this.#watched) return
    this.#watched = on
    this.#native.watchEvents(on)
  }

  /**
   * A miss: joins the front's flight for exactly these arguments, or starts a native
   * exchange (which the native flight table joins to one for the key). The key holds the
   * digest, never the token. Each caller gets its own response object.
   */
  #joinOrStart(identity, accessToken, scopes, call) {
    const key = [identity, scopes, this.#front.digest(accessToken), call?.audience ?? '', call?.resource ?? ''].join(SEPARATOR)
    const remember = (id, response) => this.#front.remember(accessToken, scopes, call, id, response)
    // The native call runs (and may throw) before the flight is stored; `forget` runs
    // as it settles.
    const flight = this.#front.join(key, (forget) =>
      this.#settled(this.#exchange(identity, accessToken, scopes, true, call), forget, remember),
    )
    return flight.then(copyResponse)
  }

  /**
   * A settled exchange as LibreChat's response, or its error thrown as OboExchangeError;
   * both made here, in the caller's realm (the native token object is the addon's).
   */
  #settle({ token, tokenId, error }, remember) {
    throwIfFailed(error)
    const response = tokenResponse(token, token.expires_in, token.expires_at, token.scope)
    remember?.(tokenId, response)
    return response
  }

  /**
   * LibreChat's `getGraphApiToken`: the same exchange, errors prefixed with
   * `Graph token acquisition failed: `, but keeping `retryable`, `oboFailureReason`
   * and the IdP's fields (LibreChat's wrapper drops them). The original is `cause`.
   */
  getGraphApiToken(user, accessToken, scopes, fromCache = true) {
    return this.exchangeOboToken(user, accessToken, scopes, fromCache).catch((err) => {
      const who = typeof user?.openidId === 'string' ? user.openidId : 'unknown'
      this.#log('error', `[GraphTokenService] Failed to acquire Graph API token for user ${who}`)
      const message = `Graph token acquisition failed: ${err?.message ?? err}`
      throw err instanceof OboExchangeError ? new OboExchangeError(message, err, { cause: err }) : new Error(message, { cause: err })
    })
  }

  /**
   * Drops cached tokens of `user` (e.g. at logout), or only those for `scopes`.
   * Returns how many were dropped.
   */
  invalidate(user, scopes, identityContext) {
    if (scopes !== undefined && scopes !== null && typeof scopes !== 'string') throw typeError('scopes', 'a string', scopes)
    const identity = packIdentity(user, identityContext)
    this.#watchEvents()
    const dropped = this.#native.invalidate(identity, scopes ?? undefined)
    this.#front.forget(dropped)
    return dropped.length
  }

  /** Drops every cached token. */
  clear() {
    this.#watchEvents()
    this.#native.clear()
    this.#front.clear()
  }

  /** Counters since creation, and the number of cached tokens; the front's joiners are misses, coalesced. */
  stats() {
    const stats = this.#native.stats()
    stats.misses += this.#front.joined
    stats.coalesced += this.#front.joined
    return stats
  }
}

/** The token endpoint and grant a service's next exchange would use (the doctor's question). */
async function planOf(service) {
  const { plan, error } = await nativeOf(service).plan()
  throwIfFailed(error)
  return plan
}

/**
 * With grantType 'id_jag': the MCP authorization server discovered for `resource`
 * (`{ issuer, tokenEndpoint }`), checked as an exchange checks it; rejects with the reason.
 */
async function chainOf(service, resource, audience) {
  const { chain, error } = await nativeOf(service).idJagChain(resource, audience ?? undefined)
  throwIfFailed(error)
  return chain
}

/**
 * The native scheduled-grant handle of a service, sealing with `encryptionKeys` (or the
 * key derived from `credsKey`); undefined when `service` is not an OboTokenService.
 * Refused keys throw (in this realm).
 */
function scheduledGrantOf(service, encryptionKeys, credsKey) {
  const native = nativeOf(service)
  if (!native) return undefined
  try {
    return native.scheduledGrant(encryptionKeys, credsKey)
  } catch (err) {
    throw ownRealmError(err)
  }
}

module.exports = { OboTokenService, loggerOf, planOf, chainOf, subjectOf, scheduledGrantOf, ownRealmError }
