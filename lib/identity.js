'use strict'

// The identity wire format, the JS half of src/binding/identity.rs: the identity fields the
// cache key needs, type-checked and packed into one string of six fields joined by U+001F
// (one string crosses the boundary faster than two objects). The native side unpacks it
// and owns the rule on its values; a field that holds U+001F itself cannot be packed, so the
// native side refuses it by name (`checkIdentityField`).

const { checkIdentityField } = require('./native.js')
const { typeError } = require('./errors.js')

/** U+001F, which joins the fields of a packed identity and of the front's keys (the native side's too). */
const SEPARATOR = '\u001f'

/**
 * One identity field, type-checked; absent is the empty string. A field that contains
 * U+001F cannot be packed: the native side refuses it, naming it by `position`.
 */
function identityField(source, name, field, position) {
  const value = source?.[field]
  if (value === undefined || value === null) return ''
  if (typeof value !== 'string') throw typeError(`${name}.${field}`, 'a string', value)
  if (value.includes(SEPARATOR)) checkIdentityField(position, value)
  return value
}

/** One source's identity fields joined with U+001F; `first` is the position of its first field. */
function identityFields(source, name, subjectField, first) {
  return (
    identityField(source, name, subjectField, first) +
    SEPARATOR +
    identityField(source, name, 'tenantId', first + 1) +
    SEPARATOR +
    identityField(source, name, 'openidIssuer', first + 2)
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
  return identityFields(user, 'user', 'openidId', 0) + SEPARATOR + identityFields(identityContext, 'identityContext', 'openidSubject', 3)
}

/** Every identity field empty: what a refused call passes (the native side never reads it). */
const NO_IDENTITY = SEPARATOR.repeat(5)

module.exports = { SEPARATOR, NO_IDENTITY, packIdentity }
