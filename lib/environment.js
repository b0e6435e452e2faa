'use strict'

// LibreChat's environment as service options: which variable sets which option, how a
// variable's text becomes the option's value, and errors that name the variable.

const { readFileSync } = require('node:fs')
const { argumentError, typeError } = require('./errors.js')
const { DECLARATIONS } = require('./options.js')
const { buildWithSharedCache } = require('./shared-cache.js')

/** How a variable's text becomes a value of each declared kind (text as it is otherwise). */
const FORMS = { integer: 'integer', texts: 'list', fraction: 'fraction' }

/**
 * `[variable, path, form]` for every variable of every declared option (LibreChat's and this
 * package's extras), in the order declared; of two variables for one option the later wins.
 */
function variables(declarations) {
  return declarations.flatMap((d) => [
    ...d.env.map((variable) => [variable, d.path, d.file ? 'file' : FORMS[d.kind]]),
    ...variables(d.fields ?? []),
  ])
}

const ENV_OPTIONS = variables(DECLARATIONS)

/** The top-level options `fromEnv` cannot do without, by their first variable. */
const REQUIRED = DECLARATIONS.filter((d) => d.required && d.env.length > 0).map((d) => [d.env[0], d.key])

/** Options from environment variables; a malformed value is named by its variable. */
function optionsFromEnv(env) {
  if (env === null || typeof env !== 'object') throw typeError('env', 'an object', env)
  const options = {}
  for (const [variable, path, kind] of ENV_OPTIONS) {
    const raw = env[variable]
    if (raw === undefined || raw === null || String(raw).trim() === '') continue
    const text = String(raw).trim()
    if (kind === 'integer' && !/^\d+$/.test(text)) {
      throw argumentError(`env.${variable}`, `${variable} must be a whole number, got '${text}'`)
    }
    if (kind === 'fraction' && !/^(false|true|\d*\.?\d+)$/.test(text)) {
      throw argumentError(`env.${variable}`, `${variable} must be a number such as 0.8, or false, got '${text}'`)
    }
    const [option, field] = path.split('.')
    const value = parseVariable(variable, kind, text)
    if (field) options[option] = { ...options[option], [field]: value }
    else options[option] = value
  }
  for (const [variable, option] of REQUIRED) {
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
      return text.split(/[\s,]+/).filter(Boolean)
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
  const top = typeof err?.option === 'string' ? err.option.split('.')[0] : undefined
  const candidates = top ? ENV_OPTIONS.filter(([, path]) => path.split('.')[0] === top) : []
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
