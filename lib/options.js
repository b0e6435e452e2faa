'use strict'

// The options object of OboTokenService, type-checked: a wrong type gets a TypeError
// naming the option; values (required, URLs, ranges) are checked by the native side,
// whose message names the option too.

const { optionDeclarations } = require('./native.js')
const { argumentError, typeError } = require('./errors.js')

const LEVELS = ['debug', 'info', 'warn', 'error']

/**
 * The service's options as the Rust side declares them (src/config/options.rs): each one's
 * name, kind, variables and documentation. The checks below, `fromEnv`'s variables and
 * index.d.ts's option interfaces are derived from them; nothing here lists an option.
 */
const DECLARATIONS = optionDeclarations()

/** The `typeof` of a declared kind checked by `typeof` alone. */
const TYPE_OF = { text: 'string', integer: 'number', flag: 'boolean' }

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

/** One declared option's value, type-checked (values are the native side's to check). */
function checkValue(declaration, value, name) {
  switch (declaration.kind) {
    case 'logger': {
      const isLoggerObject = typeof value === 'object' && LEVELS.some((l) => typeof value[l] === 'function')
      if (typeof value !== 'function' && !isLoggerObject) {
        throw typeError(name, 'a function or an object with debug/info/warn/error methods', value)
      }
      return normalizeLogger(value)
    }
    case 'texts':
      return checkStrings(value, name)
    case 'fraction':
      if (typeof value !== 'number' && typeof value !== 'boolean') throw typeError(name, 'a number or a boolean', value)
      return value
    case 'block':
      return checkBlock(value, declaration.fields, name)
    default: {
      const expected = TYPE_OF[declaration.kind]
      if (typeof value !== expected) throw typeError(name, `a ${expected}`, value)
      return value
    }
  }
}

/** An object of declared options: each key known, each value of its kind; unset ones left out. */
function checkBlock(value, fields, name) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw typeError(name, 'an object', value)
  }
  const checked = {}
  for (const [key, item] of Object.entries(value)) {
    const declaration = fields.find((field) => field.key === key)
    if (!declaration) {
      const known = fields.map((field) => field.key).join(', ')
      throw argumentError(`${name}.${key}`, `${name}.${key} is not a known option (known: ${known})`)
    }
    if (item === undefined || item === null) continue
    checked[key] = checkValue(declaration, item, `${name}.${key}`)
  }
  return checked
}

/** The options object of `OboTokenService`, type-checked against the declarations. */
function checkOptions(options) {
  return checkBlock(options, DECLARATIONS, 'options')
}

module.exports = { DECLARATIONS, checkOptions }
