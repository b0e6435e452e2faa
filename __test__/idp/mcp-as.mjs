// The MCP server's own authorization server for ID-JAG tests: leg 2 of Enterprise-Managed
// Authorization (draft-ietf-oauth-identity-assertion-authz-grant).
//
// A second `oidc-provider` instance on 127.0.0.1, apart from the enterprise IdP (index.mjs): the
// app authenticates as ITS client here (a secret or private_key_jwt) and presents the ID-JAG the
// IdP minted as an RFC 7523 jwt-bearer `assertion`. The grant is checked the way the draft asks,
// one check at a time so that a test sees which one refused it: the IdP's signature (its JWKS),
// `typ`, `aud` (this issuer), `resource` (the MCP server this AS protects), `client_id` (the
// authenticated client), `exp`, and a `jti` never seen before. The access token issued is an RS256
// JWT (RFC 9068) for that resource, which the MCP server's bearer gate (mcp/bearer.mjs) verifies
// against this server's JWKS. RFC 8414 metadata advertises the ID-JAG grant profile; both can be
// bent at runtime, and token requests can meet injected faults, as at the IdP.

import { createServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as jose from 'jose'
import { JWT_BEARER, OWN_VERIFIER, applyFault, quietly } from './index.mjs'
import { ID_JAG_PROFILE, ID_JAG_TYP } from './id-jag.mjs'

export const AS_METADATA_PATH = '/.well-known/oauth-authorization-server'
const KEY_ID = 'as-k1'
/** How far past `exp` an ID-JAG is still taken (clock skew between IdP and AS). */
const CLOCK_TOLERANCE_SECONDS = 5

/** The requesting app's clients at this authorization server, one per authentication method. */
export const AS_CLIENTS = {
  secret: { clientId: 'librechat-files', clientSecret: 'files-as-secret', method: 'client_secret_post' },
  basic: { clientId: 'librechat-files-basic', clientSecret: 'basic files secret', method: 'client_secret_basic' },
  key: { clientId: 'librechat-files-key', method: 'private_key_jwt', alg: 'RS256', kid: 'as-key-1' },
}

/**
 * Starts the authorization server on a free loopback port. It trusts ID-JAGs signed by
 * `idpIssuer`'s keys (fetched from `${idpIssuer}/jwks` with the global fetch: an https IdP needs
 * its CA in NODE_EXTRA_CA_CERTS). `grantProfiles` is what the metadata advertises as
 * `authorization_grant_profiles_supported` (null leaves the field out). `tls` (key, cert) serves
 * this server over https.
 */
export async function startMcpAuthorizationServer({ idpIssuer, grantProfiles = [ID_JAG_PROFILE], tls } = {}) {
  if (!idpIssuer) throw new TypeError('idpIssuer is required')
  const { privateKey, publicKey } = await jose.generateKeyPair('RS256', { extractable: true })
  const privateJwk = { ...(await jose.exportJWK(privateKey)), kid: KEY_ID, alg: 'RS256', use: 'sig' }
  const clientKeys = await makeClientKeys()

  const server = tls ? createHttpsServer(tls) : createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const issuer = `${tls ? 'https' : 'http'}://127.0.0.1:${server.address().port}`

  const state = {
    counters: { token: 0, grants: 0, metadata: 0, faults: 0 },
    faults: [],
    delayMs: 0,
    /** Why the last grant was refused (an error_description), or undefined. */
    lastError: undefined,
    grantProfiles,
    /** Fields merged over the metadata document (undefined: none). */
    metadataOverride: undefined,
    /** The one resource (MCP server URL) this AS issues tokens for; until set, every ID-JAG is refused. */
    resource: undefined,
    scopes: ['files.read', 'files.write'],
    tokenTtl: 3600,
    /** Every ID-JAG `jti` accepted so far: a replay is refused for the server's whole life. */
    seenJtis: new Set(),
  }
  const metadata = () => {
    const doc = {
      issuer,
      token_endpoint: `${issuer}/token`,
      jwks_uri: `${issuer}/jwks`,
      grant_types_supported: [JWT_BEARER],
      token_endpoint_auth_methods_supported: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'],
      token_endpoint_auth_signing_alg_values_supported: ['RS256'],
      scopes_supported: state.scopes,
    }
    if (state.grantProfiles) doc.authorization_grant_profiles_supported = state.grantProfiles
    return { ...doc, ...state.metadataOverride }
  }

  const provider = await quietly(
    async () =>
      new (await import('oidc-provider')).default(issuer, {
        clients: Object.entries(AS_CLIENTS).map(([name, c]) => ({
          client_id: c.clientId,
          ...(c.clientSecret ? { client_secret: c.clientSecret } : { jwks: { keys: [clientKeys[name].publicJwk] } }),
          token_endpoint_auth_method: c.method,
          ...(c.alg && { token_endpoint_auth_signing_alg: c.alg }),
          grant_types: [JWT_BEARER],
          response_types: [],
          redirect_uris: [],
        })),
        jwks: { keys: [privateJwk] },
        features: { devInteractions: { enabled: false } },
      }),
  )
  // The IdP tells its own verifier's JWKS requests apart (not counted, never faulted): a test
  // that breaks the IdP's JWKS for the app must not break this server's checks too.
  const idpJwks = jose.createRemoteJWKSet(new URL(`${idpIssuer}/jwks`), { headers: { [OWN_VERIFIER]: '1' } })
  provider.registerGrantType(JWT_BEARER, idJagBearerGrant(state, { issuer, idpIssuer, idpJwks, privateKey }), [
    'assertion',
    'scope',
    'resource',
  ])
  provider.use(asMiddleware(state, metadata))
  server.on('request', provider.callback())
  // Faults may destroy sockets mid-request; keep the server from logging them as crashes.
  server.on('clientError', (_err, socket) => socket.destroy())

  return {
    issuer,
    tokenEndpoint: `${issuer}/token`,
    metadataUrl: `${issuer}${AS_METADATA_PATH}`,
    counters: state.counters,
    /** Key pairs of the private_key_jwt clients, by `AS_CLIENTS` name (`key`). */
    clientKeys,
    /** Queues faults for the next token requests, in order: `{ status, error?, body?, retryAfter?, delayMs?, drop?, cut?, echo? }` (see `applyFault`). */
    injectFaults: (...faults) => state.faults.push(...faults),
    /** Delay before handling each token request. */
    setDelay: (ms) => {
      state.delayMs = ms
    },
    /** The resource (MCP server URL) ID-JAGs must name and access tokens are issued for. */
    setResource: (url) => {
      state.resource = url
    },
    /** The scopes this server grants; any other requested scope is invalid_scope. */
    setScopes: (list) => {
      state.scopes = list
    },
    setTokenTtl: (seconds) => {
      state.tokenTtl = seconds
    },
    /** What the metadata advertises as authorization_grant_profiles_supported; null leaves it out. */
    setGrantProfiles: (list) => {
      state.grantProfiles = list
    },
    /** Fields merged over the metadata document (a wrong `issuer`, say); undefined for none. */
    setMetadataOverride: (fields) => {
      state.metadataOverride = fields
    },
    /** Why the last grant was refused (its error_description), or undefined. */
    lastError: () => state.lastError,
    /** Zeroes the counters and drops faults, the delay and lastError; used jtis stay used. */
    resetCounters: () => {
      for (const name of Object.keys(state.counters)) state.counters[name] = 0
      state.faults.length = 0
      state.delayMs = 0
      state.lastError = undefined
    },
    /** Verifies one of this server's access tokens (and its `aud`, when given); resolves with its claims. */
    verify: async (token, audience) => {
      const { payload } = await jose.jwtVerify(token, publicKey, { issuer, audience, algorithms: ['RS256'], typ: 'at+jwt' })
      return payload
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(resolve)
      }),
  }
}

/** The key pair of each private_key_jwt client. */
async function makeClientKeys() {
  const keys = {}
  for (const [name, client] of Object.entries(AS_CLIENTS)) {
    if (client.method !== 'private_key_jwt') continue
    const { privateKey, publicKey } = await jose.generateKeyPair(client.alg, { extractable: true })
    const publicJwk = { ...(await jose.exportJWK(publicKey)), alg: client.alg, use: 'sig', kid: client.kid }
    keys[name] = { privateKeyPem: await jose.exportPKCS8(privateKey), publicJwk }
  }
  return keys
}

/**
 * The jwt-bearer grant with an ID-JAG as `assertion`. Each refusal is 400 with an
 * error_description naming the check that failed (never the assertion itself).
 */
function idJagBearerGrant(state, { issuer, idpIssuer, idpJwks, privateKey }) {
  return async function handleIdJagBearer(ctx) {
    state.counters.grants += 1
    state.lastError = undefined
    const refuse = (error, description) => {
      state.lastError = description
      ctx.status = 400
      ctx.body = { error, error_description: description }
    }
    const { assertion, scope, resource } = ctx.oidc.params
    const client = ctx.oidc.client
    if (!assertion) return refuse('invalid_request', 'assertion is required')

    // The signature first, with only the IdP's keys and RS256; the claims are checked one by
    // one below (jwtVerify would fold exp into this step).
    let header
    let claims
    try {
      const verified = await jose.compactVerify(assertion, idpJwks, { algorithms: ['RS256'] })
      header = verified.protectedHeader
      claims = JSON.parse(new TextDecoder().decode(verified.payload))
      if (claims === null || typeof claims !== 'object' || Array.isArray(claims)) throw new Error('not a claims set')
    } catch {
      return refuse('invalid_grant', "ID-JAG signature does not verify against the IdP's JWKS")
    }
    if (claims.iss !== idpIssuer) return refuse('invalid_grant', 'ID-JAG iss is not the trusted IdP')
    if (header.typ !== ID_JAG_TYP) return refuse('invalid_grant', `ID-JAG typ must be ${ID_JAG_TYP}`)
    if (claims.aud !== issuer) return refuse('invalid_grant', "ID-JAG aud must be this authorization server's issuer")
    if (state.resource === undefined) return refuse('invalid_grant', 'ID-JAG resource: this authorization server protects no resource yet')
    if (claims.resource !== state.resource) return refuse('invalid_grant', `ID-JAG resource must be ${state.resource}`)
    if (claims.client_id !== client.clientId) return refuse('invalid_grant', 'ID-JAG client_id does not match the authenticated client')
    const now = Math.floor(Date.now() / 1000)
    if (typeof claims.exp !== 'number' || claims.exp <= now - CLOCK_TOLERANCE_SECONDS) return refuse('invalid_grant', 'ID-JAG has expired')
    if (typeof claims.jti !== 'string' || claims.jti === '') return refuse('invalid_grant', 'ID-JAG has no jti')
    if (state.seenJtis.has(claims.jti)) return refuse('invalid_grant', 'ID-JAG jti was already used')
    if (typeof claims.sub !== 'string' || claims.sub === '') return refuse('invalid_grant', 'ID-JAG has no sub')

    if (resource !== undefined && resource !== state.resource) {
      return refuse('invalid_target', `resource ${resource} is not protected by this authorization server`)
    }
    const granted = String(scope ?? claims.scope ?? '')
      .split(' ')
      .filter(Boolean)
    const unknown = granted.find((s) => !state.scopes.includes(s))
    if (unknown) return refuse('invalid_scope', `scope ${unknown} is not offered by this authorization server`)

    // Burnt only once accepted (no await since the check above, so two concurrent requests
    // with one ID-JAG cannot both pass).
    state.seenJtis.add(claims.jti)
    const ttl = state.tokenTtl
    const accessToken = await new jose.SignJWT({ azp: client.clientId, client_id: client.clientId, scp: granted.join(' ') })
      .setProtectedHeader({ alg: 'RS256', kid: KEY_ID, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setAudience(state.resource)
      .setSubject(claims.sub)
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .setJti(randomUUID())
      .sign(privateKey)
    ctx.status = 200
    ctx.body = { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope: granted.join(' ') }
  }
}

/** Serves the RFC 8414 metadata, and counts, delays and faults token requests. */
function asMiddleware(state, metadata) {
  return async function asTest(ctx, next) {
    if (ctx.path === AS_METADATA_PATH && ctx.method === 'GET') {
      state.counters.metadata += 1
      ctx.body = metadata()
      return
    }
    if (ctx.path !== '/token' || ctx.method !== 'POST') return next()
    state.counters.token += 1
    const fault = state.faults.shift()
    if (fault && (await applyFault(ctx, state, fault, oauthFaultBody))) return
    if (state.delayMs) await sleep(state.delayMs)
    await next()
  }
}

/** The body of a fault that names none: a plain OAuth error, not Entra's. */
const oauthFaultBody = (fault) => ({
  error: fault.error ?? 'temporarily_unavailable',
  error_description: 'The server is temporarily unavailable.',
})
