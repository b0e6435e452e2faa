// Offline access for the local IdP, as Entra gives it: an On-Behalf-Of request whose scope
// holds `offline_access` also gets a downstream refresh token, bound to the client, the
// user and the resource; the refresh_token grant redeems it for a new access token and a
// new refresh token (rotation: the one presented is spent). Refresh tokens are opaque and
// kept here, so a test can revoke them.

import { randomBytes } from 'node:crypto'

/** How long an issued refresh token lives (Entra: 90 days, sliding). */
const REFRESH_LIFETIME_SECONDS = 90 * 24 * 3600

export function offlineState() {
  return {
    /** Live refresh tokens by value: `{ user, clientId, resource, granted, exp }`. */
    refreshTokens: new Map(),
    /** Every refresh token ever issued, spent or not (for tests that look for leaks). */
    issuedRefreshTokens: [],
  }
}

/** Whether an OBO request's scope asks for a refresh token. */
export function wantsOffline(scope) {
  return String(scope ?? '')
    .split(' ')
    .includes('offline_access')
}

/** A new refresh token for `grant` (`user` claims, `clientId`, `resource`, `granted` scopes). */
export function issueRefreshToken(state, grant) {
  const token = `rt.${randomBytes(24).toString('base64url')}`
  state.refreshTokens.set(token, { ...grant, exp: Math.floor(Date.now() / 1000) + REFRESH_LIFETIME_SECONDS })
  state.issuedRefreshTokens.push(token)
  return token
}

/**
 * The refresh_token grant handler. `tools`: `mintAccessToken(claims)` signs a downstream
 * access token, `parseScopes(scope)` and `entraError(...)` are the IdP's own.
 */
export function refreshGrant(state, { mintAccessToken, parseScopes, entraError }) {
  return async function handleRefresh(ctx) {
    state.counters.refresh += 1
    const reply = ({ status, body }) => {
      ctx.status = status
      ctx.body = body
    }
    const { refresh_token: presented, scope } = ctx.oidc.params
    const grant = state.refreshTokens.get(presented)
    const client = ctx.oidc.client
    if (!grant || grant.clientId !== client.clientId) {
      return reply(entraError(400, 'invalid_grant', 70000, 'The provided value for the input parameter refresh_token is not valid.'))
    }
    if (grant.exp <= Math.floor(Date.now() / 1000)) {
      state.refreshTokens.delete(presented)
      return reply(
        entraError(400, 'invalid_grant', 70008, 'The provided authorization code or refresh token has expired due to inactivity.'),
      )
    }
    const parsed = parseScopes(scope ?? grant.granted.map((s) => `${grant.resource}/${s}`).join(' '))
    if (parsed.error) return reply(parsed.error)
    if (parsed.resource !== grant.resource || parsed.granted.some((s) => !grant.granted.includes(s))) {
      return reply(
        entraError(400, 'invalid_grant', 65001, 'The user or administrator has not consented to use the application for these scopes.'),
      )
    }
    state.refreshTokens.delete(presented)
    const accessToken = await mintAccessToken({ ...grant.user, aud: grant.resource, azp: client.clientId, scp: parsed.granted.join(' ') })
    ctx.status = 200
    ctx.body = {
      token_type: 'Bearer',
      scope: parsed.granted.map((s) => `${grant.resource}/${s}`).join(' '),
      expires_in: 3600,
      access_token: accessToken,
      refresh_token: issueRefreshToken(state, { ...grant, granted: parsed.granted }),
    }
  }
}

/**
 * The test API: revoke a user's refresh tokens (as a password reset or an admin would),
 * count the live ones, list every one issued.
 */
export function offlineApi(state) {
  return {
    revokeRefreshTokens: (sub) => {
      for (const [token, grant] of state.refreshTokens) if (grant.user.sub === sub) state.refreshTokens.delete(token)
    },
    liveRefreshTokens: () => state.refreshTokens.size,
    issuedRefreshTokens: () => [...state.issuedRefreshTokens],
  }
}
