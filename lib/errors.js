'use strict'

// The errors this package throws, and the helper that words argument type errors.

/** Fields of a failed exchange that are copied onto the thrown Error. */
const ERROR_FIELDS = [
  'retryable',
  'oboFailureReason',
  'status',
  'code',
  'error',
  'error_description',
  'error_codes',
  'suberror',
  'claims',
  'trace_id',
  'correlation_id',
  'wwwAuthenticate',
  'idJagStep',
]

/**
 * A failed On-Behalf-Of exchange. Carries LibreChat's tags (`retryable`,
 * `oboFailureReason`), the HTTP `status`, and the IdP's `error`, `error_description`,
 * `error_codes`, `suberror`, `claims`, `trace_id` and `correlation_id` when present, and a
 * ready `wwwAuthenticate` value when the IdP asks for user interaction. With grantType
 * 'id_jag', `idJagStep` says where it failed: `discovery` (the MCP server's or its
 * authorization server's metadata), `leg1` (the enterprise IdP) or `leg2` (the MCP
 * authorization server).
 */
class OboExchangeError extends Error {
  constructor(message, fields = {}, options) {
    super(message, options)
    this.name = 'OboExchangeError'
    for (const name of ERROR_FIELDS) {
      if (fields[name] !== undefined && fields[name] !== null) this[name] = fields[name]
    }
  }
}

function describeType(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

function typeError(name, expected, value) {
  return new TypeError(`${name} must be ${expected}, got ${describeType(value)}`)
}

/**
 * LibreChat's `OboTokenResolutionError`: `reason`, `retryable`, `userMessage` (also the
 * message) and the original `cause`. Same constructor as LibreChat's.
 */
class OboTokenResolutionError extends Error {
  constructor(reason, userMessage, retryable = false, cause) {
    super(userMessage)
    this.name = 'OboTokenResolutionError'
    this.reason = reason
    this.retryable = retryable
    this.userMessage = userMessage
    this.cause = cause
  }
}

module.exports = { OboExchangeError, OboTokenResolutionError, typeError }
