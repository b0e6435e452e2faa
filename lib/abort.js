'use strict'

// Cancellation as LibreChat's OBO code has it: an aborted caller stops waiting, the work
// it waited on goes on (it is shared: other callers join it and its token fills the
// cache), and the caller gets an AbortError.

const { typeError } = require('./errors.js')

/** How deep `isAbortError` follows `cause` (LibreChat stops at a cycle; a bound also stops a long chain). */
const MAX_CAUSES = 16

/** A property read that a hostile getter cannot turn into a throw. */
function read(value, name) {
  try {
    return value[name]
  } catch {
    return undefined
  }
}

/**
 * LibreChat's `isAbortError`: a cancellation rather than a failure. The error or one of
 * its causes is named `AbortError`, has code `ABORT_ERR` or `ERR_CANCELED`, or says it
 * was aborted. Such an error passes through `resolveOboToken` as the same object.
 */
function isAbortError(error) {
  let current = error
  for (let depth = 0; depth < MAX_CAUSES && current !== null && typeof current === 'object'; depth++) {
    const name = read(current, 'name')
    const code = read(current, 'code')
    const message = read(current, 'message')
    if (name === 'AbortError' || code === 'ABORT_ERR' || code === 'ERR_CANCELED') return true
    // The one message test in lib/, on purpose: LibreChat's isAbortError reads the message of
    // errors others threw (fetch, axios, a caller's signal reason), which carry no other sign.
    if (typeof message === 'string' && (message.includes('AbortError') || /(?:operation|request|stream) was aborted/i.test(message))) {
      return true
    }
    current = read(current, 'cause')
  }
  return false
}

/**
 * What an aborted caller is rejected with: the signal's `reason` itself when it is an
 * AbortError (`controller.abort()`, `AbortSignal.timeout()`), as LibreChat's
 * `detachOnAbort` rejects; any other reason (`controller.abort(new Error('stop'))`)
 * becomes an AbortError whose `cause` is that reason, as LibreChat's `awaitOboOperation`
 * makes it, so the caller can always tell a cancellation from a failure.
 */
function abortError(signal) {
  const reason = signal.reason
  if (isAbortError(reason)) return reason
  const error = new Error('The operation was aborted.', { cause: reason })
  error.name = 'AbortError'
  return error
}

/** An optional `signal` argument: undefined, or something that behaves as an AbortSignal. */
function checkSignal(signal, name) {
  if (signal === undefined || signal === null) return undefined
  const isSignal = typeof signal === 'object' && typeof signal.aborted === 'boolean' && typeof signal.addEventListener === 'function'
  if (!isSignal) throw typeError(name, 'an AbortSignal', signal)
  return signal
}

/**
 * `promise`, unless `signal` aborts first: then the caller is rejected with its AbortError
 * and `promise` runs on for whoever else waits on it (its outcome is then ignored here,
 * never an unhandled rejection). The listener is removed as soon as either settles, so a
 * long-lived signal collects none.
 */
function detach(promise, signal) {
  if (signal === undefined) return promise
  if (signal.aborted) {
    promise.catch(() => {})
    return Promise.reject(abortError(signal))
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(abortError(signal))
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort)
        resolve(value)
      },
      (error) => {
        signal.removeEventListener('abort', onAbort)
        reject(error)
      },
    )
  })
}

module.exports = { isAbortError, abortError, checkSignal, detach }
