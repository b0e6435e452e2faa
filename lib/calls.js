'use strict'

// The native exchanges a service has in flight. The native side settles each one through
// the single `settle(callId, settled)` function the service gave it at construction (one
// threadsafe function per service instead of one per call, the cost that dominated a miss
// served by the shared tier). The native side also keeps Node alive while calls are
// pending, and only then (src/binding/settle.rs): nothing here holds the event loop.

class Calls {
  /** callId → the resolve of its promise. */
  #waiting = new Map()
  #next = 0

  /** Given to the native service: settles one call; an unknown id is ignored. */
  settle = (callId, settled) => {
    const resolve = this.#waiting.get(callId)
    if (resolve === undefined) return
    this.#waiting.delete(callId)
    resolve(settled)
  }

  /**
   * A promise of what call `begin(callId)` settles to. `begin` starts the native call and
   * may throw (a refused argument), in which case nothing is pending and the error is thrown.
   * The promise never rejects: a failed exchange settles to `{ error }`.
   */
  start(begin) {
    this.#next += 1
    const callId = this.#next
    begin(callId)
    return new Promise((resolve) => this.#waiting.set(callId, resolve))
  }
}

module.exports = { Calls }
