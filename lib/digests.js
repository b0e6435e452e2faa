'use strict'

// The SHA-256 of each upstream access token the service has seen recently, keyed by
// the token string itself. A cache hit then hands the native side 64 hex digits instead
// of copying and hashing a 1-2 KB token on every tool call: V8 keeps a string's hash in
// the string, so looking up the same string object again is a pointer comparison, and
// an equal copy costs one hash of it, still cheaper than the UTF-8 copy plus SHA-256.
// Keys compare by exact string equality, so a digest is only ever reused for the very
// token it was computed from.

/** Tokens remembered at most; the oldest goes first. A forgotten one is hashed again. */
const DEFAULT_LIMIT = 1024

class AssertionDigests {
  #digest
  #limit
  #byToken = new Map()

  /** @param {(token: string) => string} digest the native SHA-256 hex of a token */
  constructor(digest, limit = DEFAULT_LIMIT) {
    this.#digest = digest
    this.#limit = limit
  }

  /** The digest of `token`, computed at most once while it stays remembered. */
  of(token) {
    let digest = this.#byToken.get(token)
    if (digest === undefined) {
      digest = this.#digest(token)
      if (this.#byToken.size >= this.#limit) this.#byToken.delete(this.#byToken.keys().next().value)
      this.#byToken.set(token, digest)
    }
    return digest
  }

  /** Forgets every token (the service's `clear`), so none is kept in memory by this. */
  clear() {
    this.#byToken.clear()
  }
}

module.exports = { AssertionDigests }
