'use strict'

// OboTokenService: checks argument types (so a wrong type gets an error naming the
// argument), answers cache hits with an already-settled promise, turns failed exchanges
// into OboExchangeError, and reads LibreChat's environment (fromEnv). The native
// binding does the work.

const { readFileSync } = require('node:fs')
const { NativeOboService, assertionDigest } = require('./native.js')
const { Memo } = require('./memo.js')
const { OboExchangeError, typeError } = require('./errors.js')

const LEVELS = ['debug', 'info', 'warn', 'error']

const OPTION_TYPES = {
  issuer: 'string',
  clientId: 'string',
  clientSecret: 'string',
  clientAuthMethod: 'string',
  tokenEndpoint: 'string',
  requestTimeoutMs: 'number',
  expiryBufferSeconds: 'number',
  maxCacheEntries: 'number',
  maxRetries: 'number',
  retryDelayMs: 'number',
  proxy: 'string',
  grantType: 'string',
  subjectTokenType: 'string',
  requestedTokenType: 'string',
  clientAssertionKey: 'string',
  clientAssertionKeyId: 'string',
  clientAssertionCertificate: 'string',
  clientAssertionAlg: 'string',
  clientAssertionAudience: 'string',
  validateAssertion: 'validateAssertion',
  logger: 'logger',
}

/** Wraps a logger (function or LibreChat's `{ debug, info, warn, error }`) so it never throws. */
function normalizeLogger(logger) {
  const call =
    typeof logger === 'function'
      ? (level, message) => logger(level, message)
      : (level, message) => {
          const method = logger[level]
          if (typeof method === 'function') method.call(logger, message)
        }
  return (level, message) => {
    try {
      call(level, message)
    } catch {
      // A broken logger must not take the process down, nor fail an exchange.
    }
  }
}

/** An array of strings, or an error naming `name`. */
function checkStrings(value, name) {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string')) {
    throw typeError(name, 'an array of strings', value)
  }
  return value
}

/** `options.validateAssertion`: `{ audiences, issuers?, leewaySeconds? }`. */
function checkValidateAssertion(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('options.validateAssertion', 'an object', value)
  }
  const { audiences, issuers, leewaySeconds, ...unknown } = value
  const extra = Object.keys(unknown)
  if (extra.length > 0) {
    throw new TypeError(`options.validateAssertion.${extra[0]} is not a known option (known: audiences, issuers, leewaySeconds)`)
  }
  const checked = { audiences: checkStrings(audiences, 'options.validateAssertion.audiences') }
  if (issuers != null) checked.issuers = checkStrings(issuers, 'options.validateAssertion.issuers')
  if (leewaySeconds != null) {
    if (typeof leewaySeconds !== 'number') throw typeError('options.validateAssertion.leewaySeconds', 'a number', leewaySeconds)
    checked.leewaySeconds = leewaySeconds
  }
  return checked
}

function checkOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw typeError('options', 'an object', options)
  }
  const native = {}
  for (const [name, value] of Object.entries(options)) {
    const expected = OPTION_TYPES[name]
    if (!expected) {
      throw new TypeError(`options.${name} is not a known option (known: ${Object.keys(OPTION_TYPES).join(', ')})`)
    }
    if (value === undefined || value === null) continue
    if (expected === 'logger') {
      const isLoggerObject = typeof value === 'object' && LEVELS.some((l) => typeof value[l] === 'function')
      if (typeof value !== 'function' && !isLoggerObject) {
        throw typeError('options.logger', 'a function or an object with debug/info/warn/error methods', value)
      }
      native.logger = normalizeLogger(value)
      continue
    }
    if (expected === 'validateAssertion') {
      native.validateAssertion = checkValidateAssertion(value)
      continue
    }
    if (typeof value !== expected) throw typeError(`options.${name}`, `a ${expected}`, value)
    native[name] = value
  }
  return native
}

const SEPARATOR = '\u001f'

/** One identity field, type-checked; absent is the empty string. */
function identityField(source, name, field) {
  const value = source?.[field]
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') throw typeError(`${name}.${field}`, 'a string', value)
  if (value.includes(SEPARATOR)) throw new TypeError(`${name}.${field} must not contain the U+001F character`)
  return value
}

/** One source's identity fields joined with U+001F. */
function identityFields(source, name, subjectField) {
  return (
    identityField(source, name, subjectField) +
    SEPARATOR +
    identityField(source, name, 'tenantId') +
    SEPARATOR +
    identityField(source, name, 'openidIssuer')
  )
}

/**
 * The identity fields the cache key needs, packed into one string for the binding (one
 * string crosses the boundary faster than two objects): the user's openidId, tenantId,
 * openidIssuer, then the identity context's openidSubject, tenantId, openidIssuer.
 */
function packIdentity(user, identityContext) {
  if (user !== undefined && user !== null && typeof user !== 'object') throw typeError('user', 'an object', user)
  if (identityContext !== undefined && identityContext !== null && typeof identityContext !== 'object') {
    throw typeError('identityContext', 'an object', identityContext)
  }
  return identityFields(user, 'user', 'openidId') + SEPARATOR + identityFields(identityContext, 'identityContext', 'openidSubject')
}

/** LibreChat's falsy checks first (same messages), then the type of a truthy value. */
function checkRequiredString(value, name, missingMessage) {
  if (!value) throw new Error(missingMessage)
  if (typeof value !== 'string') throw typeError(name, 'a string', value)
  return value
}

function checkFromCache(fromCache) {
  if (fromCache === undefined) return true
  if (typeof fromCache !== 'boolean') throw typeError('fromCache', 'a boolean', fromCache)
  return fromCache
}

const CALL_OPTIONS = ['claims', 'audience', 'resource']

/**
 * `options` of exchangeOboToken: `claims` (a JSON claims request answering a claims
 * challenge), and the RFC 8693 `audience` and `resource`; each a string when given.
 * Undefined when none is given, so the hot path passes nothing extra.
 */
function checkCallOptions(options) {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object') throw typeError('options', 'an object', options)
  let checked
  for (const name of CALL_OPTIONS) {
    const value = options[name]
    if (value === undefined || value === null) continue
    if (typeof value !== 'string') throw typeError(`options.${name}`, 'a string', value)
    if (value.includes(SEPARATOR)) throw new TypeError(`options.${name} must not contain the U+001F character`)
    checked = { ...checked, [name]: value }
  }
  return checked
}

/** Each service's normalized logger, for `resolveOboToken` to log through. */
const serviceLoggers = new WeakMap()

/** A caller's own copy of a shared response. */
function copyResponse(response) {
  return { ...response }
}

/**
 * An error the native side threw (an argument it refused), remade in this module's realm
 * with the same name, message and code: under jest the addon's errors belong to the main
 * realm, where the caller's `instanceof Error` does not hold. The original is `cause`.
 */
function ownRealmError(err) {
  if (err instanceof Error || err === null || typeof err !== 'object' || Object.prototype.toString.call(err) !== '[object Error]') {
    return err
  }
  const mine = err.name === 'TypeError' ? new TypeError(err.message, { cause: err }) : new Error(err.message, { cause: err })
  if (err.code !== undefined) mine.code = err.code
  return mine
}

/** A cache hit's numbers and the token's strings, as LibreChat's response object. */
function hitResponse([, expires_in, expires_at], strings, scope) {
  const response = { access_token: strings.access_token, token_type: 'Bearer', expires_in, expires_at, scope }
  if (strings.issued_token_type !== undefined) response.issued_token_type = strings.issued_token_type
  return response
}

/**
 * LibreChat's OBO token service, in Rust: exchange, cache, single-flight, retry.
 * Create one per client registration at start-up and share it.
 */
class OboTokenService {
  #native
  #log
  /** Upstream token string → its SHA-256 hex, as cache keys hold it. */
  #digests = new Memo()
  /** Native token id → `{ access_token, issued_token_type }` as JS strings. */
  #tokens = new Memo()
  /** Exchanges in flight by their exact arguments: joiners share one native promise. */
  #flights = new Map()
  /** Calls that joined a flight here, without reaching the native side. */
  #joined = 0

  /** @param {import('../index').OboServiceOptions} options */
  constructor(options) {
    const native = checkOptions(options)
    this.#log = native.logger ?? (() => {})
    this.#native = new NativeOboService(native)
    serviceLoggers.set(this, this.#log)
  }

  /**
   * A service configured from LibreChat's environment: `OPENID_ISSUER`,
   * `OPENID_CLIENT_ID`, `OPENID_CLIENT_SECRET`, `PROXY`, the auth method from
   * `OPENID_TOKEN_ENDPOINT_AUTH_METHOD`, and this package's `LIBRECHAT_OBO_*` extras.
   * `extra` adds options that have no variable (a logger).
   */
  static fromEnv(env = process.env, extra = {}) {
    const options = optionsFromEnv(env)
    try {
      return new OboTokenService({ ...options, ...extra })
    } catch (err) {
      throw nameVariable(err, env)
    }
  }

  /**
   * LibreChat's `exchangeOboToken`: same arguments, results and error tags.
   * A cache hit resolves without leaving the JavaScript thread. `options.claims` passes a
   * client's answer to a claims challenge on to the IdP; such a request bypasses the cache.
   * `options.audience` / `options.resource` name the target of an RFC 8693 exchange and
   * are part of the cache key.
   */
  exchangeOboToken(user, accessToken, scopes, fromCache = true, identityContext, options) {
    try {
      checkRequiredString(accessToken, 'accessToken', 'Access token is required for OBO exchange')
      checkRequiredString(scopes, 'scopes', 'Scopes are required for OBO exchange')
      const useCache = checkFromCache(fromCache)
      const call = checkCallOptions(options)
      const identity = packIdentity(user, identityContext)
      if (useCache && call?.claims === undefined) {
        const digest = this.#digests.get(accessToken) ?? this.#digests.set(accessToken, assertionDigest(accessToken))
        const hit = this.#hit(identity, digest, scopes, call)
        if (hit !== undefined) return Promise.resolve(hit)
        return this.#joinOrStart(identity, digest, accessToken, scopes, call)
      }
      return this.#settled(this.#native.exchange(identity, accessToken, scopes, useCache, call))
    } catch (err) {
      return Promise.reject(ownRealmError(err))
    }
  }

  /**
   * The outcome of a native exchange as a promise of this module's realm. The native
   * promise belongs to the realm the addon was loaded in: under jest (each test file in a
   * `vm` context, the `.node` file loaded by the main realm's `require`), it and every
   * `.then` chained on it are main-realm promises, whose rejections the test's realm never
   * sees. An `async` function's promise is this realm's, and its `await` handles the
   * native promise (which never rejects: failures arrive as `{ error }`). `forget` runs
   * as the exchange settles, before any caller sees the outcome.
   */
  async #settled(native, forget) {
    let outcome
    try {
      outcome = await native
    } finally {
      forget?.()
    }
    return this.#settle(outcome)
  }

  /**
   * A miss: joins the exchange in flight for exactly these arguments, or starts one. The
   * key holds the digest, never the token; equal keys mean equal native cache keys, and
   * calls that differ here but normalize to one native key still share its flight there.
   * Each caller gets its own response object.
   */
  #joinOrStart(identity, digest, accessToken, scopes, call) {
    const key = [identity, scopes, digest, call?.audience ?? '', call?.resource ?? ''].join(SEPARATOR)
    let flight = this.#flights.get(key)
    if (flight !== undefined) {
      this.#joined += 1
    } else {
      // The slot is freed as the exchange settles, before anyone sees the outcome, so a
      // later call finds the cached token or starts afresh, never a finished failure. The
      // native call runs (and may throw) before the flight is stored; `forget` runs after.
      const native = this.#native.exchange(identity, accessToken, scopes, true, call)
      flight = this.#settled(native, () => this.#flights.delete(key))
      this.#flights.set(key, flight)
    }
    return flight.then(copyResponse)
  }

  /** The cached response for this call, or undefined. Only numbers cross the boundary when the token's string is remembered. */
  #hit(identity, digest, scopes, call) {
    const hit = this.#native.cachedId(identity, digest, scopes, call?.audience, call?.resource)
    if (hit === null) return undefined
    let strings = this.#tokens.get(hit[0])
    if (strings === undefined) {
      const fetched = this.#native.cachedToken(identity, digest, scopes, call?.audience, call?.resource)
      if (fetched === null) return undefined
      strings = this.#remember(fetched[0], fetched[1], fetched[2])
    }
    return hitResponse(hit, strings, scopes)
  }

  #remember(id, access_token, issued_token_type) {
    return this.#tokens.set(id, issued_token_type == null ? { access_token } : { access_token, issued_token_type })
  }

  /**
   * A settled exchange as LibreChat's response, or its error thrown as OboExchangeError;
   * both made here, in the caller's realm (the native token object is the addon's).
   */
  #settle({ token, tokenId, error }) {
    if (error) throw new OboExchangeError(error.message, error)
    const response = { ...token }
    if (response.issued_token_type == null) delete response.issued_token_type
    this.#remember(tokenId, response.access_token, response.issued_token_type)
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
    return this.#native.invalidate(packIdentity(user, identityContext), scopes ?? undefined)
  }

  /** Drops every cached token. */
  clear() {
    this.#native.clear()
    this.#digests.clear()
    this.#tokens.clear()
  }

  /** Counters since creation, and the number of cached tokens. */
  stats() {
    const stats = this.#native.stats()
    stats.misses += this.#joined
    stats.coalesced += this.#joined
    return stats
  }
}

/** Variables `fromEnv` reads: LibreChat's first, then this package's extras. */
const ENV_OPTIONS = [
  ['OPENID_ISSUER', 'issuer'],
  ['OPENID_CLIENT_ID', 'clientId'],
  ['OPENID_CLIENT_SECRET', 'clientSecret'],
  ['PROXY', 'proxy'],
  ['OPENID_TOKEN_ENDPOINT_AUTH_METHOD', 'clientAuthMethod'],
  ['LIBRECHAT_OBO_CLIENT_AUTH_METHOD', 'clientAuthMethod'],
  ['LIBRECHAT_OBO_GRANT_TYPE', 'grantType'],
  ['LIBRECHAT_OBO_SUBJECT_TOKEN_TYPE', 'subjectTokenType'],
  ['LIBRECHAT_OBO_REQUESTED_TOKEN_TYPE', 'requestedTokenType'],
  ['LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_FILE', 'clientAssertionKey', 'file'],
  ['LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_ID', 'clientAssertionKeyId'],
  ['LIBRECHAT_OBO_CLIENT_ASSERTION_CERTIFICATE_FILE', 'clientAssertionCertificate', 'file'],
  ['LIBRECHAT_OBO_CLIENT_ASSERTION_ALG', 'clientAssertionAlg'],
  ['LIBRECHAT_OBO_CLIENT_ASSERTION_AUDIENCE', 'clientAssertionAudience'],
  ['LIBRECHAT_OBO_VALIDATE_AUDIENCES', 'validateAssertion', 'list'],
  ['LIBRECHAT_OBO_TOKEN_ENDPOINT', 'tokenEndpoint'],
  ['LIBRECHAT_OBO_REQUEST_TIMEOUT_MS', 'requestTimeoutMs', 'integer'],
  ['LIBRECHAT_OBO_EXPIRY_BUFFER_SECONDS', 'expiryBufferSeconds', 'integer'],
  ['LIBRECHAT_OBO_MAX_CACHE_ENTRIES', 'maxCacheEntries', 'integer'],
  ['LIBRECHAT_OBO_MAX_RETRIES', 'maxRetries', 'integer'],
  ['LIBRECHAT_OBO_RETRY_DELAY_MS', 'retryDelayMs', 'integer'],
]

/** Options from environment variables; a malformed value is named by its variable. */
function optionsFromEnv(env) {
  if (env === null || typeof env !== 'object') throw typeError('env', 'an object', env)
  const options = {}
  for (const [variable, option, kind] of ENV_OPTIONS) {
    const raw = env[variable]
    if (raw === undefined || raw === null || String(raw).trim() === '') continue
    const text = String(raw).trim()
    if (kind === 'integer' && !/^\d+$/.test(text)) {
      throw new TypeError(`${variable} must be a whole number, got '${text}'`)
    }
    options[option] = parseVariable(variable, kind, text)
  }
  for (const [variable, option] of ENV_OPTIONS.slice(0, 2)) {
    if (options[option] === undefined) throw new Error(`${variable} is required`)
  }
  return options
}

/** A variable's value as its option wants it. */
function parseVariable(variable, kind, text) {
  switch (kind) {
    case 'integer':
      return Number(text)
    case 'file':
      return readPem(variable, text)
    case 'list':
      return { audiences: text.split(/[\s,]+/).filter(Boolean) }
    default:
      return text
  }
}

/** A PEM file named by an environment variable; the error names the variable, never the content. */
function readPem(variable, path) {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`${variable} names a file that cannot be read (${err.code ?? err.message}): ${path}`)
  }
}

/** Rewrites `options.x …` in a validation error to name the variable that set `x`. */
function nameVariable(err, env) {
  const match = /^options\.(\w+) /.exec(err?.message ?? '')
  const candidates = match ? ENV_OPTIONS.filter(([, option]) => option === match[1]) : []
  const entry = [...candidates].reverse().find(([variable]) => env[variable]) ?? candidates[0]
  if (entry) err.message = `${entry[0]} (${err.message})`
  return err
}

/** The normalized logger of a service (resolveOboToken logs through it), or undefined. */
function loggerOf(service) {
  return serviceLoggers.get(service)
}

module.exports = { OboTokenService, loggerOf, optionsFromEnv }
