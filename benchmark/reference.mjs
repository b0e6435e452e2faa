// A JavaScript reference of LibreChat's newest exchangeOboToken (OboTokenService.js,
// "V3"): openid-client's genericGrantRequest, a node:crypto SHA-256 cache key over the
// identity tuple, an in-memory Keyv store as LibreChat uses without Redis, the in-flight
// map, the one-retry-after-300-ms rule, expires_at stamping and the usable-expiry check.
// Written from LibreChat's behaviour for the benchmark; not shipped.

import crypto from 'node:crypto'
import * as client from 'openid-client'
import Keyv from 'keyv'

const RETRYABLE_STATUS_CODES = new Set([429, 500, 502, 503, 504])
const RETRYABLE_ERROR_CODES = new Set(['ETIMEDOUT', 'ECONNRESET', 'EAI_AGAIN', 'ENOTFOUND'])
const RETRY_DELAY_MS = 300
const BUFFER_MS = 30_000 // LibreChat's; the churn scenario passes a shorter one with its shorter tokens
const SEP = '\x1f'

function isRetryable(error) {
  const status = error?.status ?? error?.statusCode ?? error?.response?.status
  if (status != null && RETRYABLE_STATUS_CODES.has(status)) return true
  const code = typeof error?.code === 'string' ? error.code.toUpperCase() : undefined
  if (code != null && RETRYABLE_ERROR_CODES.has(code)) return true
  const message = String(error?.message ?? '').toLowerCase()
  return [
    'timed out',
    'timeout',
    'econnreset',
    'socket hang up',
    'temporarily unavailable',
    'too many requests',
    'service unavailable',
  ].some((w) => message.includes(w))
}

const normalize = (v) => {
  const n = v?.trim()
  return n ? n : undefined
}
const normalizeIssuer = (issuer) => {
  const n = issuer?.trim().replace(/\/+$/, '')
  if (!n) return undefined
  const suffix = '/.well-known/openid-configuration'
  return n.endsWith(suffix) ? n.slice(0, -suffix.length) || undefined : n
}

function buildKey(user, accessToken, scopes, identityContext) {
  const subject = normalize(identityContext?.openidSubject) ?? normalize(user?.openidId)
  if (!subject) return null
  const tenant = normalize(identityContext?.tenantId) ?? normalize(user?.tenantId) ?? 'no-tenant'
  const issuer = normalizeIssuer(identityContext?.openidIssuer) ?? normalizeIssuer(user?.openidIssuer) ?? 'no-issuer'
  const hash = crypto.createHash('sha256').update(accessToken).digest('hex')
  return [[tenant, issuer, subject].join(SEP), scopes, hash].join(SEP)
}

function normalizeExpiresIn(value) {
  const parsed = typeof value === 'string' ? Number(value.trim()) : value
  if (typeof parsed !== 'number' || !Number.isFinite(parsed)) return 3600
  return Math.max(1, Math.floor(parsed))
}

/**
 * `store`: a Keyv store (LibreChat's `@keyv/redis` with USE_REDIS); in memory when absent.
 * `bufferMs`: LibreChat's 30 s unless a scenario with shorter tokens passes its own.
 */
export async function createReferenceService({ issuer, clientId, clientSecret, store, bufferMs = BUFFER_MS }) {
  const config = await client.discovery(new URL(issuer), clientId, { client_secret: clientSecret }, undefined, {
    execute: [client.allowInsecureRequests],
  })
  // Keyv treats `store: undefined` as a store (and keeps nothing): pass it only when given.
  const tokensCache = new Keyv({ ...(store && { store }), namespace: 'OPENID_EXCHANGED_TOKENS', ttl: 600_000 })
  const inFlight = new Map()

  async function perform(accessToken, scopes, cacheKey) {
    const grant = () =>
      client.genericGrantRequest(config, 'urn:ietf:params:oauth:grant-type:jwt-bearer', {
        scope: scopes,
        assertion: accessToken,
        requested_token_use: 'on_behalf_of',
      })
    let response
    try {
      response = await grant()
    } catch (error) {
      if (!isRetryable(error)) throw Object.assign(error, { retryable: false, oboFailureReason: 'exchange_failed' })
      await new Promise((r) => setTimeout(r, RETRY_DELAY_MS))
      try {
        response = await grant()
      } catch (retryError) {
        throw Object.assign(retryError, { retryable: isRetryable(retryError), oboFailureReason: 'exchange_failed' })
      }
    }
    if (!response?.access_token)
      throw Object.assign(new Error('The identity provider returned no access token for the OBO exchange'), {
        retryable: false,
        oboFailureReason: 'empty_exchange_response',
      })
    const expiresIn = normalizeExpiresIn(response.expires_in)
    const now = Date.now()
    const expiresAt = now + expiresIn * 1000
    const token = { access_token: response.access_token, token_type: 'Bearer', expires_in: expiresIn, expires_at: expiresAt, scope: scopes }
    await tokensCache.set(cacheKey, token, Math.max(1000, expiresAt - now - bufferMs))
    return token
  }

  async function exchangeOboToken(user, accessToken, scopes, fromCache = true, identityContext) {
    if (!accessToken) throw new Error('Access token is required for OBO exchange')
    if (!scopes) throw new Error('Scopes are required for OBO exchange')
    const cacheKey = buildKey(user, accessToken, scopes, identityContext)
    if (!cacheKey) throw new Error('User must be authenticated via OpenID to perform OBO token exchange')
    if (fromCache) {
      const cached = await tokensCache.get(cacheKey)
      if (cached && Number.isFinite(cached.expires_at) && cached.expires_at > Date.now() + bufferMs) return cached
      const pending = inFlight.get(cacheKey)
      if (pending) return pending
    }
    const promise = perform(accessToken, scopes, cacheKey)
    if (fromCache) {
      inFlight.set(cacheKey, promise)
      promise
        .finally(() => {
          if (inFlight.get(cacheKey) === promise) inFlight.delete(cacheKey)
        })
        .catch(() => {})
    }
    return promise
  }

  return { exchangeOboToken }
}
