// A protected MCP server for tests and the demo: the MCP SDK's streamable HTTP transport
// on 127.0.0.1 behind bearer authentication, as the MCP authorization spec asks of a
// resource server. Every request (POST, GET, DELETE) must carry an access token that
// verifies against the IdP's JWKS (RS256 only), with the exact issuer, `aud` equal to
// this server's API id, a live `exp`/`nbf`, the required delegated scope in `scp`
// (403 insufficient_scope otherwise) and `azp` equal to the middle tier. Failures are
// 401 with WWW-Authenticate (resource_metadata, scope), never a 500. One tool, `whoami`,
// returns the caller's `sub` and the token's `jti`.

import { createServer } from 'node:http'
import { randomUUID } from 'node:crypto'
import * as jose from 'jose'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'

const METADATA_PATH = '/.well-known/oauth-protected-resource'

/**
 * @param {{ issuer: string, audience?: string, scope?: string, clientId?: string }} options
 */
export async function startMcpServer({ issuer, audience = 'api://mcp-files', scope = 'files.read', clientId = 'middle-tier' }) {
  const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`))
  const state = {
    /** Every request: method, whether it was accepted, and the bearer's jti/aud (unverified, for the log). */
    log: [],
    /** Reject the next N bearers with 401 invalid_token (a revocation). */
    rejectNext: 0,
  }
  const sessions = new Map()
  const server = createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad_request"}')
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  const challenge = (extra = '') => `Bearer ${extra}resource_metadata="${base}${METADATA_PATH}", scope="${scope}"`

  async function authenticate(req) {
    const match = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(req.headers.authorization ?? '')
    if (!match) return { status: 401, header: challenge(), error: 'invalid_request' }
    const token = match[1]
    let claims
    try {
      claims = jose.decodeJwt(token)
    } catch {
      claims = {}
    }
    const entry = { method: req.method, jti: claims.jti ?? null, aud: claims.aud ?? null, accepted: false }
    state.log.push(entry)
    const invalid = { status: 401, header: challenge('error="invalid_token", '), error: 'invalid_token' }
    if (state.rejectNext > 0) {
      state.rejectNext -= 1
      return invalid
    }
    try {
      ;({ payload: claims } = await jose.jwtVerify(token, jwks, { issuer, audience, algorithms: ['RS256'] }))
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

  function newSession() {
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => sessions.set(id, transport),
    })
    transport.onclose = () => sessions.delete(transport.sessionId)
    const mcp = new McpServer({ name: 'files-mcp', version: '1.0.0' })
    mcp.registerTool('whoami', { description: 'Who the bearer token says the caller is' }, async (extra) => ({
      content: [{ type: 'text', text: JSON.stringify({ sub: extra.authInfo?.extra?.sub, jti: extra.authInfo?.extra?.jti }) }],
    }))
    return mcp.connect(transport).then(() => transport)
  }

  async function handle(req, res) {
    const { pathname } = new URL(req.url, base)
    if (req.method === 'GET' && (pathname === METADATA_PATH || pathname === `${METADATA_PATH}/mcp`)) {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(
        JSON.stringify({
          resource: audience,
          authorization_servers: [issuer],
          scopes_supported: [scope],
          bearer_methods_supported: ['header'],
        }),
      )
      return
    }
    if (pathname !== '/mcp') {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}')
      return
    }
    const verdict = await authenticate(req)
    if (!verdict.auth) {
      res.writeHead(verdict.status, { 'content-type': 'application/json', 'www-authenticate': verdict.header })
      res.end(JSON.stringify({ error: verdict.error }))
      return
    }
    req.auth = verdict.auth
    const sessionId = req.headers['mcp-session-id']
    const transport = sessionId ? sessions.get(sessionId) : await newSession()
    if (!transport) {
      res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"unknown_session"}')
      return
    }
    await transport.handleRequest(req, res)
  }

  return {
    url: new URL(`${base}/mcp`),
    state,
    rejectNext: (n) => {
      state.rejectNext = n
    },
    close: async () => {
      for (const transport of sessions.values()) await transport.close()
      server.closeAllConnections()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
