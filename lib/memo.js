'use strict'

// A bounded map that forgets its oldest entry first. The front (front.js) keeps its
// upstream tokens in one, sized from the service's `maxCacheEntries`.

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

  delete(key) {
    return this.#entries.delete(key)
  }

  entries() {
    return this.#entries.entries()
  }

  get size() {
    return this.#entries.size
  }

  /** Forgets everything (the service's `clear`), so nothing is kept in memory by this. */
  clear() {
    this.#entries.clear()
  }
}

module.exports = { Memo }
