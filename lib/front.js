'use strict'

// The front: what the wrapper keeps beside the native cache so that a hit stays cheap,
// and the joins of a miss. Per upstream token string it keeps the token's SHA-256 (V8
// keeps a string's hash in the string, so finding the same string again is a pointer
// comparison, cheaper than a UTF-8 copy plus SHA-256 in Rust) and the JS strings of the
// OBO tokens last served for it, each with its native id: a hit passes that id, and the
// native side answers three numbers, adding the strings only when its cached token is
// another one. All of it only saves work: the native cache decides what is served.

const { assertionDigest } = require('./native.js')
const { Memo } = require('./memo.js')

/**
 * Upstream tokens remembered at most, whatever `maxCacheEntries` says. Each entry holds
 * an upstream token string and the OBO token strings served for it (1-2 KB each), so
 * 10,000 entries are about 30 MB at worst; 100,000 (the default `maxCacheEntries`)
 * would be ten times that for a saving of one string copy per hit. A forgotten entry
 * costs one SHA-256 and one string copy on the next hit, never a wrong answer.
 */
const MEMO_BOUND = 10_000
const DEFAULT_MAX_CACHE_ENTRIES = 100_000
const SEPARATOR = '\u001f'

/** The slot of a call's token in its upstream entry: the scopes, and the RFC 8693 target if any. */
function slotOf(scopes, call) {
  if (call === undefined || (call.audience === undefined && call.resource === undefined)) return scopes
  return [scopes, call.audience ?? '', call.resource ?? ''].join(SEPARATOR)
}

class Front {
  #native
  /** Upstream token string → `{ digest, tokens: Map<slot, { id, identity, access_token, issued_token_type? }> }`. */
  #entries
  /** Exchanges in flight by their exact arguments: joiners share one promise. */
  #flights = new Map()
  /** Calls that joined a flight here, without reaching the native side. */
  joined = 0

  /** `memoLimit` (tests only) overrides the size taken from `maxCacheEntries`. */
  constructor(native, maxCacheEntries = DEFAULT_MAX_CACHE_ENTRIES, memoLimit) {
    this.#native = native
    this.#entries = new Memo(memoLimit ?? Math.max(1, Math.min(maxCacheEntries, MEMO_BOUND)))
  }

  /** The remembered entry of an upstream token, made on first sight. */
  #entry(accessToken) {
    return this.#entries.get(accessToken) ?? this.#entries.set(accessToken, { digest: assertionDigest(accessToken), tokens: new Map() })
  }

  /** The SHA-256 hex of an upstream token, remembered. */
  digest(accessToken) {
    return this.#entry(accessToken).digest
  }

  /**
   * The cached response for this call, or undefined: one native lookup, which counts one
   * hit, and usually only numbers cross the boundary. A hit past its token's refresh
   * point (a sixth element) also hands this call's assertion to the native side for one
   * background refresh-ahead; the caller is answered at once either way.
   */
  hit(identity, accessToken, scopes, call) {
    const entry = this.#entry(accessToken)
    const slot = slotOf(scopes, call)
    let token = entry.tokens.get(slot)
    const found = this.#native.cached(identity, entry.digest, scopes, token?.id ?? 0, call?.audience, call?.resource)
    if (found === null) return undefined
    if (found.length > 3) {
      token =
        found[4] == null
          ? { id: found[0], identity, access_token: found[3] }
          : { id: found[0], identity, access_token: found[3], issued_token_type: found[4] }
      entry.tokens.set(slot, token)
      if (found.length > 5) this.#refresh(identity, accessToken, scopes, call)
    }
    const response = { access_token: token.access_token, token_type: 'Bearer', expires_in: found[1], expires_at: found[2], scope: scopes }
    if (token.issued_token_type !== undefined) response.issued_token_type = token.issued_token_type
    return response
  }

  /** Starts the refresh a hit claimed; its outcome is the native side's (counted, logged, published), never the caller's. */
  #refresh(identity, accessToken, scopes, call) {
    try {
      this.#native.refresh(identity, accessToken, scopes, call)
    } catch {
      // Arguments the lookup just accepted; nothing a caller should see.
    }
  }

  /** Remembers the token an exchange settled to, for the next hits of the same call. */
  remember(identity, accessToken, scopes, call, id, response) {
    const token = { id, identity, access_token: response.access_token }
    if (response.issued_token_type !== undefined) token.issued_token_type = response.issued_token_type
    this.#entry(accessToken).tokens.set(slotOf(scopes, call), token)
  }

  /**
   * The flight for `key`, or the one `start(forget)` makes: `start` must call `forget`
   * as the exchange settles, before anyone sees the outcome, so a later call finds the
   * cached token or starts afresh, never a finished failure.
   */
  join(key, start) {
    let flight = this.#flights.get(key)
    if (flight !== undefined) {
      this.joined += 1
      return flight
    }
    flight = start(() => this.#flights.delete(key))
    this.#flights.set(key, flight)
    return flight
  }

  /**
   * Forgets the tokens the native side dropped (`ids`) and any token this identity was
   * served (for `scopes` only, when given); an upstream token left with none is
   * forgotten too. Runs at logout, so a scan is fine.
   */
  forget(ids, identity, scopes) {
    const dropped = new Set(ids)
    for (const [accessToken, entry] of this.#entries.entries()) {
      let removed = false
      for (const [slot, token] of entry.tokens) {
        const same = token.identity === identity && (scopes === undefined || slot === scopes || slot.startsWith(scopes + SEPARATOR))
        if (dropped.has(token.id) || same) {
          entry.tokens.delete(slot)
          removed = true
        }
      }
      if (removed && entry.tokens.size === 0) this.#entries.delete(accessToken)
    }
  }

  /** Forgets every upstream token and every token string. */
  clear() {
    this.#entries.clear()
  }

  /** Exchanges in flight here now (tests: an aborted caller leaves none behind). */
  get inFlight() {
    return this.#flights.size
  }

  /** Upstream tokens remembered now (tests). */
  get size() {
    return this.#entries.size
  }
}

module.exports = { Front }
