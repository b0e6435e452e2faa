'use strict'

// The options object of OboTokenService, type-checked: a wrong type gets a TypeError
// naming the option; values (required, URLs, ranges) are checked by the native side,
// whose message names the option too.

const { argumentError, typeError } = require('./errors.js')
const { checkSharedCache } = require('./shared-cache.js')

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
  resourceIndicator: 'string',
  subjectTokenType: 'string',
  requestedTokenType: 'string',
  clientAssertionKey: 'string',
  clientAssertionKeyId: 'string',
  clientAssertionCertificate: 'string',
  clientAssertionAlg: 'string',
  clientAssertionAudience: 'string',
  validateAssertion: 'validateAssertion',
  refreshAhead: 'refreshAhead',
  logger: 'logger',
  sharedCache: 'sharedCache',
  authorizationServer: 'authorizationServer',
  allowedDomains: 'allowedDomains',
}

/** `options.authorizationServer` (grantType 'id_jag'): the client at the MCP authorization server; every field a string. */
const AUTHORIZATION_SERVER_FIELDS = [
  'issuer',
  'clientId',
  'clientSecret',
  'clientAuthMethod',
  'clientAssertionKey',
  'clientAssertionKeyId',
  'clientAssertionCertificate',
  'clientAssertionAlg',
]

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
    const name = `options.validateAssertion.${extra[0]}`
    throw argumentError(name, `${name} is not a known option (known: audiences, issuers, leewaySeconds)`)
  }
  const checked = { audiences: checkStrings(audiences, 'options.validateAssertion.audiences') }
  if (issuers != null) checked.issuers = checkStrings(issuers, 'options.validateAssertion.issuers')
  if (leewaySeconds != null) {
    if (typeof leewaySeconds !== 'number') throw typeError('options.validateAssertion.leewaySeconds', 'a number', leewaySeconds)
    checked.leewaySeconds = leewaySeconds
  }
  return checked
}

/** `options.authorizationServer`: an object of known string fields. */
function checkAuthorizationServer(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('options.authorizationServer', 'an object', value)
  }
  const checked = {}
  for (const [name, field] of Object.entries(value)) {
    if (!AUTHORIZATION_SERVER_FIELDS.includes(name)) {
      const known = AUTHORIZATION_SERVER_FIELDS.join(', ')
      throw argumentError(
        `options.authorizationServer.${name}`,
        `options.authorizationServer.${name} is not a known option (known: ${known})`,
      )
    }
    if (field === undefined || field === null) continue
    if (typeof field !== 'string') throw typeError(`options.authorizationServer.${name}`, 'a string', field)
    checked[name] = field
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
      throw argumentError(`options.${name}`, `options.${name} is not a known option (known: ${Object.keys(OPTION_TYPES).join(', ')})`)
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
    if (expected === 'refreshAhead') {
      if (typeof value !== 'number' && typeof value !== 'boolean') {
        throw typeError('options.refreshAhead', 'a number or a boolean', value)
      }
      native.refreshAhead = value
      continue
    }
    if (expected === 'validateAssertion') {
      native.validateAssertion = checkValidateAssertion(value)
      continue
    }
    if (expected === 'authorizationServer') {
      native.authorizationServer = checkAuthorizationServer(value)
      continue
    }
    if (expected === 'allowedDomains') {
      native.allowedDomains = checkStrings(value, 'options.allowedDomains')
      continue
    }
    if (expected === 'sharedCache') {
      native.sharedCache = checkSharedCache(value)
      continue
    }
    if (typeof value !== expected) throw typeError(`options.${name}`, `a ${expected}`, value)
    native[name] = value
  }
  return native
}

module.exports = { checkOptions }
