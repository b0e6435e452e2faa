'use strict'

// The shared Redis tier's JavaScript side: the option `sharedCache` read from LibreChat's own
// Redis variables (`USE_REDIS`, `REDIS_URI`, ...; its type check is the declarations', in
// lib/options.js) with the key from `OBO_CACHE_KEYS` / `OBO_CACHE_KEY`, else derived from `CREDS_KEY`. Values
// are checked by the native side; its messages are renamed here after the variable that
// set the field. No message ever holds a key, a password or a URL (it may hold one).

const { readFileSync } = require('node:fs')
const { deriveSharedCacheKey } = require('./native.js')
const { argumentError } = require('./errors.js')

/** LibreChat's `isEnabled`: the text `true`, in any case, around any spaces. */
function isEnabled(value) {
  return typeof value === 'string' && value.trim().toLowerCase() === 'true'
}

/** A variable's trimmed text, or undefined when unset or blank. */
function text(env, variable) {
  const raw = env[variable]
  if (raw === undefined || raw === null) return undefined
  const value = String(raw).trim()
  return value === '' ? undefined : value
}

const OFF = 'The shared OBO token cache (Redis) is off'
const SET_A_KEY = 'set OBO_CACHE_KEY to 32 random bytes as 64 hex characters (`openssl rand -hex 32`), the same on every instance'

/**
 * The encryption keys: `OBO_CACHE_KEYS` (`"2:<new>,1:<old>"`), `OBO_CACHE_KEY`, or the key
 * derived from `CREDS_KEY`. `{ keys }`, or `{ off }` saying why the tier stays off.
 */
function keysFromEnv(env) {
  const list = text(env, 'OBO_CACHE_KEYS')
  const one = text(env, 'OBO_CACHE_KEY')
  if (list && one) throw new Error('Only either OBO_CACHE_KEYS or OBO_CACHE_KEY can be set.')
  if (list) return { keys: list.split(',').map((key) => key.trim()), variable: 'OBO_CACHE_KEYS' }
  if (one) return { keys: [one], variable: 'OBO_CACHE_KEY' }
  const credsKey = text(env, 'CREDS_KEY')
  if (!credsKey) return { off: `${OFF}: USE_REDIS is set but neither OBO_CACHE_KEY nor CREDS_KEY is; ${SET_A_KEY}` }
  try {
    return { keys: [deriveSharedCacheKey(credsKey)], variable: 'CREDS_KEY' }
  } catch (err) {
    // The native message names CREDS_KEY and what to set instead, never the key.
    return { off: `${OFF}: ${err.message}` }
  }
}

/** `REDIS_URI` with `REDIS_USERNAME` / `REDIS_PASSWORD` put in, URL-encoded; credentials already in the URI win, as in LibreChat. */
function redisUrl(uri, username, password) {
  if (!username && !password) return uri
  let url
  try {
    url = new URL(uri)
  } catch {
    return uri // the native side refuses it, naming REDIS_URI
  }
  if (!url.username && username) url.username = encodeURIComponent(username)
  if (!url.password && password) url.password = encodeURIComponent(password)
  return url.href
}

/**
 * `sharedCache` from LibreChat's variables: `{}` when `USE_REDIS` is not enabled (or
 * `LIBRECHAT_OBO_SHARED_CACHE=false`), `{ off }` when the tier must stay off (no usable
 * key), else `{ sharedCache, keysVariable }`. Throws, naming the variable, where LibreChat
 * itself would refuse to start, and on an unreadable `REDIS_CA`.
 */
function sharedCacheFromEnv(env) {
  if (!isEnabled(env.USE_REDIS)) return {}
  const own = text(env, 'LIBRECHAT_OBO_SHARED_CACHE')
  if (own !== undefined && !['true', 'false'].includes(own.toLowerCase())) {
    throw argumentError('env.LIBRECHAT_OBO_SHARED_CACHE', `LIBRECHAT_OBO_SHARED_CACHE must be true or false, got '${own}'`)
  }
  if (own?.toLowerCase() === 'false') return {}
  const uri = text(env, 'REDIS_URI')
  if (!uri) throw new Error('USE_REDIS is enabled but REDIS_URI is not set.')
  // LibreChat: both set is an error; the variable REDIS_KEY_PREFIX_VAR names holds the prefix.
  const prefixVar = env.REDIS_KEY_PREFIX_VAR
  if (prefixVar && env.REDIS_KEY_PREFIX) throw new Error('Only either REDIS_KEY_PREFIX_VAR or REDIS_KEY_PREFIX can be set.')
  const keyPrefix = (prefixVar ? env[prefixVar] : undefined) || env.REDIS_KEY_PREFIX || ''
  const { keys, off, variable } = keysFromEnv(env)
  if (off) return { off }
  const sharedCache = {
    // LibreChat gives every node of a list the same credentials.
    url: uri
      .split(',')
      .map((one) => redisUrl(one.trim(), env.REDIS_USERNAME, env.REDIS_PASSWORD))
      .join(','),
    keyPrefix: String(keyPrefix),
    encryptionKeys: keys,
  }
  // LibreChat: a REDIS_URI list means a cluster, and so does USE_REDIS_CLUSTER.
  if (isEnabled(env.USE_REDIS_CLUSTER) || uri.includes(',')) sharedCache.cluster = true
  const caPath = text(env, 'REDIS_CA')
  if (caPath) {
    try {
      sharedCache.ca = readFileSync(caPath, 'utf8')
    } catch (err) {
      throw new Error(`REDIS_CA names a file that cannot be read (${err.code ?? err.message}): ${caPath}`)
    }
  }
  return { sharedCache, keysVariable: variable }
}

/** The variable that set each field of `sharedCache`. */
function variableOf(field, env, keysVariable) {
  switch (field) {
    case 'url':
      return 'REDIS_URI'
    case 'cluster':
      return 'USE_REDIS_CLUSTER'
    case 'ca':
      return 'REDIS_CA'
    case 'keyPrefix':
      return env.REDIS_KEY_PREFIX_VAR ? 'REDIS_KEY_PREFIX_VAR' : 'REDIS_KEY_PREFIX'
    case 'encryptionKeys':
      return keysVariable
    default:
      return undefined
  }
}

/** Warns once through the caller's logger (function or `{ warn }`), else `process.emitWarning`. */
function warn(logger, message) {
  try {
    if (typeof logger === 'function') return logger('warn', message)
    if (typeof logger?.warn === 'function') return logger.warn(message)
  } catch {
    return undefined // a broken logger must not stop the service from starting
  }
  process.emitWarning(message, { code: 'LIBRECHAT_OBO_SHARED_CACHE' })
}

/**
 * Builds through `build(options)` with the shared tier from `env` added, unless `extra`
 * gives `sharedCache` itself. A tier that must stay off costs one warning and leaves the
 * service without it; a refusal of a `sharedCache` field is thrown naming its variable.
 */
function buildWithSharedCache(build, options, env, extra) {
  if (extra && Object.hasOwn(extra, 'sharedCache')) return build(options)
  const { sharedCache, off, keysVariable } = sharedCacheFromEnv(env)
  if (off) {
    warn(extra?.logger, off)
    return build(options)
  }
  if (!sharedCache) return build(options)
  try {
    return build({ ...options, sharedCache })
  } catch (err) {
    const [parent, field] = typeof err?.option === 'string' ? err.option.split('.') : []
    const variable = parent === 'sharedCache' && variableOf(field, env, keysVariable)
    if (variable) err.message = `${variable} (${err.message})`
    throw err
  }
}

module.exports = { buildWithSharedCache }
