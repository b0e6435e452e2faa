'use strict'

// resolveOboToken: LibreChat's packages/api function. It calls the session provider and
// the resolver (either may be a JS function); the native binding decides what their
// results mean (validity, expiry stamping, failure reasons and messages).

const {
  checkUpstreamTokens,
  finishResolution,
  finishScheduledGrant,
  classifyResolutionFailure,
  missingUpstreamProvider,
} = require('./native.js')
const { OboTokenResolutionError, argumentError, typeError } = require('./errors.js')
const { OboTokenService, loggerOf, subjectOf } = require('./service.js')
const { isAbortError, abortError, checkSignal, detach } = require('./abort.js')

/** The `obo` block's `profile`s: LibreChat's On-Behalf-Of (the default), or ID-JAG. */
const PROFILES = ['obo', 'id-jag']

/** Reads what LibreChat's classifier reads off a thrown value, without ever throwing. */
function errorFacts(err) {
  const facts = {}
  try {
    if (err === null || typeof err !== 'object') {
      if (err !== undefined && err !== null) facts.message = String(err)
      return facts
    }
    if (typeof err.retryable === 'boolean') facts.retryable = err.retryable
    const status = err.status ?? err.statusCode ?? err.response?.status
    if (typeof status === 'number') facts.status = status
    const code = typeof err.code === 'string' ? err.code : err.cause?.code
    if (typeof code === 'string') facts.code = code
    if (err.message !== undefined) facts.message = String(err.message)
    if (typeof err.oboFailureReason === 'string') facts.oboFailureReason = err.oboFailureReason
  } catch {
    // A hostile getter: classify with what was read so far.
  }
  return facts
}

function resolutionError(failure, cause) {
  return new OboTokenResolutionError(failure.reason, failure.userMessage, failure.retryable, cause)
}

/**
 * `access_token` and `expires_at` of a token set or a resolver answer, or null if it is not
 * an object. `numericStrings` reads an `expires_at` such as "1700000000" as a number, as
 * LibreChat's comparison `now >= expiresAt - 30` does for the upstream token; a resolver's
 * `expires_at` must be a number (LibreChat's `Number.isFinite`). `field` names the token to
 * read as `access_token`: an ID-JAG service exchanges the `id_token` (or `refresh_token`),
 * whose expiry is not the set's `expires_at` (the exchange checks an ID token's own `exp`).
 */
function tokenFields(tokenSet, { numericStrings = false, field = 'access_token' } = {}) {
  try {
    if (tokenSet === null || typeof tokenSet !== 'object') return null
    const tokens = {}
    if (typeof tokenSet[field] === 'string') tokens.access_token = tokenSet[field]
    if (field !== 'access_token') return tokens
    const expiresAt = tokenSet.expires_at
    if (typeof expiresAt === 'number') tokens.expires_at = expiresAt
    else if (numericStrings && typeof expiresAt === 'string' && expiresAt.trim() !== '' && Number.isFinite(Number(expiresAt))) {
      tokens.expires_at = Number(expiresAt)
    }
    return tokens
  } catch {
    return null
  }
}

const upstreamTokens = (tokenSet, field) => tokenFields(tokenSet, { numericStrings: true, field })

/** LibreChat's `isFederatedTokens`: an object that has `access_token`, `id_token` or `expires_at` (`in`, so a getter counts). */
function isTokenSet(value) {
  return Boolean(value) && typeof value === 'object' && ('access_token' in value || 'id_token' in value || 'expires_at' in value)
}

/**
 * LibreChat's `extractOpenIDTokenInfo` source: the user's `federatedTokens` when it is a token
 * set, else `openidTokens` when that is one, else nothing (so `federatedTokens: {}` does not hide
 * a valid `openidTokens`). A snapshot without an access token is null: LibreChat's
 * `isOpenIDTokenValid` fails it, and `resolveOboToken` answers `missing_upstream_token`.
 */
function snapshotTokens(user, field) {
  try {
    if (!user || (user.provider !== 'openid' && !user.openidId)) return null
    const source = isTokenSet(user.federatedTokens) ? user.federatedTokens : isTokenSet(user.openidTokens) ? user.openidTokens : null
    const tokens = upstreamTokens(source, field)
    return tokens?.access_token ? tokens : null
  } catch {
    return null
  }
}

/** The RFC 8693 target of an `obo` block (`audience`, `resource`, and ID-JAG's `resourceMetadata`), or undefined. */
function targetOf(oboConfig) {
  const { audience, resource, resourceMetadata } = oboConfig
  return audience == null && resource == null ? undefined : { audience, resource, resourceMetadata }
}

/**
 * `oboConfig.profile` must match the resolver: 'id-jag' needs an OboTokenService with
 * grantType 'id_jag' (it sends the user's ID token, not the access token), and such a
 * service serves only 'id-jag' blocks.
 */
function checkProfile(profile, resolver) {
  if (profile !== undefined && profile !== null && !PROFILES.includes(profile)) {
    const got = typeof profile === 'string' ? `'${profile}'` : typeof profile
    throw argumentError('oboConfig.profile', `oboConfig.profile must be 'obo' or 'id-jag', got ${got}`)
  }
  const idJagBlock = profile === 'id-jag'
  const idJagService = resolver instanceof OboTokenService && subjectOf(resolver) !== 'access_token'
  if (idJagBlock && !idJagService) {
    throw argumentError('resolver', "oboConfig.profile 'id-jag' needs a resolver that is an OboTokenService with grantType 'id_jag'")
  }
  if (idJagService && !idJagBlock) {
    throw argumentError('oboConfig.profile', "resolver has grantType 'id_jag': its oboConfig must say profile: 'id-jag'")
  }
}

/** Type checks shared with createOboFetch, which makes them when it is created. */
function checkResolveArguments(oboConfig, resolver, upstreamTokenProvider) {
  if (oboConfig === null || typeof oboConfig !== 'object') throw typeError('oboConfig', 'an object', oboConfig)
  if (typeof oboConfig.scopes !== 'string') throw typeError('oboConfig.scopes', 'a string', oboConfig.scopes)
  for (const name of ['audience', 'resource', 'resourceMetadata']) {
    const value = oboConfig[name]
    if (value !== undefined && value !== null && typeof value !== 'string') throw typeError(`oboConfig.${name}`, 'a string', value)
  }
  if (!(resolver instanceof OboTokenService) && typeof resolver !== 'function') {
    throw typeError('resolver', 'an OboTokenService or a function', resolver)
  }
  checkProfile(oboConfig.profile, resolver)
  // None at all is LibreChat's `missing_upstream_provider`, a rejection of the call.
  if (upstreamTokenProvider !== undefined && upstreamTokenProvider !== null && typeof upstreamTokenProvider !== 'function') {
    throw typeError('upstreamTokenProvider', 'a function', upstreamTokenProvider)
  }
}

/** `options` of resolveOboToken: `{ signal }`; the checked signal, or undefined. */
function checkResolveOptions(options) {
  if (options === undefined || options === null) return undefined
  if (typeof options !== 'object') throw typeError('options', 'an object', options)
  return checkSignal(options.signal, 'options.signal')
}

/**
 * Calls the session provider as LibreChat's newest `resolveOboToken` does: with no
 * argument on a plain call (a provider written for the older contract, which takes none,
 * still works); `{ forceDownstreamRefresh: true }` when the downstream server rejected the
 * token (the upstream token is still good, so a browser session is not refreshed for it;
 * only a provider that renews a downstream grant acts on it); and the caller's `signal`.
 */
function callProvider(provider, forceRefresh, signal) {
  let options = forceRefresh ? { forceDownstreamRefresh: true } : undefined
  if (signal !== undefined) options = { ...options, signal }
  return options === undefined ? provider() : provider(options)
}

/** The exchange: the service's `exchangeOboToken` (which takes the signal), or LibreChat's resolver function (which cannot). */
function exchange(resolver, isService, user, assertion, oboConfig, forceRefresh, identityContext, signal) {
  if (!isService) return resolver(user, assertion, oboConfig.scopes, !forceRefresh, identityContext)
  const target = targetOf(oboConfig)
  const call = signal === undefined ? target : { ...target, signal }
  return resolver.exchangeOboToken(user, assertion, oboConfig.scopes, !forceRefresh, identityContext, call)
}

/**
 * LibreChat's `resolveOboToken` (packages/api): the user's upstream token from the live
 * session (`upstreamTokenProvider`), else the user's snapshot; checked for expiry; exchanged
 * through `resolver` (an `OboTokenService`, or LibreChat's `OboTokenResolver` function);
 * stamped with LibreChat's expiry rules. Fails with `OboTokenResolutionError`, except:
 * - a cancellation (an AbortError from the provider or the resolver) and an
 *   `OboTokenResolutionError` the provider throws pass through as the same object;
 * - `options.signal`: aborted before the call, the call rejects at once with its AbortError;
 *   aborted while it waits, the caller is detached (the exchange goes on for the others).
 * A provider answer tagged `scheduledObo: true` is already the downstream token: it is
 * returned as it is (stamped), never exchanged.
 */
async function resolveOboToken(user, oboConfig, resolver, upstreamTokenProvider, identityContext, forceRefresh = false, options) {
  checkResolveArguments(oboConfig, resolver, upstreamTokenProvider)
  if (typeof forceRefresh !== 'boolean') throw typeError('forceRefresh', 'a boolean', forceRefresh)
  const signal = checkResolveOptions(options)
  if (signal?.aborted) throw abortError(signal)
  if (typeof upstreamTokenProvider !== 'function') throw resolutionError(missingUpstreamProvider())
  const isService = resolver instanceof OboTokenService
  const log = (isService && loggerOf(resolver)) || (() => {})
  const field = isService ? subjectOf(resolver) : 'access_token'

  let live
  try {
    live = await detach(Promise.resolve(callProvider(upstreamTokenProvider, forceRefresh, signal)), signal)
  } catch (err) {
    if (isAbortError(err) || err instanceof OboTokenResolutionError) throw err
    const failure = classifyResolutionFailure('session', errorFacts(err))
    log('error', `[OBO] Upstream session refresh failed (${failure.retryable ? 'transient' : 'permanent'})`)
    throw resolutionError(failure, err)
  }
  if (isScheduledGrant(live)) return handOn(live)
  const tokens = live === null || live === undefined ? snapshotTokens(user, field) : upstreamTokens(live, field)
  const unusable = checkUpstreamTokens(tokens ?? undefined, field)
  if (unusable) {
    log('warn', `[OBO] ${unusable.userMessage} (hadLiveSession: ${live != null})`)
    throw resolutionError(unusable)
  }

  let response
  try {
    response = await detach(
      Promise.resolve(exchange(resolver, isService, user, tokens.access_token, oboConfig, forceRefresh, identityContext, signal)),
      signal,
    )
  } catch (err) {
    if (isAbortError(err) || err instanceof OboTokenResolutionError) throw err
    const failure = classifyResolutionFailure('exchange', errorFacts(err))
    log('error', `[OBO] Failed to exchange token: ${failure.reason}`)
    throw resolutionError(failure, err)
  }
  const answer = tokenFields(response) ?? {}
  const expiresIn = response?.expires_in
  const stamp = finishResolution({
    hasAccessToken: Boolean(answer.access_token),
    expiresIn: typeof expiresIn === 'number' || typeof expiresIn === 'string' ? expiresIn : undefined,
    expiresAt: answer.expires_at,
  })
  if (stamp.failure) {
    log('warn', `[OBO] ${stamp.failure.userMessage}`)
    throw resolutionError(stamp.failure)
  }
  return resolvedToken(answer.access_token, stamp)
}

/** What `resolveOboToken` resolves to (LibreChat's shape), from a token and its stamp (`expires_at` in epoch ms). */
function resolvedToken(accessToken, stamp) {
  return { access_token: accessToken, token_type: 'Bearer', obtained_at: stamp.obtainedAt, expires_at: stamp.expiresAt }
}

/** LibreChat's test for a scheduled-chat grant's answer: tagged `scheduledObo: true`, nothing looser. */
function isScheduledGrant(live) {
  try {
    return live !== null && typeof live === 'object' && live.scheduledObo === true
  } catch {
    return false
  }
}

/** A scheduled grant's downstream token, stamped (its `expires_at` seconds become ms, with the skew), or why it cannot be used. */
function handOn(grant) {
  const tokens = upstreamTokens(grant, 'access_token') ?? {}
  const stamp = finishScheduledGrant(tokens)
  if (stamp.failure) throw resolutionError(stamp.failure)
  return resolvedToken(tokens.access_token, stamp)
}

module.exports = { resolveOboToken, checkResolveArguments }
