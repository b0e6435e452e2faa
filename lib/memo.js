'use strict'

// A bounded map that forgets its oldest entry first. The service keeps two: the SHA-256
// of each upstream token string it has seen (V8 keeps a string's hash in the string, so
// looking up the same string again is a pointer comparison, and an equal copy costs one
// hash, still cheaper than a UTF-8 copy plus SHA-256 in Rust), and the JS string of each
// exchanged token by its native id (a cache hit then crosses the boundary as three
// numbers instead of a new 1-2 KB string, which also spares the garbage collector).
// Both only save work: the native cache decides what is served.

/** Entries kept at most by default; a forgotten one is computed or fetched again. */
const DEFAULT_LIMIT = 1024

class Memo {
  #limit
  #entries = new Map()

  constructor(limit = DEFAULT_LIMIT) {
    this.#limit = limit
  }

  get(key) {
    return this.#entries.get(key)
  }

  set(key, value) {
    if (this.#entries.size >= this.#limit && !this.#entries.has(key)) {
      this.#entries.delete(this.#entries.keys().next().value)
    }
    this.#entries.set(key, value)
    return value
  }

  /** Forgets everything (the service's `clear`), so nothing is kept in memory by this. */
  clear() {
    this.#entries.clear()
  }
}

module.exports = { Memo }
