'use strict'

// createOboFetch: a fetch for MCP client transports that carries the user's OBO token.

const { OboTokenResolutionError, typeError } = require('./errors.js')
const { resolveOboToken, checkResolveArguments } = require('./resolve.js')
const { bearerChallenge } = require('./native.js')
const { checkSignal } = require('./abort.js')

/** LibreChat's hint after an OBO failure (MCPConnectionFactory / MCPManager). */
function resolutionHint(err) {
  if (err.retryable) return 'Please retry.'
  if (err.reason === 'exchange_failed') return 'Re-authenticate the user or verify the configured OBO scopes and retry.'
  if (err.reason === 'missing_upstream_provider') return 'Configure a renewable upstream credential provider before retrying.'
  return 'Re-authenticate the user and retry.'
}

/**
 * The signal one request goes by: the fetch's own (`signal` of createOboFetch, the
 * connection's lifetime) and the request's (`init.signal`, or a Request's), whichever
 * aborts first; undefined when there is neither.
 */
function requestSignal(own, input, init) {
  const request = init.signal ?? (input instanceof Request ? input.signal : undefined)
  if (own === undefined) return request ?? undefined
  if (request === undefined || request === null || request === own) return own
  return AbortSignal.any([own, request])
}

/** Whether a request body can be sent a second time. */
function isReplayable(body) {
  return (
    body === undefined ||
    body === null ||
    typeof body === 'string' ||
    body instanceof URLSearchParams ||
    body instanceof ArrayBuffer ||
    ArrayBuffer.isView(body)
  )
}

/** A space-separated scope string, or a list of scopes, as a list (empty entries dropped). */
function scopeList(value) {
  return (Array.isArray(value) ? value : String(value).split(/\s+/)).filter(Boolean)
}

/** `oboConfig.stepUpScopes`: undefined, a space-separated string, or an array of strings. */
function checkStepUpScopes(value) {
  if (value === undefined || value === null) return []
  if (typeof value === 'string') return scopeList(value)
  if (Array.isArray(value) && value.every((scope) => typeof scope === 'string')) return scopeList(value)
  throw typeError('oboConfig.stepUpScopes', 'a string or an array of strings', value)
}

/**
 * The MCP server's resource identifier for an ID-JAG block without `resource`: the URL the
 * transport calls, without query or fragment, and without the slash of an empty path (the
 * MCP spec's canonical server URI), which its protected resource metadata must name exactly.
 */
function resourceOf(input) {
  const url = new URL(input instanceof Request ? input.url : String(input))
  return url.pathname === '/' ? url.origin : `${url.origin}${url.pathname}`
}

/**
 * The code of an ID-JAG discovery that found no protected resource metadata at the
 * well-known URLs (every one answered a client error). Only then may a request go out
 * without a bearer to learn the metadata URL from the 401: a document that was found and
 * refused (another resource, an unsafe URL), or a server that failed, ends the request.
 */
const NO_RESOURCE_METADATA = 'ERR_ID_JAG_NO_RESOURCE_METADATA'

/** The response's Bearer challenge (`bearerChallenge`), or null. */
function challengeOf(response) {
  const header = response.headers.get('www-authenticate')
  return header ? bearerChallenge(header) : null
}

/**
 * Marks a 403 that is returned as it is: `response.oboChallenge` holds the Bearer challenge
 * and `refusedScopes`, the challenged scopes the `obo` block does not allow.
 */
function annotate(response, challenge, refusedScopes) {
  Object.defineProperty(response, 'oboChallenge', { value: { ...challenge, refusedScopes }, enumerable: false })
  return response
}

/**
 * A `fetch` for MCP client transports (`new StreamableHTTPClientTransport(url, { fetch })`)
 * that puts the user's OBO token on every request: resolved through `resolveOboToken` (a
 * cache hit in steady state), set as `Authorization` (replacing any configured one).
 * - A 401, or a 403 that is no scope challenge: the token is exchanged afresh once
 *   (`forceRefresh`) and that request is sent once more.
 * - A 403 `insufficient_scope` (step-up): when every scope the server challenges for is
 *   in `oboConfig.scopes` or on the `obo` block's `stepUpScopes` allow list (deny by
 *   default), the request is sent once more with a token for the union of the configured
 *   and challenged scopes, and later requests keep that union; otherwise the 403 is returned
 *   as it is, with `response.oboChallenge` (`{ error, scopes, refusedScopes, … }`).
 * With `profile: 'id-jag'` and no `resource`, the resource is the URL of the first request.
 * When discovery finds no metadata at the well-known paths, the request is sent once without
 * a bearer, and a 401's `resource_metadata` (RFC 9728 §5.1) is where discovery reads next.
 * At most one retry per request; a second rejection is returned as it is. A failed exchange
 * throws the `OboTokenResolutionError`, with LibreChat's `hint` for the user.
 * `signal` (the connection's) and each request's own signal: once either aborts, the request
 * rejects with its AbortError; one waiting on a token is detached (the exchange goes on).
 */
function createOboFetch({
  user,
  oboConfig,
  resolver,
  upstreamTokenProvider,
  identityContext,
  fetch: baseFetch = globalThis.fetch,
  signal: own,
} = {}) {
  if (typeof baseFetch !== 'function') throw typeError('fetch', 'a function', baseFetch)
  checkResolveArguments(oboConfig, resolver, upstreamTokenProvider)
  const ownSignal = checkSignal(own, 'signal')
  const allowed = new Set(checkStepUpScopes(oboConfig.stepUpScopes))
  let scopes = oboConfig.scopes
  const ownResource = oboConfig.profile === 'id-jag' && oboConfig.resource == null
  /** With `ownResource`, fixed by the first request (the server URL; later ones may go elsewhere, as SSE posts do). */
  let resource = oboConfig.resource
  /** ID-JAG: the metadata URL a 401 named, once discovery needed it. */
  let resourceMetadata = oboConfig.resourceMetadata
  const bearer = async (signal, forceRefresh, scopeString = scopes) => {
    try {
      const config = { ...oboConfig, scopes: scopeString, resource, resourceMetadata }
      const tokens = await resolveOboToken(user, config, resolver, upstreamTokenProvider, identityContext, forceRefresh, { signal })
      return tokens.access_token
    } catch (err) {
      if (err instanceof OboTokenResolutionError) err.hint = resolutionHint(err)
      throw err
    }
  }
  /**
   * ID-JAG, when discovery found no metadata at the well-known URLs: the request without a
   * bearer, whose 401 names the metadata (RFC 9728 §5.1); then the exchange again. Otherwise
   * (any other failure, or a metadata URL already known) `err` stands.
   */
  const bearerFromChallenge = async (err, send, replayable, signal) => {
    if (oboConfig.profile !== 'id-jag' || resourceMetadata || err.cause?.code !== NO_RESOURCE_METADATA || !replayable) throw err
    const probe = await send(undefined)
    const challenge = probe.status === 401 ? challengeOf(probe) : null
    await probe.body?.cancel()
    if (!challenge?.resourceMetadata) throw err
    resourceMetadata = challenge.resourceMetadata
    return bearer(signal, false)
  }
  return async function oboFetch(input, init = {}) {
    const signal = requestSignal(ownSignal, input, init)
    if (ownResource) resource ??= resourceOf(input)
    const send = async (token) => {
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined))
      if (token === undefined) headers.delete('authorization')
      else headers.set('authorization', `Bearer ${token}`)
      return baseFetch(input, signal === undefined ? { ...init, headers } : { ...init, headers, signal })
    }
    const replayable = isReplayable(init.body) && !(input instanceof Request)
    const token = await bearer(signal, false).catch((err) => bearerFromChallenge(err, send, replayable, signal))
    const response = await send(token)
    if (response.status !== 401 && response.status !== 403) return response
    const challenge = response.status === 403 ? challengeOf(response) : null
    if (challenge?.error === 'insufficient_scope') {
      const have = scopeList(scopes)
      const missing = challenge.scopes.filter((scope) => !have.includes(scope))
      const refused = missing.filter((scope) => !allowed.has(scope))
      if (missing.length === 0 || refused.length > 0 || !replayable) return annotate(response, challenge, refused)
      await response.body?.cancel()
      const union = [...have, ...missing].join(' ')
      const stepped = await send(await bearer(signal, false, union))
      const again = stepped.status === 403 ? challengeOf(stepped) : null
      if (again?.error === 'insufficient_scope') return annotate(stepped, again, [])
      if (stepped.ok) scopes = union
      return stepped
    }
    if (!replayable) return response
    await response.body?.cancel()
    return send(await bearer(signal, true))
  }
}

module.exports = { createOboFetch, resourceOf }
