// Leg 1 of ID-JAG (draft-ietf-oauth-identity-assertion-authz-grant; "Enterprise-Managed
// Authorization" / Cross App Access in the MCP spec) at the local enterprise IdP.
//
// The requesting app (LibreChat) trades the user's ID token, or a refresh token the IdP issued
// it, for an Identity Assertion JWT Authorization Grant through RFC 8693 token exchange with
// requested_token_type=id-jag. The IdP decides by policy which authorization servers it mints
// ID-JAGs for (`trustAuthorizationServer`), and stamps the app's client id AT that server into
// the grant, so the server can tell which of its clients may present it. Leg 2 (the grant
// traded for an access token) happens at the MCP server's own authorization server, mcp-as.mjs.
//
// index.mjs hooks this in: its token-exchange handler delegates here when the requested token
// type is an ID-JAG, and spreads `idJagApi` into the IdP object. Nothing here imports index.mjs
// (it passes what is needed), so either module may be imported first.

import { randomBytes, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import * as jose from 'jose'

export const ID_JAG_TYPE = 'urn:ietf:params:oauth:token-type:id-jag'
export const ID_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:id_token'
export const REFRESH_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:refresh_token'
/** What an authorization server lists in `authorization_grant_profiles_supported` when it accepts ID-JAGs. */
export const ID_JAG_PROFILE = 'urn:ietf:params:oauth:grant-profile:id-jag'
/** The JOSE `typ` of an ID-JAG; the authorization server refuses any other (an ID token must not pass for a grant). */
export const ID_JAG_TYP = 'oauth-id-jag+jwt'

/** The IdP state this module owns, spread into index.mjs's `state`. */
export function idJagState() {
  return {
    /** Lifetime of the ID-JAGs minted (expires_in), in seconds. */
    idJagTtl: 300,
    /** Delay before answering each ID-JAG request, to widen race windows in tests. */
    idJagDelayMs: 0,
    /** The IdP's policy: authorization server issuer → { clientId } (the app's client id there). */
    trustedAuthorizationServers: new Map(),
    /** Opaque refresh tokens the IdP issued, by value: { user, clientId }. */
    refreshTokens: new Map(),
    /** The parameters of the last ID-JAG request, without the subject token. */
    lastIdJagRequest: undefined,
  }
}

/**
 * The IdP's ID-JAG methods, spread into the object startIdp returns.
 * @param {object} state the IdP state (with `idJagState()` in it)
 * @param {{ issuer: string, kid: string, publicKey: CryptoKey, privateKey: CryptoKey, users: object, tenant: string, defaultClientId: string }} idp
 */
export function idJagApi(state, idp) {
  return {
    /**
     * Test-only sign-in: the OpenID ID token the IdP would give the app `aud` for `user`. A
     * negative `ttlSeconds` makes an already expired one (iat stays before exp).
     */
    mintIdToken: async (user, { aud = idp.defaultClientId, ttlSeconds = 3600, extra = {} } = {}) => {
      const now = Math.floor(Date.now() / 1000)
      const exp = now + ttlSeconds
      return new jose.SignJWT({
        oid: idp.users[user]?.oid ?? randomUUID(),
        tid: idp.tenant,
        preferred_username: `${user}@example.com`,
        ...extra,
      })
        .setProtectedHeader({ alg: 'RS256', kid: idp.kid, typ: 'JWT' })
        .setIssuer(idp.issuer)
        .setSubject(user)
        .setAudience(aud)
        .setIssuedAt(Math.min(now, exp - 1))
        .setExpirationTime(exp)
        .sign(idp.privateKey)
    },
    /** Test-only: an opaque refresh token the IdP remembers as issued to `clientId` for `user`. */
    issueRefreshToken: (user, { clientId = idp.defaultClientId } = {}) => {
      const token = randomBytes(32).toString('base64url')
      state.refreshTokens.set(token, { user, clientId })
      return token
    },
    /** Lets the IdP mint ID-JAGs addressed to `asIssuer`, naming the app there as `clientId`. */
    trustAuthorizationServer: (asIssuer, { clientId }) => {
      state.trustedAuthorizationServers.set(asIssuer, { clientId })
    },
    distrustAuthorizationServer: (asIssuer) => {
      state.trustedAuthorizationServers.delete(asIssuer)
    },
    setIdJagTtl: (seconds) => {
      state.idJagTtl = seconds
    },
    setIdJagDelay: (ms) => {
      state.idJagDelayMs = ms
    },
    /** The parameters of the last ID-JAG request (and the calling client), without the subject token. */
    lastIdJagRequest: () => state.lastIdJagRequest,
    /**
     * Test-only forgery: any claims signed with the IdP's key, with `typ` chosen, to show what an
     * authorization server refuses. Defaults: iss, jti, iat, exp = iat + ttlSeconds, tid; a claim
     * given as undefined is left out.
     */
    signIdJag: (claims, { typ = ID_JAG_TYP, ttlSeconds = 300 } = {}) => {
      const now = Math.floor(Date.now() / 1000)
      const payload = { iss: idp.issuer, jti: randomUUID(), iat: now, exp: now + ttlSeconds, tid: idp.tenant, ...claims }
      return new jose.SignJWT(payload).setProtectedHeader({ alg: 'RS256', kid: idp.kid, typ }).sign(idp.privateKey)
    },
  }
}

/**
 * The ID-JAG token exchange (the token-exchange grant delegates here when
 * requested_token_type is ID_JAG_TYPE). Errors are plain RFC 6749/8693 ones, not Entra's.
 * @param {object} state the IdP state
 * @param {{ issuer: string, kid: string, publicKey: CryptoKey, privateKey: CryptoKey, users: object, tenant: string }} idp
 */
export function idJagGrant(state, idp) {
  return async function handleIdJag(ctx) {
    state.counters.idJag += 1
    const reply = (status, error, description) => {
      ctx.status = status
      ctx.body = { error, error_description: description }
    }
    const { subject_token: subject, subject_token_type: type, audience, resource, scope, requested_token_type } = ctx.oidc.params
    const client = ctx.oidc.client
    state.lastIdJagRequest = { subject_token_type: type, audience, resource, scope, requested_token_type, clientId: client.clientId }
    if (state.idJagDelayMs) await sleep(state.idJagDelayMs)

    if (!subject) return reply(400, 'invalid_request', 'subject_token is required')
    if (type !== ID_TOKEN_TYPE && type !== REFRESH_TOKEN_TYPE) {
      return reply(400, 'invalid_request', `subject_token_type ${type} is not supported for ID-JAG requests`)
    }
    if (!audience) return reply(400, 'invalid_request', 'audience (the authorization server issuer) is required')
    const trust = state.trustedAuthorizationServers.get(audience)
    if (!trust) return reply(400, 'invalid_target', `audience ${audience} is not a trusted authorization server`)

    let user
    if (type === REFRESH_TOKEN_TYPE) {
      const issued = state.refreshTokens.get(subject)
      if (!issued) return reply(400, 'invalid_grant', 'subject_token is invalid')
      if (issued.clientId !== client.clientId) return reply(400, 'invalid_grant', 'subject_token was not issued to this client')
      user = { sub: issued.user, oid: idp.users[issued.user]?.oid }
    } else {
      try {
        const { payload, protectedHeader } = await jose.jwtVerify(subject, idp.publicKey, {
          issuer: idp.issuer,
          audience: client.clientId,
          algorithms: ['RS256'],
        })
        // An access token (RFC 9068 typ at+jwt) is not an ID token, even one addressed to this client.
        if (protectedHeader.typ === 'at+jwt') throw new Error('not an ID token')
        user = payload
      } catch (err) {
        if (err.code === 'ERR_JWT_EXPIRED') return reply(400, 'invalid_grant', 'subject_token has expired')
        return reply(400, 'invalid_grant', 'subject_token is invalid')
      }
    }

    const ttl = state.idJagTtl
    const now = Math.floor(Date.now() / 1000)
    const idJag = await new jose.SignJWT({
      client_id: trust.clientId,
      resource,
      scope,
      tid: idp.tenant,
      oid: user.oid,
    })
      .setProtectedHeader({ alg: 'RS256', kid: idp.kid, typ: ID_JAG_TYP })
      .setIssuer(idp.issuer)
      .setSubject(user.sub)
      .setAudience(audience)
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + ttl)
      .sign(idp.privateKey)
    ctx.status = 200
    ctx.body = { access_token: idJag, issued_token_type: ID_JAG_TYPE, token_type: 'N_A', expires_in: ttl }
    if (scope !== undefined) ctx.body.scope = scope
  }
}
