'use strict'

// ScheduledOboGrant: a scheduled chat's own OBO grant (LibreChat's schedules/obo.ts). At
// enrolment the user's live token is exchanged once with `offline_access`; the downstream
// refresh token is kept, sealed, in the caller's store under `schedule-obo:<id>:<server>`,
// and each run renews the downstream token from it. The native side sends the grants,
// seals and opens the record and gives LibreChat's verdict on a failure; this module
// keeps the store interaction, one operation at a time per grant, and the caller's signal.

const { OboExchangeError, OboTokenResolutionError, argumentError, typeError } = require('./errors.js')
const { loggerOf, scheduledGrantOf, ownRealmError } = require('./service.js')

const STORE_FAILURE = 'Temporary scheduled OBO credential-store failure.'

/** LibreChat's store key of a schedule's grant for one MCP server. */
function scheduledOboGrantKey(scheduleId, serverName) {
  return `schedule-obo:${scheduleId}:${serverName}`
}

function nonEmptyString(value, name) {
  if (typeof value !== 'string') throw typeError(name, 'a string', value)
  if (value === '') throw argumentError(name, `${name} must not be empty`)
  return value
}

function checkStore(store) {
  if (store === null || typeof store !== 'object') throw typeError('options.store', 'an object', store)
  for (const method of ['get', 'set', 'delete']) {
    if (typeof store[method] !== 'function') throw typeError(`options.store.${method}`, 'a function', store[method])
  }
  return store
}

function checkKeys(options) {
  const { encryptionKeys, credsKey } = options
  if (encryptionKeys !== undefined && encryptionKeys !== null) {
    const keys = typeof encryptionKeys === 'string' ? [encryptionKeys] : encryptionKeys
    if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
      throw typeError('options.encryptionKeys', 'a string or an array of strings', encryptionKeys)
    }
    return [keys, undefined]
  }
  if (credsKey !== undefined && credsKey !== null) {
    if (typeof credsKey !== 'string') throw typeError('options.credsKey', 'a string', credsKey)
    return [[], credsKey]
  }
  throw argumentError(
    'options.encryptionKeys',
    'options.encryptionKeys (or options.credsKey) is required: the store only ever holds sealed grants',
  )
}

function checkSignal(signal) {
  if (signal === undefined || signal === null) return undefined
  if (typeof signal !== 'object' || typeof signal.aborted !== 'boolean') throw typeError('signal', 'an AbortSignal', signal)
  return signal
}

/** The reason of an aborted signal, as an AbortError when it is not an Error already. */
function abortReason(signal) {
  const reason = signal.reason
  if (reason instanceof Error) return reason
  return Object.assign(new Error('The operation was aborted.', { cause: reason }), { name: 'AbortError' })
}

/**
 * `operation` as the caller sees it: a caller whose signal aborts is detached at once
 * (the operation goes on, and still stores what it gets).
 */
function detach(operation, signal) {
  if (!signal) return operation
  if (signal.aborted) return Promise.reject(abortReason(signal))
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortReason(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    operation.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

/** LibreChat's error for a failure the native side judged; the request's error is the cause. */
function failureError(failure) {
  const cause = failure.error ? new OboExchangeError(failure.error.message, failure.error) : new Error(failure.detail)
  return new OboTokenResolutionError(failure.reason, failure.message, failure.retryable, cause)
}

function storeError(cause) {
  return new OboTokenResolutionError('session_refresh_failed', STORE_FAILURE, true, cause)
}

/**
 * A scheduled chat's OBO grants, kept in `options.store` (`get(key)`, `set(key, value,
 * ttlMs)`, `delete(key)`, each may return a promise: a Keyv, or LibreChat's token methods
 * behind three functions). Every value written is sealed with AES-256-GCM under
 * `options.encryptionKeys` (the shared cache's key format) or the key derived from
 * `options.credsKey`. Which servers may have one (`interface.schedules.oboServers`) is
 * the caller's decision.
 */
class ScheduledOboGrant {
  #native
  #store
  #log
  /** Store key → the tail of its operations: one at a time per grant. */
  #queues = new Map()
  /** Store key and scopes → a read in flight that later callers join. */
  #reads = new Map()

  /**
   * @param {import('./service').OboTokenService} service the IdP, client and logger to use
   * @param {import('../index').ScheduledOboGrantOptions} options
   */
  constructor(service, options) {
    if (options === null || typeof options !== 'object') throw typeError('options', 'an object', options)
    this.#store = checkStore(options.store)
    const [keys, credsKey] = checkKeys(options)
    const native = scheduledGrantOf(service, keys, credsKey)
    if (!native) throw typeError('service', 'an OboTokenService', service)
    this.#native = native
    this.#log = loggerOf(service) ?? (() => {})
  }

  /**
   * Enrols `scheduleId` for `server`: the offline On-Behalf-Of exchange of the user's live
   * `accessToken` for `scopes`, and its sealed grant stored. Nothing is stored on failure,
   * which rejects with OboTokenResolutionError: `exchange_failed` (retryable) when the IdP
   * or the network failed for now, else `missing_upstream_provider`.
   */
  async enroll({ scheduleId, server, scopes, accessToken, signal } = {}) {
    const key = scheduledOboGrantKey(nonEmptyString(scheduleId, 'scheduleId'), nonEmptyString(server, 'server'))
    const scope = nonEmptyString(scopes, 'scopes')
    const token = nonEmptyString(accessToken, 'accessToken')
    const checked = checkSignal(signal)
    checked?.throwIfAborted?.()
    const work = this.#serial(key, async () => {
      const outcome = await this.#call(() => this.#native.enroll(key, token, scope))
      if (outcome.failure) throw failureError(outcome.failure)
      await this.#write(key, outcome)
    })
    await detach(work, checked)
  }

  /**
   * The downstream token of `scheduleId`'s grant for `server`, as LibreChat's scheduled
   * provider returns it: `{ scheduledObo: true, access_token, expires_at }`, `expires_at`
   * in epoch seconds. The stored token while more than 45 s of it is left (unless
   * `forceRefresh`), else a renewal by the refresh-token grant, whose grant replaces the
   * stored one. Concurrent calls share one renewal. A grant the IdP refuses is deleted.
   */
  async getToken({ scheduleId, server, scopes, forceRefresh = false, signal } = {}) {
    const key = scheduledOboGrantKey(nonEmptyString(scheduleId, 'scheduleId'), nonEmptyString(server, 'server'))
    const scope = nonEmptyString(scopes, 'scopes')
    if (typeof forceRefresh !== 'boolean') throw typeError('forceRefresh', 'a boolean', forceRefresh)
    const checked = checkSignal(signal)
    checked?.throwIfAborted?.()
    const readKey = `${key}\u001f${scope}`
    let read = forceRefresh ? undefined : this.#reads.get(readKey)
    if (!read) {
      read = this.#serial(key, () => this.#read(key, scope, forceRefresh))
      if (!forceRefresh) {
        this.#reads.set(readKey, read)
        const forget = () => this.#reads.get(readKey) === read && this.#reads.delete(readKey)
        read.then(forget, forget)
      }
    }
    const token = await detach(read, checked)
    return { ...token }
  }

  /**
   * LibreChat's `UpstreamTokenProvider` for one schedule and server: `forceRefresh` and
   * `forceDownstreamRefresh` both renew, `signal` detaches the caller.
   */
  provider({ scheduleId, server, scopes } = {}) {
    nonEmptyString(scheduleId, 'scheduleId')
    nonEmptyString(server, 'server')
    nonEmptyString(scopes, 'scopes')
    return async ({ forceRefresh, forceDownstreamRefresh, signal } = {}) =>
      this.getToken({ scheduleId, server, scopes, forceRefresh: !!(forceRefresh || forceDownstreamRefresh), signal })
  }

  /** Deletes `scheduleId`'s grant for `server` (LibreChat's revoke), after any operation on it. */
  async revoke({ scheduleId, server } = {}) {
    const key = scheduledOboGrantKey(nonEmptyString(scheduleId, 'scheduleId'), nonEmptyString(server, 'server'))
    await this.#serial(key, () => this.#delete(key))
  }

  /** Runs `operation` after every earlier one on `key`. */
  #serial(key, operation) {
    const previous = this.#queues.get(key) ?? Promise.resolve()
    const run = previous.then(operation, operation)
    const tail = run.catch(() => {})
    this.#queues.set(key, tail)
    tail.then(() => this.#queues.get(key) === tail && this.#queues.delete(key))
    return run
  }

  /** The stored grant's token, renewed if due; a spent grant is deleted. */
  async #read(key, scopes, force) {
    let stored
    try {
      stored = await this.#store.get(key)
    } catch (err) {
      this.#warn(`store.get failed for ${key}`, err)
      throw storeError(err)
    }
    // Anything but a sealed record (nothing stored, say) is no grant: the native side says so.
    const record = typeof stored === 'string' ? stored : ''
    const outcome = await this.#call(() => this.#native.token(key, record, scopes, force))
    if (outcome.failure) {
      if (outcome.failure.dropGrant) await this.#delete(key)
      throw failureError(outcome.failure)
    }
    if (outcome.record !== undefined) await this.#write(key, outcome)
    return { scheduledObo: true, access_token: outcome.access_token, expires_at: Math.floor(outcome.expires_at / 1000) }
  }

  /** A native call, its refusals remade in this realm. */
  async #call(start) {
    try {
      return await start()
    } catch (err) {
      throw ownRealmError(err)
    }
  }

  async #write(key, outcome) {
    try {
      await this.#store.set(key, outcome.record, outcome.recordTtlMs)
    } catch (err) {
      this.#warn(`store.set failed for ${key}`, err)
      throw storeError(err)
    }
  }

  async #delete(key) {
    try {
      await this.#store.delete(key)
    } catch (err) {
      this.#warn(`store.delete failed for ${key}`, err)
      throw storeError(err)
    }
  }

  #warn(what, err) {
    this.#log('warn', `[ScheduledOboGrant] ${what}: ${err?.message ?? err}`)
  }
}

module.exports = { ScheduledOboGrant, scheduledOboGrantKey }
