// The protected MCP server of server.mjs on the v2 MCP SDK, serving only the stateless
// 2026-07-28 revision (no initialize handshake, no Mcp-Session-Id): `createMcpHandler` builds a
// fresh McpServer per request (`legacy: 'reject'` refuses 2025-era traffic) and `toNodeHandler`
// mounts it on node:http, behind the same bearer gate (bearer.mjs), whose AuthInfo reaches the
// tool as `ctx.http.authInfo`. Each log entry also notes the JSON-RPC method, the request's
// Mcp-Session-Id and MCP-Protocol-Version headers.

import { McpServer, createMcpHandler } from '@modelcontextprotocol/server'
import { toNodeHandler } from '@modelcontextprotocol/node'
import { listenProtected } from './bearer.mjs'

const MAX_BODY = 1 << 20
const NOT_JSON = Symbol('not JSON')

/**
 * @param {{ issuer: string, audience?: string, scope?: string, clientId?: string, authorizationServers?: string[], metadataOverride?: object }} options
 *   `audience: 'self'` makes the resource this server's own MCP URL (`url`); see bearer.mjs.
 */
export async function startStatelessMcpServer({
  issuer,
  audience = 'api://mcp-files',
  scope = 'files.read',
  clientId = 'middle-tier',
  ...metadata
}) {
  const handler = createMcpHandler(
    () => {
      const mcp = new McpServer({ name: 'files-mcp', version: '2.0.0' })
      mcp.registerTool('whoami', { description: 'Who the bearer token says the caller is' }, async (ctx) => ({
        content: [{ type: 'text', text: JSON.stringify({ sub: ctx.http?.authInfo?.extra?.sub, jti: ctx.http?.authInfo?.extra?.jti }) }],
      }))
      return mcp
    },
    { legacy: 'reject' },
  )
  const serve = toNodeHandler(handler)
  const { base, gate, close } = await listenProtected({ issuer, audience, scope, clientId, ...metadata }, (req, res) => handle(req, res))

  async function handle(req, res) {
    const body = req.method === 'POST' ? await readJson(req) : undefined
    const messages = Array.isArray(body) ? body : [body]
    const auth = await gate.admit(req, res, {
      rpc: body === undefined || body === NOT_JSON ? null : messages.map((message) => message?.method ?? null).join(','),
      session: req.headers['mcp-session-id'] ?? null,
      version: req.headers['mcp-protocol-version'] ?? null,
    })
    if (!auth) return
    if (body === NOT_JSON) {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"bad_request"}')
      return
    }
    req.auth = auth
    await serve(req, res, body)
  }

  return {
    url: new URL(`${base}/mcp`),
    /** The resource its bearers must be addressed to (the `url` for audience 'self'). */
    resource: gate.resource,
    state: gate.state,
    rejectNext: gate.rejectNext,
    setMetadataOverride: gate.setMetadataOverride,
    close: async () => {
      await handler.close()
      await close()
    },
  }
}

/** The request's JSON body, or NOT_JSON (answered 400 once the bearer is admitted); over 1 MiB throws (answered 400). */
async function readJson(req) {
  const chunks = []
  let size = 0
  for await (const chunk of req) {
    size += chunk.length
    if (size > MAX_BODY) throw new Error('request body too large')
    chunks.push(chunk)
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch {
    return NOT_JSON
  }
}
