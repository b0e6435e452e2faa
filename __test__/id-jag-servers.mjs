// The three servers of an ID-JAG exchange on 127.0.0.1, as the ID-JAG suites start them: the
// enterprise IdP (leg 1), an MCP authorization server that accepts its ID-JAGs (leg 2), and an
// MCP server whose tokens that authorization server issues.

import { before, after, beforeEach } from 'node:test'
import { startIdp } from './idp/index.mjs'
import { ID_JAG_PROFILE } from './idp/id-jag.mjs'
import { startMcpAuthorizationServer, AS_CLIENTS } from './idp/mcp-as.mjs'
import { startMcpServer } from './mcp/server.mjs'

/** Stops whichever of the three were started. */
function closeAll({ idp, as, mcp }) {
  return Promise.allSettled([mcp?.close(), as?.close(), idp?.close()])
}

/**
 * Starts the three, the MCP server granting `scope`. If one fails to start, those already
 * started are stopped before the error is thrown; `close` stops all three.
 */
async function startIdJagServers({ scope = 'files.read' } = {}) {
  const servers = {}
  try {
    servers.idp = await startIdp()
    servers.as = await startMcpAuthorizationServer({ idpIssuer: servers.idp.issuer })
    servers.mcp = await startMcpServer({ issuer: servers.as.issuer, audience: 'self', scope, clientId: AS_CLIENTS.secret.clientId })
  } catch (err) {
    await closeAll(servers)
    throw err
  }
  return { ...servers, close: () => closeAll(servers) }
}

/**
 * The state each test starts from: counters reset, the IdP issuing ID-JAGs for the
 * authorization server's `secret` client, which issues tokens for the MCP server under the
 * ID-JAG profile.
 */
function readyIdJag({ idp, as, mcp }) {
  idp.resetCounters()
  as.resetCounters()
  idp.trustAuthorizationServer(as.issuer, { clientId: AS_CLIENTS.secret.clientId })
  as.setResource(mcp.resource)
  as.setGrantProfiles([ID_JAG_PROFILE])
}

/**
 * The three for the enclosing suite: started before its tests, stopped after them, and
 * `readyIdJag` before each test. The object is filled when the suite starts.
 */
export function useIdJagServers(options) {
  const servers = {}
  before(async () => {
    Object.assign(servers, await startIdJagServers(options))
  })
  after(() => servers.close?.())
  beforeEach(() => readyIdJag(servers))
  return servers
}
