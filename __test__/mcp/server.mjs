// A protected MCP server for tests and the demo: the v1 MCP SDK's streamable HTTP transport
// (2025-era revisions: initialize handshake, Mcp-Session-Id) on 127.0.0.1 behind the bearer
// gate of bearer.mjs, on every request (POST, GET, DELETE). One tool, `whoami`, returns the
// caller's `sub` and the token's `jti`.

import { randomUUID } from 'node:crypto'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { listenProtected } from './bearer.mjs'

/**
 * @param {{ issuer: string, audience?: string, scope?: string, clientId?: string, authorizationServers?: string[], metadataOverride?: object }} options
 *   `audience: 'self'` makes the resource this server's own MCP URL (`url`); see bearer.mjs.
 */
export async function startMcpServer({
  issuer,
  audience = 'api://mcp-files',
  scope = 'files.read',
  clientId = 'middle-tier',
  ...metadata
}) {
  const sessions = new Map()
  const { base, gate, close } = await listenProtected({ issuer, audience, scope, clientId, ...metadata }, (req, res) => handle(req, res))

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
    const auth = await gate.admit(req, res)
    if (!auth) return
    req.auth = auth
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
    /** The resource its bearers must be addressed to (the `url` for audience 'self'). */
    resource: gate.resource,
    state: gate.state,
    rejectNext: gate.rejectNext,
    setMetadataOverride: gate.setMetadataOverride,
    close: async () => {
      for (const transport of sessions.values()) await transport.close()
      await close()
    },
  }
}
