// Compiled by `npm run typecheck` (tsc --noEmit), never run: a TypeScript caller of the package
// (as LibreChat's packages/api is) that uses every export and option of index.d.ts, and lines
// marked @ts-expect-error that the declarations must refuse.

import {
  createOboFetch,
  type MCPOAuthTokens,
  type OboArgumentError,
  type OboErrorCode,
  type OboMetadataProblem,
  type OboBreakerMessage,
  type OboChannelMessage,
  type OboConfig,
  OboExchangeError,
  type OboExchangeErrorFields,
  type OboExchangeOptions,
  type OboChallenge,
  type OboFetchOptions,
  type OboFetchResolutionError,
  type OboIdentityContext,
  type OboLogger,
  type OboLogLevel,
  type OboServiceOptions,
  type OboSharedCacheOptions,
  type OboStats,
  type OboTokenResolutionReason,
  type OboTokenResolver,
  type OboTokenResponse,
  OboTokenResolutionError,
  OboTokenService,
  type OboUser,
  type OIDCTokens,
  type OboProviderTokens,
  resolveOboToken,
  type ResolveOboTokenOptions,
  type UpstreamTokenProvider,
  ScheduledOboGrant,
  scheduledOboGrantKey,
  type ScheduledOboFailureReason,
  type ScheduledOboGrantStore,
  type ScheduledOboTokens,
  type UpstreamTokenProviderOptions,
} from 'librechat-obo'

// Both logger shapes: LibreChat's logger object (any subset of levels) and a plain function.
const logger: OboLogger = { debug: (message) => console.debug(message), warn: (message: string) => console.warn(message) }
const logFunction: OboLogger = (level: OboLogLevel, message: string) => console.log(level, message)

// Every option.
const options: OboServiceOptions = {
  issuer: 'https://login.example.com/tenant/v2.0',
  clientId: 'librechat',
  clientSecret: 'placeholder',
  clientAuthMethod: 'private_key_jwt',
  clientAssertionKey: '-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----',
  clientAssertionKeyId: 'key-1',
  clientAssertionCertificate: '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----',
  clientAssertionAlg: 'PS256',
  clientAssertionAudience: 'issuer',
  grantType: 'auto',
  subjectTokenType: 'urn:ietf:params:oauth:token-type:access_token',
  requestedTokenType: 'urn:ietf:params:oauth:token-type:jwt',
  validateAssertion: { audiences: ['api://librechat'], issuers: ['https://login.example.com/tenant/v2.0'], leewaySeconds: 60 },
  tokenEndpoint: 'https://login.example.com/tenant/oauth2/v2.0/token',
  requestTimeoutMs: 30_000,
  expiryBufferSeconds: 30,
  maxCacheEntries: 100_000,
  maxRetries: 1,
  retryDelayMs: 300,
  proxy: 'http://proxy.example.com:8080',
  logger,
  refreshAhead: 0.8,
}

// Extra fields ride along on a value of a wider type, as LibreChat's `IUser` (an interface,
// which an index signature in OboUser would refuse) and its token sets do.
const librechatUser = {
  openidId: 'subject',
  tenantId: null,
  openidIssuer: 'https://login.example.com/tenant/v2.0',
  provider: 'openid',
  federatedTokens: { access_token: 'a', id_token: 'i', refresh_token: 'r', expires_at: 1_900_000_000 },
  openidTokens: null,
  email: 'user@example.com',
}
const user: OboUser = librechatUser
const identity: OboIdentityContext = { appUserId: 'user-1', openidSubject: 'subject', tenantId: 'tenant', openidIssuer: 'https://issuer' }
const exchangeOptions: OboExchangeOptions = {
  claims: '{"access_token":{"acrs":{"essential":true}}}',
  audience: 'mcp',
  resource: 'https://mcp',
}
const oboConfig: OboConfig = { scopes: 'api://mcp-files/files.read', audience: 'mcp', resource: 'https://mcp' }
const sessionTokens = { access_token: 'a', expires_at: 1_900_000_000, session_state: 'x' }
const snapshot: OIDCTokens = sessionTokens
const provider: UpstreamTokenProvider = async () => snapshot
const syncProvider: UpstreamTokenProvider = () => null

export async function service(): Promise<number> {
  const full = new OboTokenService(options)
  const minimal = new OboTokenService({ issuer: 'https://issuer', clientId: 'librechat', logger: logFunction })
  const fromProcess: OboTokenService = OboTokenService.fromEnv()
  const fromEnv = OboTokenService.fromEnv({ OPENID_ISSUER: 'https://issuer', OPENID_CLIENT_ID: 'librechat', PROXY: undefined }, { logger })

  const token: OboTokenResponse = await full.exchangeOboToken(user, 'assertion', oboConfig.scopes)
  const again = await full.exchangeOboToken(user, 'assertion', oboConfig.scopes, false, identity, exchangeOptions)
  const bearer: 'Bearer' = again.token_type
  const issued: string | undefined = token.issued_token_type
  const graph: OboTokenResponse = await minimal.getGraphApiToken(user, 'assertion', 'User.Read', true)
  const dropped: number = full.invalidate(user) + full.invalidate(user, oboConfig.scopes, identity)
  fromEnv.clear()
  const stats: OboStats = fromProcess.stats()
  const counts: number[] = [stats.hits, stats.misses, stats.coalesced, stats.exchanges, stats.retries, stats.failures, stats.entries]
  const message: OboChannelMessage = { identity: 'abc', key: 'def', scopes: 's', outcome: 'success', durationMs: 1 }
  const breaker: OboBreakerMessage = { state: 'open' }
  void breaker
  const refreshes: number[] = [stats.refreshesStarted, stats.refreshesSucceeded, stats.refreshesFailed, stats.servedDuringRefresh]
  const off = new OboTokenService({ issuer: 'https://issuer', clientId: 'librechat', refreshAhead: false })
  off.clear()
  counts.push(...refreshes, message.scopes.length)
  console.log(bearer, issued, graph.scope, token.access_token.length + token.expires_in + token.expires_at)
  return dropped + counts.length
}

export async function resolve(full: OboTokenService): Promise<MCPOAuthTokens> {
  // The drop-in resolver LibreChat binds, and a resolver of LibreChat's own shape.
  const bound: OboTokenResolver = full.exchangeOboToken.bind(full)
  const custom: OboTokenResolver = async (_user, _assertion, scopes, fromCache = true, _identity) => ({
    access_token: `${scopes}${fromCache}`,
    expires_in: '3600',
  })
  const tokens: MCPOAuthTokens = await resolveOboToken(user, oboConfig, full, provider)
  await resolveOboToken(user, { scopes: 'a b' }, bound, syncProvider, identity, true)
  await resolveOboToken(user, oboConfig, custom, async () => null)
  const bearer: 'Bearer' = tokens.token_type
  console.log(bearer, tokens.access_token, tokens.obtained_at < tokens.expires_at)
  // LibreChat's newest provider contract: options, a scheduled grant's downstream token, a signal.
  const scheduled: UpstreamTokenProvider = async (providerOptions?: UpstreamTokenProviderOptions) => {
    const grant: OboProviderTokens = { scheduledObo: true, access_token: 'downstream', expires_at: 1_900_000_000 }
    return providerOptions?.forceDownstreamRefresh || providerOptions?.forceRefresh ? grant : null
  }
  const call: ResolveOboTokenOptions = { signal: AbortSignal.timeout(5000) }
  await resolveOboToken(user, oboConfig, full, scheduled, identity, true, call)
  await resolveOboToken(user, oboConfig, full, undefined)
  await full.exchangeOboToken(user, 'assertion', oboConfig.scopes, true, undefined, { signal: call.signal })
  createOboFetch({ user, oboConfig, resolver: full, upstreamTokenProvider: scheduled, signal: new AbortController().signal })
  return tokens
}

export async function fetchWithObo(full: OboTokenService): Promise<Response> {
  const fetchOptions: OboFetchOptions = {
    user,
    oboConfig,
    resolver: full,
    upstreamTokenProvider: provider,
    identityContext: identity,
    fetch,
  }
  const oboFetch: typeof fetch = createOboFetch(fetchOptions)
  createOboFetch({ user, oboConfig, resolver: full.exchangeOboToken.bind(full), upstreamTokenProvider: syncProvider })
  const stepUp = createOboFetch({ ...fetchOptions, oboConfig: { ...oboConfig, stepUpScopes: ['api://mcp/files.write'] } })
  const refused = await stepUp('https://mcp.example.com/mcp')
  const challenge: OboChallenge | undefined = refused.oboChallenge
  console.log(challenge?.scopes.join(' '), challenge?.refusedScopes.length, challenge?.resourceMetadata)
  // @ts-expect-error stepUpScopes is a string or a list of strings
  createOboFetch({ ...fetchOptions, oboConfig: { ...oboConfig, stepUpScopes: 1 } })
  return oboFetch('https://mcp.example.com/mcp', { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })
}

export function describe(err: unknown): string {
  if (err instanceof OboExchangeError) {
    const name: 'OboExchangeError' = err.name
    const reason: 'exchange_failed' | 'empty_exchange_response' = err.oboFailureReason
    const retryable: boolean = err.retryable
    const status: number | undefined = err.status
    const codes: number[] | undefined = err.error_codes
    const idp: (string | undefined)[] = [
      err.code,
      err.error,
      err.error_description,
      err.suberror,
      err.claims,
      err.trace_id,
      err.correlation_id,
    ]
    const challenge: string | undefined = err.wwwAuthenticate
    const code: OboErrorCode | undefined = err.code
    const problem: OboMetadataProblem | 'audience' | 'issuer' | undefined = err.kind
    // @ts-expect-error a code this package never makes
    const typo = err.code === 'ERR_ID_JAG_METADATAA'
    const option: string | undefined = err.option
    return [name, reason, retryable, status, codes, ...idp, challenge, code, problem, typo, option, err.message, err.stack].join(' ')
  }
  if (err instanceof Error && (err as OboArgumentError).code === 'ERR_INVALID_ARG') {
    return `${(err as OboArgumentError).argument} ${(err as OboArgumentError).option}`
  }
  if (err instanceof OboTokenResolutionError) {
    const name: 'OboTokenResolutionError' = err.name
    const reason: OboTokenResolutionReason = err.reason
    const hint = 'hint' in err ? (err as OboFetchResolutionError).hint : ''
    return [name, reason, err.retryable, err.userMessage, err.message, String(err.cause), hint].join(' ')
  }
  return String(err)
}

export function errors(): Error[] {
  // Constructed as LibreChat constructs them (and as tests that stand in for the package do).
  const fields: OboExchangeErrorFields = {
    retryable: false,
    oboFailureReason: 'exchange_failed',
    status: 400,
    error: 'invalid_grant',
    error_codes: [50013],
  }
  const exchange = new OboExchangeError('OBO exchange failed', fields, { cause: new Error('HTTP 400') })
  const resolution = new OboTokenResolutionError('exchange_failed', 'Please retry.', true, exchange)
  const reasons: OboTokenResolutionReason[] = [
    'missing_upstream_provider',
    'missing_upstream_token',
    'missing_upstream_access_token',
    'missing_upstream_id_token',
    'missing_upstream_refresh_token',
    'empty_exchange_response',
    'exchange_failed',
    'session_refresh_failed',
  ]
  return [exchange, resolution, ...reasons.map((reason) => new OboTokenResolutionError(reason, reason))]
}

// What the declarations must refuse.
export function refused(full: OboTokenService, resolution: OboTokenResolutionError): void {
  // @ts-expect-error issuer is required
  new OboTokenService({ clientId: 'librechat' })
  // @ts-expect-error a misspelt option is not silently ignored
  new OboTokenService({ issuer: 'i', clientId: 'c', maxCacheEntry: 5 })
  // @ts-expect-error client_secret_jwt is not a supported method
  new OboTokenService({ issuer: 'i', clientId: 'c', clientAuthMethod: 'client_secret_jwt' })
  // @ts-expect-error grantType is one of three names
  new OboTokenService({ issuer: 'i', clientId: 'c', grantType: 'urn:ietf:params:oauth:grant-type:jwt-bearer' })
  // @ts-expect-error validateAssertion needs its audiences
  new OboTokenService({ issuer: 'i', clientId: 'c', validateAssertion: { leewaySeconds: 60 } })
  // @ts-expect-error timeouts are numbers (fromEnv parses the variables)
  new OboTokenService({ issuer: 'i', clientId: 'c', requestTimeoutMs: '30000' })
  // @ts-expect-error refreshAhead is a fraction or a switch
  new OboTokenService({ issuer: 'i', clientId: 'c', refreshAhead: '0.8' })
  // @ts-expect-error a logger level LibreChat's logger does not have
  new OboTokenService({ issuer: 'i', clientId: 'c', logger: { trace: (message: string) => message } })
  // @ts-expect-error environment values are strings
  OboTokenService.fromEnv({ LIBRECHAT_OBO_MAX_RETRIES: 2 })
  // @ts-expect-error scopes are one space-separated string
  full.exchangeOboToken(user, 'assertion', ['api://mcp/.default'])
  // @ts-expect-error the assertion is required
  full.exchangeOboToken(user, undefined, 'scope')
  // @ts-expect-error invalidate returns a count, not a promise
  full.invalidate(user).then(() => {})
  // @ts-expect-error stats are numbers
  const hits: string = full.stats().hits
  // @ts-expect-error an MCP server's obo config needs its scopes
  resolveOboToken(user, {}, full, provider)
  // @ts-expect-error the upstream token provider is required
  resolveOboToken(user, oboConfig, full)
  // @ts-expect-error an exchange error carries LibreChat's tags
  new OboExchangeError('OBO exchange failed', { error: 'invalid_grant' })
  // @ts-expect-error the IdP's error codes are numbers
  new OboExchangeError('OBO exchange failed', { retryable: false, oboFailureReason: 'exchange_failed', error_codes: ['AADSTS50013'] })
  // @ts-expect-error a resolution reason LibreChat does not have
  new OboTokenResolutionError('timeout', 'Please retry.')
  // @ts-expect-error the reason is read-only
  resolution.reason = 'exchange_failed'
  // @ts-expect-error createOboFetch needs the upstream token provider
  createOboFetch({ user, oboConfig, resolver: full })
  // @ts-expect-error the provider's options are flags and a signal
  const providerOptions: UpstreamTokenProviderOptions = { forceDownstreamRefresh: 'yes' }
  // @ts-expect-error a call's signal is an AbortSignal
  resolveOboToken(user, oboConfig, full, provider, identity, false, { signal: 'stop' })
  console.log(hits, providerOptions)
}

// The shared Redis tier: every field, the optional stats, and what the declarations refuse.
export function sharedTier(): number {
  const sharedCache: OboSharedCacheOptions = {
    url: 'rediss://user:pass@redis.example.com:6380',
    keyPrefix: 'deploy42',
    cluster: false,
    ca: '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----',
    encryptionKeys: [
      '2:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
      '1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=',
    ],
    opTimeoutMs: 50,
    lockTtlMs: 61_000,
    maxWaitMs: 10_000,
  }
  const service = new OboTokenService({ issuer: 'https://issuer', clientId: 'librechat', sharedCache })
  OboTokenService.fromEnv({ USE_REDIS: 'true', REDIS_URI: 'redis://127.0.0.1:6379', OBO_CACHE_KEY: 'hex' }, { logger })
  const stats: OboStats = service.stats()
  const shared: (number | undefined)[] = [
    stats.sharedHits,
    stats.sharedMisses,
    stats.sharedErrors,
    stats.sharedTimeouts,
    stats.sharedDecryptFailures,
    stats.sharedWaits,
    stats.sharedLeaderExchanges,
  ]
  const breaker: 'closed' | 'open' | 'half_open' | undefined = stats.sharedBreaker
  // @ts-expect-error encryptionKeys is required
  new OboTokenService({ issuer: 'i', clientId: 'c', sharedCache: { url: 'redis://127.0.0.1' } })
  // @ts-expect-error keys are a list of strings
  new OboTokenService({ issuer: 'i', clientId: 'c', sharedCache: { url: 'redis://127.0.0.1', encryptionKeys: 'hex' } })
  // @ts-expect-error the CA is PEM text, not a Buffer
  new OboTokenService({ issuer: 'i', clientId: 'c', sharedCache: { url: 'rediss://h', encryptionKeys: [], ca: Buffer.from('') } })
  console.log(breaker)
  return shared.length
}

// A scheduled chat's grant over a Keyv-like store, and LibreChat's provider from it.
export async function scheduledGrant(service: OboTokenService, signal: AbortSignal): Promise<number> {
  const values = new Map<string, string>()
  const store: ScheduledOboGrantStore = {
    get: async (key) => values.get(key),
    set: (key, value, ttlMs) => values.set(key, `${value}${ttlMs ?? ''}`),
    delete: (key) => values.delete(key),
  }
  const grant = new ScheduledOboGrant(service, {
    store,
    encryptionKeys: ['000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f'],
  })
  new ScheduledOboGrant(service, { store, credsKey: 'hex', encryptionKeys: 'hex' })
  const target = { scheduleId: 's1', server: 'files', scopes: 'api://mcp-files/files.read' }
  await grant.enroll({ ...target, accessToken: 'user-token', signal })
  const tokens: ScheduledOboTokens = await grant.getToken({ ...target, forceRefresh: true, signal })
  const scheduled: true = tokens.scheduledObo
  const provider = grant.provider(target)
  const renewed = await provider({ forceDownstreamRefresh: true, signal })
  await provider()
  await grant.revoke({ scheduleId: 's1', server: 'files' })
  const key: string = scheduledOboGrantKey('s1', 'files')
  try {
    await grant.getToken(target)
  } catch (err) {
    if (err instanceof OboTokenResolutionError && err.retryable) console.log(err.userMessage)
  }
  const reason: ScheduledOboFailureReason = 'missing_upstream_provider'
  // @ts-expect-error the store is required
  new ScheduledOboGrant(service, { encryptionKeys: ['k'] })
  // @ts-expect-error enrolment needs the user's access token
  await grant.enroll(target)
  // @ts-expect-error expires_at is a number of seconds
  const wrong: string = renewed.expires_at
  console.log(scheduled, key, reason, wrong)
  return tokens.expires_at
}
