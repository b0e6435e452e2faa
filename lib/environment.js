'use strict'

// LibreChat's environment as service options: which variable sets which option, how a
// variable's text becomes the option's value, and errors that name the variable.

const { readFileSync } = require('node:fs')
const { argumentError, typeError } = require('./errors.js')
const { buildWithSharedCache } = require('./shared-cache.js')

/** Variables `fromEnv` reads: LibreChat's first, then this package's extras. */
const ENV_OPTIONS = [
  ['OPENID_ISSUER', 'issuer'],
  ['OPENID_CLIENT_ID', 'clientId'],
  ['OPENID_CLIENT_SECRET', 'clientSecret'],
  ['PROXY', 'proxy'],
  ['OPENID_TOKEN_ENDPOINT_AUTH_METHOD', 'clientAuthMethod'],
  ['LIBRECHAT_OBO_CLIENT_AUTH_METHOD', 'clientAuthMethod'],
  ['LIBRECHAT_OBO_GRANT_TYPE', 'grantType'],
  ['LIBRECHAT_OBO_RESOURCE_INDICATOR', 'resourceIndicator'],
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
  ['LIBRECHAT_OBO_REFRESH_AHEAD', 'refreshAhead', 'fraction'],
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
      throw argumentError(`env.${variable}`, `${variable} must be a whole number, got '${text}'`)
    }
    if (kind === 'fraction' && !/^(false|true|\d*\.?\d+)$/.test(text)) {
      throw argumentError(`env.${variable}`, `${variable} must be a number such as 0.8, or false, got '${text}'`)
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
    case 'fraction':
      return text === 'false' ? false : text === 'true' ? true : Number(text)
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

/** Prefixes a refused option's message (`err.option` names it) with the variable that set it. */
function nameVariable(err, env) {
  const option = typeof err?.option === 'string' ? err.option : undefined
  const candidates = option ? ENV_OPTIONS.filter(([, name]) => name === option) : []
  const entry = [...candidates].reverse().find(([variable]) => env[variable]) ?? candidates[0]
  if (entry) err.message = `${entry[0]} (${err.message})`
  return err
}

/**
 * Builds a service with `build(options)` from `env`; a refused option is named by its
 * variable. With `USE_REDIS`, the shared tier from LibreChat's Redis variables too.
 */
function fromEnv(build, env, extra) {
  const options = optionsFromEnv(env)
  try {
    return buildWithSharedCache(build, { ...options, ...extra }, env, extra)
  } catch (err) {
    throw nameVariable(err, env)
  }
}

module.exports = { fromEnv, optionsFromEnv }
