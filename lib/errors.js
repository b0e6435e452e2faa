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
  'kind',
  'option',
]

/** The codes of a refused argument and a refused option, as the native side's (src/ground/error/). */
const INVALID_ARG = 'ERR_INVALID_ARG'
const INVALID_OPTION = 'ERR_INVALID_OPTION'

/**
 * A failed On-Behalf-Of exchange. Carries LibreChat's tags (`retryable`,
 * `oboFailureReason`), the HTTP `status`, and the IdP's `error`, `error_description`,
 * `error_codes`, `suberror`, `claims`, `trace_id` and `correlation_id` when present, and a
 * ready `wwwAuthenticate` value when the IdP asks for user interaction. With grantType
 * 'id_jag', `idJagStep` says where it failed: `discovery` (the MCP server's or its
 * authorization server's metadata), `leg1` (the enterprise IdP) or `leg2` (the MCP
 * authorization server). `kind` says what failed where one `code` covers several
 * failures, `option` names the option at fault, and `cause` chains the native causes
 * (`fields.causes`, outermost first) unless `options.cause` is given.
 */
class OboExchangeError extends Error {
  constructor(message, fields = {}, options) {
    super(message, options?.cause === undefined ? causeOptions(fields.causes) : options)
    this.name = 'OboExchangeError'
    for (const name of ERROR_FIELDS) {
      if (fields[name] !== undefined && fields[name] !== null) this[name] = fields[name]
    }
  }
}

/** `{ cause }` of the native causes (`{ message, code? }`, outermost first) as linked Errors, or undefined. */
function causeOptions(causes) {
  if (!Array.isArray(causes) || causes.length === 0) return undefined
  let cause
  for (const { message, code } of [...causes].reverse()) {
    cause = new Error(message, cause === undefined ? undefined : { cause })
    if (typeof code === 'string') cause.code = code
  }
  return { cause }
}

function describeType(value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

/**
 * A refused argument `name` (`user.openidId`, `env.PROXY`...) as a TypeError with `code` and
 * `argument`. A constructor's `options.x` is an option (`option` defaults to that): then it is
 * `ERR_INVALID_OPTION` with `option: 'x'`, as the native side names it. A call's options are
 * arguments (`{ option: false }`).
 */
function argumentError(name, message, { option = name.startsWith('options.') } = {}) {
  const fields = option ? { code: INVALID_OPTION, option: name.slice('options.'.length) } : { code: INVALID_ARG, argument: name }
  return Object.assign(new TypeError(message), fields)
}

/** A wrong type for `name`, worded as every type check here words it; `how` as `argumentError`'s. */
function typeError(name, expected, value, how) {
  return argumentError(name, `${name} must be ${expected}, got ${describeType(value)}`, how)
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

module.exports = { OboExchangeError, OboTokenResolutionError, argumentError, typeError }
