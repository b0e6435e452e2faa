'use strict'

// The native exchanges a service has in flight. The native side settles each one through
// the single `settle(callId, settled)` function the service gave it at construction (one
// threadsafe function per service instead of one per call, the cost that dominated a miss
// served by the shared tier). That function is weak, so this module keeps Node alive while
// any call is pending: one shared, otherwise unreferenced interval timer is referenced
// while the count of pending calls, over every service, is above zero.

/** Far enough that the keep-alive timer practically never fires (the largest delay Node takes). */
const KEEP_ALIVE_MS = 2 ** 31 - 1
let pendingEverywhere = 0
let keepAlive

function hold() {
  pendingEverywhere += 1
  if (pendingEverywhere > 1) return
  keepAlive ??= setInterval(() => {}, KEEP_ALIVE_MS)
  keepAlive.ref()
}

function release() {
  pendingEverywhere -= 1
  if (pendingEverywhere === 0) keepAlive.unref()
}

class Calls {
  /** callId → the resolve of its promise. */
  #waiting = new Map()
  #next = 0

  /** Given to the native service: settles one call; an unknown id is ignored. */
  settle = (callId, settled) => {
    const resolve = this.#waiting.get(callId)
    if (resolve === undefined) return
    this.#waiting.delete(callId)
    release()
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
    hold()
    return new Promise((resolve) => this.#waiting.set(callId, resolve))
  }
}

module.exports = { Calls }
