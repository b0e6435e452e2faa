'use strict'

// createOboFetch: a fetch for MCP client transports that carries the user's OBO token.

const { OboTokenResolutionError, typeError } = require('./errors.js')
const { resolveOboToken, checkResolveArguments } = require('./resolve.js')

/** LibreChat's hint after an OBO failure (MCPConnectionFactory / MCPManager). */
function resolutionHint(err) {
  if (err.retryable) return 'Please retry.'
  if (err.reason === 'exchange_failed') return 'Re-authenticate the user or verify the configured OBO scopes and retry.'
  return 'Re-authenticate the user and retry.'
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

/**
 * A `fetch` for MCP client transports (`new StreamableHTTPClientTransport(url, { fetch })`)
 * that puts the user's OBO token on every request: resolved through `resolveOboToken` (a
 * cache hit in steady state), set as `Authorization` (replacing any configured one). When
 * the server answers 401 or 403, the token is exchanged afresh once (`forceRefresh`) and that
 * request is sent once more; a second rejection is returned as it is. A failed exchange
 * throws the `OboTokenResolutionError`, with LibreChat's `hint` for the user.
 */
function createOboFetch({ user, oboConfig, resolver, upstreamTokenProvider, identityContext, fetch: baseFetch = globalThis.fetch } = {}) {
  if (typeof baseFetch !== 'function') throw typeError('fetch', 'a function', baseFetch)
  checkResolveArguments(oboConfig, resolver, upstreamTokenProvider)
  const bearer = async (forceRefresh) => {
    try {
      const tokens = await resolveOboToken(user, oboConfig, resolver, upstreamTokenProvider, identityContext, forceRefresh)
      return tokens.access_token
    } catch (err) {
      if (err instanceof OboTokenResolutionError) err.hint = resolutionHint(err)
      throw err
    }
  }
  return async function oboFetch(input, init = {}) {
    const send = async (token) => {
      const headers = new Headers(init.headers ?? (input instanceof Request ? input.headers : undefined))
      headers.set('authorization', `Bearer ${token}`)
      return baseFetch(input, { ...init, headers })
    }
    const response = await send(await bearer(false))
    if ((response.status !== 401 && response.status !== 403) || !isReplayable(init.body) || input instanceof Request) {
      return response
    }
    await response.body?.cancel()
    return send(await bearer(true))
  }
}

module.exports = { createOboFetch }
