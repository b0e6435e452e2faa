// The bearer gate shared by the test MCP servers (server.mjs on the v1 SDK, stateless-server.mjs
// on the v2 SDK), as the MCP authorization spec asks of a resource server. It serves the
// protected-resource metadata and admits only requests whose access token verifies against the
// IdP's JWKS (RS256 only), with the exact issuer, `aud` equal to the server's API id, a live
// `exp`/`nbf`, the required delegated scope in `scp` (403 insufficient_scope otherwise) and
// `azp` equal to the middle tier. Failures are 401 with WWW-Authenticate (resource_metadata,
// scope), never a 500. With `audience: 'self'` the resource is the server's own MCP endpoint URL
// (`${base}/mcp`, as the MCP spec has it), which is what an ID-JAG authorization server
// (idp/mcp-as.mjs) issues tokens for; the metadata document can be bent for discovery tests.

import { createServer } from 'node:http'
import * as jose from 'jose'

export const METADATA_PATH = '/.well-known/oauth-protected-resource'

/**
 * A node:http server on a free 127.0.0.1 port that calls `handle(req, res)` (a throw is answered
 * 400, never a 500), with its bearer gate; `close()` ends its connections and stops it.
 * @param {GateOptions} options
 */
export async function listenProtected(options, handle) {
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad_request"}')
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    base,
    gate: bearerGate({ ...options, base }),
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

/**
 * @typedef {object} GateOptions
 * @property {string} issuer the authorization server whose `${issuer}/jwks` signs the bearers
 * @property {string} audience the resource (`aud`), or 'self' for the server's own `${base}/mcp`
 * @property {string} scope the scope every bearer needs in `scp`
 * @property {string} clientId the `azp` every bearer must carry
 * @property {string[]} [authorizationServers] the metadata's authorization_servers (default [issuer])
 * @property {object} [metadataOverride] fields merged over the metadata document (undefined drops one)
 * @property {string} [metadataPath] serve the metadata only at this path (not a well-known one), and name it in challenges
 */

/**
 * @param {GateOptions & { base: string }} options
 */
export function bearerGate({ issuer, base, audience, scope, clientId, authorizationServers = [issuer], metadataOverride, metadataPath }) {
  const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`))
  const resource = audience === 'self' ? `${base}/mcp` : audience
  const state = {
    /** Every request with a bearer: method, what the server noted, whether it was accepted, and the bearer's jti/aud (unverified, for the log). */
    log: [],
    /** Reject the next N bearers with 401 invalid_token (a revocation). */
    rejectNext: 0,
    metadataOverride,
  }
  const metadataPaths = metadataPath ? [metadataPath] : [METADATA_PATH, `${METADATA_PATH}/mcp`]
  const challenge = (extra = '') => `Bearer ${extra}resource_metadata="${base}${metadataPaths[0]}", scope="${scope}"`

  async function authenticate(req, note) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.headers.authorization ?? '')
    if (!match) return { status: 401, header: challenge(), error: 'invalid_request' }
    const token = match[1]
    let claims
    try {
      claims = jose.decodeJwt(token)
    } catch {
      claims = {}
    }
    const entry = { method: req.method, ...note, jti: claims.jti ?? null, aud: claims.aud ?? null, accepted: false }
    state.log.push(entry)
    const invalid = { status: 401, header: challenge('error="invalid_token", '), error: 'invalid_token' }
    if (state.rejectNext > 0) {
      state.rejectNext -= 1
      return invalid
    }
    try {
      ;({ payload: claims } = await jose.jwtVerify(token, jwks, { issuer, audience: resource, algorithms: ['RS256'] }))
    } catch {
      return invalid
    }
    if (claims.azp !== clientId) return invalid
    if (
      !String(claims.scp ?? '')
        .split(' ')
        .includes(scope)
    ) {
      return { status: 403, header: challenge('error="insufficient_scope", '), error: 'insufficient_scope' }
    }
    entry.accepted = true
    return {
      auth: {
        token,
        clientId: claims.azp,
        scopes: claims.scp.split(' '),
        expiresAt: claims.exp,
        extra: { sub: claims.sub, jti: claims.jti },
      },
    }
  }

  /**
   * Answers the metadata document, unknown paths and refused bearers itself; resolves with the
   * AuthInfo of a request to /mcp that may go on, else null. `note` is copied into its log entry.
   */
  async function admit(req, res, note = {}) {
    const { pathname } = new URL(req.url, base)
    if (req.method === 'GET' && metadataPaths.includes(pathname)) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          resource,
          authorization_servers: authorizationServers,
          scopes_supported: [scope],
          bearer_methods_supported: ['header'],
          ...state.metadataOverride,
        }),
      )
      return null
    }
    if (pathname !== '/mcp') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}')
      return null
    }
    const verdict = await authenticate(req, note)
    if (!verdict.auth) {
      res.writeHead(verdict.status, { 'content-type': 'application/json', 'www-authenticate': verdict.header })
      res.end(JSON.stringify({ error: verdict.error }))
      return null
    }
    return verdict.auth
  }

  return {
    state,
    admit,
    /** The resource bearers must be addressed to (`${base}/mcp` for audience 'self'). */
    resource,
    rejectNext: (n) => {
      state.rejectNext = n
    },
    /** Fields merged over the metadata document from now on; undefined for none. */
    setMetadataOverride: (fields) => {
      state.metadataOverride = fields
    },
  }
}
