'use strict'

// Plain-words explanations of what went wrong, for `librechat-obo doctor`: a failed
// exchange (by this package's error code, Entra's AADSTS code, or the OAuth error), and a
// user token that cannot work as an assertion. Each answer says what happened and the
// likely fix. Nothing here ever quotes a token.

const GRAPH_AUDIENCES = ['00000003-0000-0000-c000-000000000000', 'https://graph.microsoft.com']

/** By this package's `code` (failures decided before or below HTTP). */
const BY_CODE = {
  ERR_ASSERTION_NOT_JWS: {
    what: 'the user token is not a signed JWT',
    fix: 'Pass the access token of the OpenID login (tokenset.access_token), not an id_token or an opaque reference token.',
  },
  ERR_ASSERTION_EXPIRED: {
    what: 'the user token has expired',
    fix: 'Sign in again (or let LibreChat refresh the session) and use the fresh access token.',
  },
  ERR_GRANT_NOT_ADVERTISED: {
    what: 'the IdP does not offer the grant this service is set to use',
    fix: 'Enable the grant for the client at the IdP (Keycloak: "Standard token exchange"), or set LIBRECHAT_OBO_GRANT_TYPE to one it lists.',
  },
  ERR_TARGET_NEEDS_TOKEN_EXCHANGE: {
    what: 'obo.audience is set but the grant is On-Behalf-Of',
    fix: 'Remove obo.audience (Entra names the resource in the scopes), or set LIBRECHAT_OBO_GRANT_TYPE=token_exchange.',
  },
  ERR_CLIENT_ASSERTION: {
    what: 'the client assertion could not be signed',
    fix: 'Check LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_FILE and LIBRECHAT_OBO_CLIENT_ASSERTION_ALG.',
  },
  ETIMEDOUT: { what: 'the IdP did not answer in time', fix: 'Check the network path to the IdP, and PROXY if LibreChat needs one.' },
  ECONNREFUSED: { what: 'the IdP refused the connection', fix: 'Check OPENID_ISSUER (host and port) and PROXY.' },
  ECONNRESET: { what: 'the connection to the IdP was cut', fix: 'Check proxies and TLS interception between LibreChat and the IdP.' },
}

/** Entra v2 takes the resource from the scopes, and refuses RFC 8707's `resource` beside them. */
const RESOURCE_BESIDE_SCOPES = {
  what: 'Entra refused the resource parameter: v2 names the resource in the scopes and takes no RFC 8707 resource beside them',
  fix: 'Set LIBRECHAT_OBO_RESOURCE_INDICATOR to auto (the default) or omit, so obo.resource is not sent with On-Behalf-Of; keep the resource in obo.scopes (<Application ID URI>/<scope>).',
}

/** By Entra's AADSTS code. */
const BY_AADSTS = {
  7000215: {
    what: 'the client secret is wrong',
    fix: "Set OPENID_CLIENT_SECRET to the secret's Value (Certificates & secrets), not its Secret ID.",
  },
  7000222: {
    what: 'the client secret has expired',
    fix: 'Create a new client secret for the app registration and update OPENID_CLIENT_SECRET.',
  },
  700016: {
    what: 'the app is not known in this tenant',
    fix: 'Check OPENID_CLIENT_ID, and that OPENID_ISSUER names the tenant where the app is registered.',
  },
  700027: {
    what: 'the client assertion (certificate credential) was not accepted',
    fix: 'Upload the certificate of LIBRECHAT_OBO_CLIENT_ASSERTION_KEY_FILE to the app registration, and set the certificate or key id the IdP knows.',
  },
  65001: {
    what: 'consent is missing: the user or an admin has not consented to the app calling this API',
    fix: "Grant admin consent for the MCP server's scopes in the app registration (API permissions), or have the user consent once.",
  },
  50076: {
    what: 'Conditional Access requires multi-factor authentication for this API',
    fix: "The user must sign in again with MFA; an MCP-facing server can relay the error's wwwAuthenticate value to the client.",
  },
  50079: {
    what: 'the user must register for multi-factor authentication',
    fix: 'The user must complete MFA registration and sign in again.',
  },
  500011: {
    what: 'the resource (API) in the scopes does not exist in this tenant',
    fix: "Check the Application ID URI of the MCP server's app registration (Expose an API) and write the scopes as <Application ID URI>/<scope>.",
  },
  70011: {
    what: 'a scope is not exposed by the API',
    fix: "Use scopes the MCP server's app registration exposes (Expose an API), or <Application ID URI>/.default.",
  },
  700022: {
    what: 'the scopes name more than one resource',
    fix: 'Entra issues a token for one resource per request: keep one resource in obo.scopes (one MCP server per API).',
  },
  50013: {
    what: 'the user token is not addressed to this app (or its signature is wrong)',
    fix: "Add the app's own API scope (api://<OPENID_CLIENT_ID>/<scope>) to OPENID_SCOPE, so the login access token is issued for LibreChat.",
  },
  // "The resource parameter provided in the request doesn't match with the requested scopes."
  9010010: RESOURCE_BESIDE_SCOPES,
  // "The 'resource' request parameter is not supported." (the v2 endpoint)
  901002: RESOURCE_BESIDE_SCOPES,
  500133: BY_CODE.ERR_ASSERTION_EXPIRED,
  50027: BY_CODE.ERR_ASSERTION_NOT_JWS,
}

/** By the OAuth `error`, for IdPs other than Entra (Keycloak, Okta, Zitadel …). */
const BY_ERROR = {
  invalid_client: {
    what: 'the IdP did not accept the client credential',
    fix: 'Check OPENID_CLIENT_ID and OPENID_CLIENT_SECRET (or the client key), and the client authentication method the IdP expects.',
  },
  unauthorized_client: {
    what: 'the client may not use this grant',
    fix: 'Allow the grant for the client at the IdP (Keycloak: enable "Standard token exchange").',
  },
  invalid_target: {
    what: 'the IdP will not issue a token for this audience or resource',
    fix: 'Check obo.audience / obo.resource, and allow the client to exchange for that target at the IdP.',
  },
  invalid_scope: { what: 'a scope is not valid for this client or target', fix: 'Use scopes the target API offers to this client.' },
  consent_required: BY_AADSTS[65001],
  interaction_required: BY_AADSTS[50076],
  invalid_grant: {
    what: 'the IdP rejected the user token',
    fix: 'Use a fresh access token from the OpenID login, issued for this app.',
  },
  invalid_request: {
    what: 'the IdP rejected the request',
    fix: 'Read the description; for token exchange it usually means the user token is not acceptable as subject_token.',
  },
  temporarily_unavailable: { what: 'the IdP is temporarily unavailable', fix: 'Try again later.' },
}

/** Keycloak's wording when the user token does not name the client in `aud`. */
const NOT_IN_AUDIENCE = {
  what: 'the user token does not name this client in its aud',
  fix: 'Add an audience mapper (Keycloak: a client scope with an Audience mapper for this client) so login tokens include it.',
}

/**
 * What an exchange error means, and the likely fix: `{ what, fix, detail }`, where
 * `detail` is the error's own first line (the IdP's description, never a token).
 */
function explainError(err) {
  const detail = String(err?.message ?? err).split('\n')[0]
  const code = err?.error_codes?.[0]
  const known =
    BY_CODE[err?.code] ??
    BY_AADSTS[code] ??
    // Keycloak's error_description is its only signal here (no code): the IdP's field, not our message.
    (/not within the token audience/i.test(err?.error_description ?? '') ? NOT_IN_AUDIENCE : undefined) ??
    BY_ERROR[err?.suberror] ??
    BY_ERROR[err?.error] ??
    (err?.status === 401 ? BY_ERROR.invalid_client : undefined)
  if (err?.code === 'ERR_ASSERTION_INVALID') return { ...explainInvalidAssertion(err.kind), detail }
  return { what: known?.what ?? 'the exchange failed', fix: known?.fix ?? 'Read the detail above.', detail }
}

/** `validateAssertion` refusals, by the claim refused (`kind`): the aud case is the OPENID_SCOPE mistake. */
function explainInvalidAssertion(kind) {
  if (kind === 'audience') return { what: 'the user token is issued for another API', fix: BY_AADSTS[50013].fix }
  if (kind === 'issuer')
    return {
      what: 'the user token comes from another issuer',
      fix: 'Check OPENID_ISSUER, or list the issuer in validateAssertion.issuers.',
    }
  return { what: 'the user token did not verify', fix: "Use an access token from this IdP's OpenID login." }
}

/** The payload of a JWS, unverified (for diagnosis only), or undefined. */
function unverifiedClaims(token) {
  const parts = String(token).split('.')
  if (parts.length !== 3) return undefined
  try {
    const claims = JSON.parse(Buffer.from(parts[1], 'base64url').toString('utf8'))
    return claims && typeof claims === 'object' && !Array.isArray(claims) ? claims : undefined
  } catch {
    return undefined
  }
}

/**
 * Problems a user token shows on its face, before any exchange: not a JWT, an id_token,
 * expired, issued for Graph or for another app. Returns `{ what, fix }` or undefined.
 */
function explainUserToken(token, clientId, nowSeconds = Date.now() / 1000) {
  const claims = unverifiedClaims(token)
  if (!claims) return BY_CODE.ERR_ASSERTION_NOT_JWS
  const audiences = [claims.aud].flat().filter((a) => typeof a === 'string')
  const forApp = audiences.some((a) => a === clientId || a === `api://${clientId}`)
  const looksLikeIdToken =
    claims.nonce !== undefined ||
    (audiences.includes(clientId) && claims.scp === undefined && claims.roles === undefined && claims.at_hash !== undefined)
  if (looksLikeIdToken) {
    return {
      what: 'this is an id_token (it carries nonce/at_hash and no scopes), not an access token',
      fix: 'Pass the access token of the OpenID login (tokenset.access_token); an id_token cannot be exchanged.',
    }
  }
  if (typeof claims.exp === 'number' && claims.exp <= nowSeconds) return BY_CODE.ERR_ASSERTION_EXPIRED
  if (audiences.some((a) => GRAPH_AUDIENCES.includes(a))) {
    return {
      what: "the user token is issued for Microsoft Graph, not for this app: OPENID_SCOPE is missing the app's own API scope",
      fix: BY_AADSTS[50013].fix,
    }
  }
  if (!forApp && audiences.length > 0) {
    return {
      what: `the user token is issued for ${audiences.join(', ')}, not for this app (${clientId})`,
      fix: BY_AADSTS[50013].fix,
    }
  }
  return undefined
}

module.exports = { explainError, explainUserToken, unverifiedClaims }
