// The local identity provider for tests, the demo and the benchmark.
//
// A real OpenID provider (npm `oidc-provider`) on 127.0.0.1 with Entra's On-Behalf-Of
// grant added (RFC 7523 jwt-bearer + requested_token_use=on_behalf_of) and, unless
// turned off, RFC 8693 token exchange (Keycloak-like: the subject token must name the
// client in `aud`; invalid_request / invalid_target errors). Clients authenticate with a
// secret or, for the key clients, with private_key_jwt (oidc-provider checks the
// signature, `aud`, and rejects a replayed `jti`). Assertions are
// verified against the provider's own signing key and must be addressed to the calling
// client; issued tokens are RS256 JWTs for the downstream resource. Errors have Entra's
// shape (error, error_description "AADSTSnnn: …", error_codes, trace_id, correlation_id,
// suberror, claims). Fault injection and call counters make retry and single-flight
// behaviour observable from tests; the JWKS endpoint can be made to fail on demand too.
// With token exchange on, it also mints ID-JAGs (leg 1 of Enterprise-Managed Authorization;
// the handler and its switches live in id-jag.mjs). An OBO request with `offline_access` also
// gets a refresh token, which the refresh_token grant redeems (offline.mjs).

import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as jose from 'jose'
import { ID_JAG_TYPE, idJagApi, idJagGrant, idJagState } from './id-jag.mjs'
import { issueRefreshToken, offlineApi, offlineState, refreshGrant, wantsOffline } from './offline.mjs'

export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token'
const GRAPH = 'https://graph.microsoft.com'
const KEY_ID = 'k1'
/** Sent by the IdP's own `verify` (and the MCP authorization server): its JWKS requests are neither counted nor faulted. */
export const OWN_VERIFIER = 'x-test-idp-verifier'

/** Clients registered at the IdP: the middle tier (LibreChat) with each secret method. */
export const CLIENTS = {
  post: { clientId: 'middle-tier', clientSecret: 'middle-tier-secret', method: 'client_secret_post' },
  basic: { clientId: 'middle-tier-basic', clientSecret: 'basic secret&:/', method: 'client_secret_basic' },
}
/**
 * Clients that authenticate with private_key_jwt; their key pairs are made at start-up
 * (`idp.clientKeys[name].privateKeyPem`). `rsa` is known by `kid`, `ec` (P-256) by `kid`,
 * `cert` has no `kid` (the client sends `x5t#S256`, the IdP tries its one key).
 */
export const KEY_CLIENTS = {
  rsa: { clientId: 'middle-tier-rsa', alg: 'RS256', kid: 'rsa-1' },
  ec: { clientId: 'middle-tier-ec', alg: 'ES256', kid: 'ec-1' },
  cert: { clientId: 'middle-tier-cert', alg: 'RS256' },
}
/** The application ID URI of the middle tier: user tokens for LibreChat carry it as `aud`. */
export const MIDDLE_TIER_APP = 'api://middle-tier'

/** Downstream APIs (MCP servers and Graph) and the delegated scopes each one exposes. */
export const RESOURCES = {
  'api://mcp-files': ['files.read', 'files.write'],
  'api://mcp-mail': ['mail.read'],
  [GRAPH]: ['User.Read', 'Mail.Read'],
}

/**
 * Users. `consented` lists the resources the user (or an admin) consented to;
 * `mfa: 'required'` means Conditional Access demands MFA for every downstream resource.
 */
export const USERS = {
  alice: { oid: '00000000-0000-0000-0000-00000000a11c', consented: Object.keys(RESOURCES) },
  bob: { oid: '00000000-0000-0000-0000-000000000b0b', consented: Object.keys(RESOURCES), mfa: 'required' },
  carol: { oid: '00000000-0000-0000-0000-0000000ca201', consented: [] },
}
export const TENANT = '11111111-2222-3333-4444-555555555555'

/**
 * Starts the IdP on a free loopback port. `tokenExchange: false` leaves RFC 8693 out
 * (an Entra-like IdP that advertises only jwt-bearer).
 * @returns {Promise<Idp>}
 */
export async function startIdp({ tokenExchange = true, tls } = {}) {
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true })
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid: KEY_ID, alg: 'RS256', use: 'sig' }
  const clientKeys = await makeClientKeys()
  const grantTypes = tokenExchange ? [JWT_BEARER, TOKEN_EXCHANGE, 'refresh_token'] : [JWT_BEARER, 'refresh_token']

  const server = tls ? createHttpsServer(tls) : createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`

  const state = {
    counters: { token: 0, obo: 0, refresh: 0, exchange: 0, idJag: 0, discovery: 0, jwks: 0, faults: 0 },
    faults: [],
    /** Picks a fault for each token request the queue leaves without one (the soak's random faults), or undefined. */
    faultPicker: undefined,
    /** What every JWKS request meets until it is cleared (a fault, as for the token endpoint), or undefined. */
    jwksFault: undefined,
    /** What the OBO grant answers as expires_in (a number, a numeric string, or undefined to omit). */
    expiresIn: 3600,
    /** Delay before answering each OBO request, to widen race windows in tests. */
    oboDelayMs: 0,
    /** Opaque reference tokens this IdP issued, by value: their claims (Okta/Ory-style). */
    referenceTokens: new Map(),
    ...idJagState(),
    ...offlineState(),
  }
  const idJag = { issuer, kid: KEY_ID, publicKey, privateKey, users: USERS, tenant: TENANT, defaultClientId: CLIENTS.post.clientId }

  const provider = await quietly(
    async () =>
      new (await import('oidc-provider')).default(issuer, {
        clients: [
          ...Object.values(CLIENTS).map((c) => ({
            client_id: c.clientId,
            client_secret: c.clientSecret,
            token_endpoint_auth_method: c.method,
            grant_types: grantTypes,
            response_types: [],
            redirect_uris: [],
          })),
          ...Object.entries(KEY_CLIENTS).map(([name, c]) => ({
            client_id: c.clientId,
            token_endpoint_auth_method: 'private_key_jwt',
            token_endpoint_auth_signing_alg: c.alg,
            jwks: { keys: [clientKeys[name].publicJwk] },
            grant_types: grantTypes,
            response_types: [],
            redirect_uris: [],
          })),
        ],
        jwks: { keys: [privateJwk] },
        features: { devInteractions: { enabled: false } },
        // draft-ietf-oauth-identity-chaining's discovery field: this IdP mints ID-JAGs by token exchange.
        ...(tokenExchange && { discovery: { identity_chaining_requested_token_types_supported: [ID_JAG_TYPE] } }),
        findAccount: (_ctx, sub) => (USERS[sub] ? { accountId: sub, claims: () => ({ sub }) } : undefined),
      }),
  )
  provider.registerGrantType(JWT_BEARER, oboGrant(state, issuer, publicKey, privateKey), [
    'assertion',
    'scope',
    'requested_token_use',
    'claims',
    'resource',
  ])
  const mintAccessToken = (claims) => signToken(privateKey, issuer, claims, 3600)
  provider.registerGrantType('refresh_token', refreshGrant(state, { mintAccessToken, parseScopes, entraError }), ['refresh_token', 'scope'])
  if (tokenExchange) {
    provider.registerGrantType(TOKEN_EXCHANGE, tokenExchangeGrant(state, issuer, publicKey, privateKey, idJagGrant(state, idJag)), [
      'subject_token',
      'subject_token_type',
      'audience',
      'resource',
      'scope',
      'requested_token_type',
    ])
  }
  // oidc-provider keeps the reason of a failure (a replayed jti, say) out of the response.
  provider.on('grant.error', (_ctx, err) => {
    state.lastErrorDetail = err.error_detail
  })
  provider.use(testMiddleware(state))
  server.on('request', provider.callback())
  // Faults may destroy sockets mid-request; keep the server from logging them as crashes.
  server.on('clientError', (_err, socket) => socket.destroy())

  const mint = (claims, ttlSeconds) => signToken(privateKey, issuer, claims, ttlSeconds)
  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    counters: state.counters,
    /** Queues faults for the next token requests, in order. */
    injectFaults: (...faults) => state.faults.push(...faults),
    /**
     * Asks `pick()` for a fault (or undefined) on every token request the queue has none for:
     * faults by rate and schedule, for the soak. Undefined turns it off.
     */
    setFaultPicker: (pick) => {
      state.faultPicker = pick
    },
    /**
     * Makes every JWKS request (GET /jwks) meet `fault` until it is cleared with undefined:
     * `{ status: 404 | 503 }` answers that status, `{ drop: true }` destroys the socket,
     * `{ delayMs }` holds the answer that long first (a hang, for client timeouts), then
     * answers normally or with `status`. `counters.jwks` counts JWKS requests, faulted or not.
     * Cleared by `resetCounters`.
     */
    setJwksFault: (fault) => {
      state.jwksFault = fault
    },
    setExpiresIn: (value) => {
      state.expiresIn = value
    },
    /** The `claims` parameter of the last OBO request (undefined when it had none). */
    lastClaims: () => state.lastClaims,
    /** The `client_assertion` of the last token request (test-only: to show replay is refused). */
    lastClientAssertion: () => state.lastClientAssertion,
    /** The parameters of the last token-exchange request, without the subject token. */
    lastExchange: () => state.lastExchange,
    /** Key pairs of the private_key_jwt clients, by `KEY_CLIENTS` name. */
    clientKeys,
    setOboDelay: (ms) => {
      state.oboDelayMs = ms
    },
    resetCounters: () => {
      for (const name of Object.keys(state.counters)) state.counters[name] = 0
      state.faults.length = 0
      state.jwksFault = undefined
    },
    /**
     * Test-only sign-in: the access token LibreChat would hold for `user` after login,
     * addressed to the middle tier (or to `aud`).
     */
    mintUserToken: (user, { aud = MIDDLE_TIER_APP, ttlSeconds = 3600, amr = ['pwd'], extra = {} } = {}) =>
      mint(
        {
          sub: user,
          oid: USERS[user]?.oid ?? randomUUID(),
          tid: TENANT,
          aud,
          azp: 'librechat-spa',
          scp: 'access_as_user',
          amr,
          name: user,
          preferred_username: `${user}@example.com`,
          ...extra,
        },
        ttlSeconds,
      ),
    /**
     * Test-only sign-in at an IdP that issues opaque reference tokens (Okta, Ory,
     * PingFederate): a random string that only this IdP can resolve to its claims.
     */
    issueReferenceToken: (user, { aud = MIDDLE_TIER_APP, ttlSeconds = 3600 } = {}) => {
      const token = randomBytes(32).toString('base64url')
      const exp = Math.floor(Date.now() / 1000) + ttlSeconds
      state.referenceTokens.set(token, { sub: user, oid: USERS[user]?.oid ?? randomUUID(), tid: TENANT, aud, amr: ['pwd'], exp })
      return token
    },
    /** Verifies a token against the IdP's published JWKS, as a resource server would. */
    verify: async (token, audience) => {
      const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`), { headers: { [OWN_VERIFIER]: '1' } })
      const { payload } = await jose.jwtVerify(token, jwks, { issuer, audience, algorithms: ['RS256'] })
      return payload
    },
    ...idJagApi(state, idJag),
    ...offlineApi(state),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(resolve)
      }),
  }
}

/**
 * Runs `fn` without oidc-provider's start-up warnings (node 20 is "unsupported" but works;
 * the in-memory adapter is what a test IdP wants). Other console output passes through.
 */
export async function quietly(fn) {
  const warn = console.warn
  console.warn = (...args) => {
    if (!String(args[0]).includes('oidc-provider WARNING')) warn(...args)
  }
  try {
    return await fn()
  } finally {
    console.warn = warn
  }
}

function signToken(privateKey, issuer, claims, ttlSeconds) {
  const now = Math.floor(Date.now() / 1000)
  return new jose.SignJWT({ ver: '2.0', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: KEY_ID, typ: 'at+jwt' })
    .setIssuer(issuer)
    .setIssuedAt(now)
    .setNotBefore(now)
    .setExpirationTime(now + ttlSeconds)
    .setJti(randomUUID())
    .sign(privateKey)
}

/** Entra-shaped error body. */
function entraError(status, error, code, description, extra = {}) {
  const traceId = randomUUID()
  const correlationId = randomUUID()
  const timestamp = new Date().toISOString().replace('T', ' ').replace(/\..+/, 'Z')
  return {
    status,
    body: {
      error,
      error_description: `AADSTS${code}: ${description}\r\nTrace ID: ${traceId}\r\nCorrelation ID: ${correlationId}\r\nTimestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      ...extra,
    },
  }
}

/** Splits an Entra scope string into one resource and its scopes, or an error. */
function parseScopes(scope) {
  const requested = String(scope ?? '')
    .split(' ')
    .filter(Boolean)
    .filter((s) => !['openid', 'profile', 'email', 'offline_access'].includes(s))
  if (requested.length === 0) {
    return { error: entraError(400, 'invalid_scope', 70011, "The provided value for the input parameter 'scope' is not valid.") }
  }
  const resources = new Set()
  const scopes = []
  for (const item of requested) {
    const slash = item.lastIndexOf('/')
    const resource = slash > 0 && item.includes('://') ? item.slice(0, slash) : GRAPH
    const name = slash > 0 && item.includes('://') ? item.slice(slash + 1) : item
    resources.add(resource)
    scopes.push(name)
  }
  if (resources.size > 1) {
    return {
      error: entraError(
        400,
        'invalid_request',
        700022,
        'The provided value for the input parameter scope is not valid because it contains more than one resource.',
      ),
    }
  }
  const [resource] = resources
  const known = RESOURCES[resource]
  if (!known) {
    return {
      error: entraError(400, 'invalid_resource', 500011, `The resource principal named ${resource} was not found in the tenant.`),
    }
  }
  const granted = scopes.includes('.default') ? known : scopes
  const unknown = granted.find((s) => !known.includes(s))
  if (unknown) {
    return {
      error: entraError(
        400,
        'invalid_scope',
        70011,
        `The provided value for the input parameter 'scope' is not valid. The scope ${unknown} does not exist.`,
      ),
    }
  }
  return { resource, granted }
}

/** RSA and P-256 key pairs for the private_key_jwt clients. */
async function makeClientKeys() {
  const keys = {}
  for (const [name, client] of Object.entries(KEY_CLIENTS)) {
    const { privateKey, publicKey } = await jose.generateKeyPair(client.alg, { extractable: true })
    const publicJwk = { ...(await jose.exportJWK(publicKey)), alg: client.alg, use: 'sig' }
    if (client.kid) publicJwk.kid = client.kid
    keys[name] = { privateKeyPem: await jose.exportPKCS8(privateKey), publicJwk }
  }
  return keys
}

/**
 * RFC 8693 token exchange, Keycloak-like: the subject token must be one of this IdP's
 * access tokens (else invalid_request), of type access_token (else invalid_request), and
 * name the calling client in `aud`; the target is `audience` or `resource` (one of
 * RESOURCES, else invalid_target) with plain scope names, or Entra-style scopes. An ID-JAG
 * request goes to `handleIdJag` first, and counts as `idJag`, not `exchange`.
 */
function tokenExchangeGrant(state, issuer, publicKey, privateKey, handleIdJag) {
  return async function handleTokenExchange(ctx) {
    if (ctx.oidc.params.requested_token_type === ID_JAG_TYPE) return handleIdJag(ctx)
    state.counters.exchange += 1
    const reply = (status, error, description) => {
      ctx.status = status
      ctx.body = { error, error_description: description }
    }
    const { subject_token: subject, subject_token_type: type, audience, resource, scope, requested_token_type: requested } = ctx.oidc.params
    state.lastExchange = { subject_token_type: type, audience, resource, scope, requested_token_type: requested }
    if (!subject) return reply(400, 'invalid_request', 'subject_token is required')
    if (type !== ACCESS_TOKEN_TYPE) return reply(400, 'invalid_request', `subject_token_type ${type} is not supported`)
    if (requested !== undefined && requested !== ACCESS_TOKEN_TYPE)
      return reply(400, 'invalid_request', `requested_token_type ${requested} is not supported`)
    let user = state.referenceTokens.get(subject)
    if (user !== undefined && user.exp <= Math.floor(Date.now() / 1000)) {
      return reply(400, 'invalid_request', 'subject_token has expired')
    }
    try {
      user ??= (await jose.jwtVerify(subject, publicKey, { issuer, algorithms: ['RS256'] })).payload
    } catch {
      return reply(400, 'invalid_request', 'subject_token is invalid')
    }
    const client = ctx.oidc.client
    if (![client.clientId, `api://${client.clientId}`, MIDDLE_TIER_APP].includes(user.aud)) {
      return reply(400, 'invalid_request', 'Client is not within the token audience')
    }
    const target = audience ?? resource
    let granted
    let targetResource
    if (target !== undefined) {
      if (audience !== undefined && resource !== undefined && audience !== resource) {
        return reply(400, 'invalid_target', 'audience and resource name different targets')
      }
      if (!RESOURCES[target]) return reply(400, 'invalid_target', `The target ${target} is not available to this client`)
      targetResource = target
      granted = String(scope ?? '')
        .split(' ')
        .filter(Boolean)
      const unknown = granted.find((s) => !RESOURCES[target].includes(s))
      if (unknown) return reply(400, 'invalid_scope', `Scope ${unknown} is not offered by ${target}`)
    } else {
      const parsed = parseScopes(scope)
      if (parsed.error) return reply(400, parsed.error.body.error, parsed.error.body.error_description.split('\r\n')[0])
      ;({ resource: targetResource, granted } = parsed)
    }
    const accessToken = await signToken(
      privateKey,
      issuer,
      { sub: user.sub, oid: user.oid, tid: user.tid, aud: targetResource, azp: client.clientId, scp: granted.join(' '), amr: user.amr },
      3600,
    )
    ctx.status = 200
    ctx.body = {
      access_token: accessToken,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 3600,
      scope: granted.join(' '),
    }
  }
}

/** The On-Behalf-Of grant handler. */
function oboGrant(state, issuer, publicKey, privateKey) {
  return async function handleObo(ctx) {
    state.counters.obo += 1
    if (state.oboDelayMs) await sleep(state.oboDelayMs)
    const reply = ({ status, body }) => {
      ctx.status = status
      ctx.body = body
    }
    const { assertion, scope, requested_token_use: use, claims, resource: indicator } = ctx.oidc.params
    state.lastClaims = claims
    // Entra v2 names the resource in the scopes, and refuses an RFC 8707 `resource` beside them.
    if (indicator !== undefined) {
      return reply(
        entraError(
          400,
          'invalid_request',
          9010010,
          "The resource parameter provided in the request doesn't match with the requested scopes.",
        ),
      )
    }
    const client = ctx.oidc.client
    if (use !== 'on_behalf_of') {
      return reply(
        entraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'requested_token_use'."),
      )
    }
    if (!assertion) {
      return reply(entraError(400, 'invalid_request', 900144, "The request body must contain the following parameter: 'assertion'."))
    }
    if (claims !== undefined) {
      try {
        JSON.parse(claims)
      } catch {
        return reply(entraError(400, 'invalid_request', 70009, "The provided value for the input parameter 'claims' is not valid JSON."))
      }
    }

    let user
    try {
      ;({ payload: user } = await jose.jwtVerify(assertion, publicKey, { issuer, algorithms: ['RS256'] }))
    } catch (err) {
      if (err.code === 'ERR_JWT_EXPIRED') {
        return reply(
          entraError(
            400,
            'invalid_grant',
            500133,
            'Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token.',
          ),
        )
      }
      return reply(entraError(400, 'invalid_grant', 50013, 'Assertion failed signature validation.'))
    }
    const audiences = [client.clientId, `api://${client.clientId}`]
    if (!audiences.includes(user.aud)) {
      return reply(entraError(400, 'invalid_grant', 50013, 'Assertion audience does not match the Client app presenting the assertion.'))
    }

    const parsed = parseScopes(scope)
    if (parsed.error) return reply(parsed.error)
    const { resource, granted } = parsed

    const account = USERS[user.sub]
    if (!account?.consented.includes(resource)) {
      return reply(
        entraError(
          400,
          'invalid_grant',
          65001,
          `The user or administrator has not consented to use the application with ID '${client.clientId}'. Send an interactive authorization request for this user and resource.`,
          { suberror: 'consent_required' },
        ),
      )
    }
    if (account.mfa === 'required' && !(user.amr ?? []).includes('mfa')) {
      return reply(
        entraError(
          400,
          'interaction_required',
          50076,
          "Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '" +
            resource +
            "'.",
          {
            suberror: 'basic_action',
            claims: JSON.stringify({ access_token: { capolids: { essential: true, values: ['mfa-policy-1'] } } }),
          },
        ),
      )
    }

    const lifetime = Number(state.expiresIn ?? 3600)
    const accessToken = await signToken(
      privateKey,
      issuer,
      {
        sub: user.sub,
        oid: user.oid,
        tid: user.tid,
        aud: resource,
        azp: client.clientId,
        appid: client.clientId,
        scp: granted.join(' '),
        amr: user.amr,
      },
      Number.isFinite(lifetime) && lifetime > 0 ? lifetime : 3600,
    )
    const body = {
      token_type: 'Bearer',
      scope: granted.map((s) => (resource === GRAPH ? s : `${resource}/${s}`)).join(' '),
      ext_expires_in: state.expiresIn,
      access_token: accessToken,
    }
    if (state.expiresIn !== undefined) body.expires_in = state.expiresIn
    if (wantsOffline(scope)) {
      const claims = { sub: user.sub, oid: user.oid, tid: user.tid, amr: user.amr }
      body.refresh_token = issueRefreshToken(state, { user: claims, clientId: client.clientId, resource, granted })
    }
    ctx.status = 200
    ctx.body = body
  }
}

/** The body of a fault that names none: Entra's shape. */
const entraFaultBody = (fault) =>
  entraError(fault.status, fault.error ?? 'temporarily_unavailable', 50196, 'The server is temporarily unavailable.').body

/**
 * Applies one fault (`delayMs`, then `drop`, `cut`, `echo` or `status`); true when it answered
 * the request, false when the request goes on to the provider. `cut: status` sends the head of
 * an answer with that status and `Content-Length: 100`, then 19 bytes of body, and closes.
 * `echo: true` answers 400 (or `status`) with an OAuth error whose description quotes the
 * request as received: its body and its `Authorization` header. `defaultBody(fault)` answers a
 * status fault that carries no body (Entra's shape unless told otherwise).
 */
export async function applyFault(ctx, state, fault, defaultBody = entraFaultBody) {
  state.counters.faults += 1
  if (fault.delayMs) await sleep(fault.delayMs)
  if (fault.drop) {
    ctx.req.socket.destroy()
    ctx.respond = false
    return true
  }
  if (fault.cut) {
    ctx.respond = false
    const head = `HTTP/1.1 ${fault.cut} X\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n`
    ctx.req.socket.end(`${head}{"access_token":"x"`)
    return true
  }
  if (fault.echo) {
    const chunks = []
    for await (const chunk of ctx.req) chunks.push(chunk)
    ctx.status = fault.status ?? 400
    const received = `${Buffer.concat(chunks)} with authorization ${ctx.get('authorization') || '(none)'}`
    ctx.body = { error: 'invalid_client', error_description: `Received ${received}` }
    return true
  }
  if (fault.status) {
    if (fault.retryAfter !== undefined) ctx.set('Retry-After', String(fault.retryAfter))
    ctx.status = fault.status
    ctx.body = fault.body ?? defaultBody(fault)
    return true
  }
  return false
}

/**
 * Counts requests (readable at GET /__test/counters, for a client in another process),
 * applies queued faults to the token endpoint and the JWKS fault to the JWKS endpoint, and
 * reshapes the provider's own token-endpoint errors (bad client credentials) the way Entra
 * words them.
 */
function testMiddleware(state) {
  return async function test(ctx, next) {
    if (ctx.path === '/.well-known/openid-configuration') state.counters.discovery += 1
    if (ctx.path === '/__test/counters' && ctx.method === 'GET') {
      ctx.body = state.counters
      return
    }
    if (ctx.path === '/jwks' && !ctx.get(OWN_VERIFIER)) {
      state.counters.jwks += 1
      if (state.jwksFault && (await applyFault(ctx, state, state.jwksFault))) return
      return next()
    }
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next()
    state.counters.token += 1
    state.lastClientAssertion = undefined
    state.lastErrorDetail = undefined
    const fault = state.faults.shift() ?? state.faultPicker?.()
    if (fault && (await applyFault(ctx, state, fault))) return
    await next()
    state.lastClientAssertion = ctx.oidc?.params?.client_assertion
    if (ctx.status === 401 && ctx.body?.error === 'invalid_client') {
      const { body } = state.lastClientAssertion
        ? entraError(
            401,
            'invalid_client',
            700027,
            `Client assertion failed validation: ${state.lastErrorDetail ?? ctx.body.error_description}.`,
          )
        : entraError(
            401,
            'invalid_client',
            7000215,
            'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
          )
      ctx.body = body
    }
  }
}
