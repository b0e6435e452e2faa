'use strict'

// The front: what the wrapper keeps beside the native cache so that a hit stays cheap.
// Per upstream token string it keeps the token's SHA-256 (V8 keeps a string's hash in the
// string, so finding the same string again is a pointer comparison, cheaper than a UTF-8
// copy plus SHA-256 in Rust) and the JS strings of the OBO tokens last served for it, each
// with its native id: a hit passes that id, and the native side answers numbers, adding
// the strings only when its cached token is another one.
//
// Where each rule lives (DESIGN: JS checks types, Rust owns the rules; a hit stays on the
// calling thread). Nothing here decides: what is served, single-flight and what
// `invalidate` drops are the native side's. Its flight table (src/cache/flights.rs, keyed
// by the full cache key, so calls that normalize to one key share one flight) is the one
// single-flight rule of a process, the Redis lease (src/cache/shared/lease.rs) the same
// rule across processes, and `Invalidation` (src/ground/identity.rs) the one prefix rule:
// `forget` drops exactly the ids the native side says it dropped. A front entry the native
// cache no longer holds is never served: the lookup names its id and gets the native answer.
//
// The front still coalesces calls with identical arguments before they cross (`join`):
// not a second rule (equal arguments mean one native key, so the native table would join
// them anyway), but the boundary's cost. Each crossing is a native call, a tokio task and
// a settle hop back to this thread, per caller; a join is one promise. Measured with the
// same release binary, without and with the join (`node benchmark/bench.mjs --only
// fanout`, three runs each, alternated): 1,000 concurrent calls on one cold key took
// 66-74 ms without and 54-56 ms with it against an endpoint answering in 50 ms (the JS
// reference: 62-67 ms), so each crossing a joiner spares costs 12-20 µs. The join stays.
// `stats()` counts a call the front joined as what it is, a miss coalesced into a
// flight: the native counts plus `joined`, the one count this side keeps.

const { assertionDigest } = require('./native.js')
const { Memo } = require('./memo.js')
const { SEPARATOR } = require('./identity.js')

/**
 * Upstream tokens remembered at most, whatever `maxCacheEntries` says. Each entry holds
 * an upstream token string and the OBO token strings served for it (1-2 KB each), so
 * 10,000 entries are about 30 MB at worst; 100,000 (the default `maxCacheEntries`)
 * would be ten times that for a saving of one string copy per hit. A forgotten entry
 * costs one SHA-256 and one string copy on the next hit, never a wrong answer.
 */
const MEMO_BOUND = 10_000
const DEFAULT_MAX_CACHE_ENTRIES = 100_000

/**
 * Positions in the fixed layout of the native `cached` answer (`Hit` in
 * src/binding/service.rs): always four elements; `strings` is null when the cached
 * token is the one the front named by id (and its refresh is not due), else the fixed
 * `STRINGS` layout.
 */
const HIT = Object.freeze({ id: 0, expiresIn: 1, expiresAt: 2, strings: 3 })
const STRINGS = Object.freeze({ accessToken: 0, issuedTokenType: 1, refreshDue: 2 })

/** The slot of a call's token in its upstream entry: the scopes, and the RFC 8693 target if any. */
function slotOf(scopes, call) {
  if (call === undefined || (call.audience === undefined && call.resource === undefined)) return scopes
  return [scopes, call.audience ?? '', call.resource ?? ''].join(SEPARATOR)
}

/**
 * LibreChat's token response, made of a token's strings (`access_token`, and
 * `issued_token_type` when the IdP sent one) and its numbers: the one place its shape is
 * written, for a hit here and for a settled exchange (the native side hands over the fields).
 */
function tokenResponse(token, expiresIn, expiresAt, scope) {
  const response = { access_token: token.access_token, token_type: 'Bearer', expires_in: expiresIn, expires_at: expiresAt, scope }
  if (token.issued_token_type != null) response.issued_token_type = token.issued_token_type
  return response
}

class Front {
  #native
  /** Starts a native refresh-ahead: the service's, which first tells the native side whether the events are watched. */
  #startRefresh
  /** Upstream token string → `{ digest, tokens: Map<slot, { id, access_token, issued_token_type }> }` (the type null or undefined when none). */
  #entries
  /** Exchanges in flight by their exact arguments: joiners share one promise. */
  #flights = new Map()
  /** Calls that joined a flight here, without reaching the native side. */
  joined = 0

  constructor(native, maxCacheEntries = DEFAULT_MAX_CACHE_ENTRIES, startRefresh) {
    this.#native = native
    this.#startRefresh = startRefresh
    this.#entries = new Memo(Math.max(1, Math.min(maxCacheEntries, MEMO_BOUND)))
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
   * point (`refreshDue` in the strings) also hands this call's assertion to the native side for one
   * background refresh-ahead; the caller is answered at once either way.
   */
  hit(identity, accessToken, scopes, call) {
    const entry = this.#entry(accessToken)
    const slot = slotOf(scopes, call)
    let token = entry.tokens.get(slot)
    const found = this.#native.cached(identity, entry.digest, scopes, token?.id ?? 0, call?.audience, call?.resource)
    if (found === null) return undefined
    const strings = found[HIT.strings]
    if (strings !== null) {
      token = { id: found[HIT.id], access_token: strings[STRINGS.accessToken], issued_token_type: strings[STRINGS.issuedTokenType] }
      entry.tokens.set(slot, token)
      if (strings[STRINGS.refreshDue]) this.#refresh(identity, accessToken, scopes, call)
    }
    return tokenResponse(token, found[HIT.expiresIn], found[HIT.expiresAt], scopes)
  }

  /** Starts the refresh a hit claimed; its outcome is the native side's (counted, logged, published), never the caller's. */
  #refresh(identity, accessToken, scopes, call) {
    try {
      this.#startRefresh(identity, accessToken, scopes, call)
    } catch {
      // Arguments the lookup just accepted; nothing a caller should see.
    }
  }

  /** Remembers the token an exchange settled to, for the next hits of the same call. */
  remember(accessToken, scopes, call, id, response) {
    const token = { id, access_token: response.access_token, issued_token_type: response.issued_token_type }
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
   * Forgets the tokens the native side dropped (`ids`, what `invalidate` returned); an
   * upstream token left with none is forgotten too. Runs at logout, so a scan is fine.
   */
  forget(ids) {
    const dropped = new Set(ids)
    for (const [accessToken, entry] of this.#entries.entries()) {
      let removed = false
      for (const [slot, token] of entry.tokens) {
        if (dropped.has(token.id)) {
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

  /** Upstream tokens remembered now. */
  get size() {
    return this.#entries.size
  }
}

module.exports = { Front, tokenResponse }
