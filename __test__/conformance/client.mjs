#!/usr/bin/env node
// The client that @modelcontextprotocol/conformance runs for its client scenarios: this package
// as LibreChat uses it. An OboTokenService with grantType 'id_jag' (one per MCP authorization
// server, as LibreChat builds from an `obo: { profile: id-jag }` block) is the resolver of
// createOboFetch, and the MCP SDK's client (v1, LibreChat's) sends everything through that fetch:
// connect, list the tools, call one.
//
// The suite starts it as `<command> <server URL>`, with MCP_CONFORMANCE_SCENARIO and, for
// scenarios that have one, MCP_CONFORMANCE_CONTEXT (JSON). It runs on the Node that runs the
// tests (the suite itself needs Node 22; see conformance.test.mjs). It exits 0 once the tool call
// answered, else 1 with the error's message, code and ID-JAG step on stderr.
//
// The suite's servers are all on http://localhost:<port>, which the SSRF policy refuses for URLs
// an MCP server hands out unless `allowedDomains` lists the host, as an operator lists theirs in
// `mcpSettings.allowedDomains`.

import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import obo from '../../index.js'

const { OboTokenService, createOboFetch } = obo

/** How long one MCP request may take; the suite stops the client after 30 s anyway. */
const REQUEST = { timeout: 10_000 }
/** The scopes of the `obo` block: the suite's servers require none, and ignore what is asked. */
const SCOPES = 'mcp:tools'
/**
 * The conformance IdP authenticates no client at its token endpoint and its context carries no
 * secret, while this package (as LibreChat) always presents one: a placeholder it ignores.
 */
const IGNORED_IDP_SECRET = 'not-checked-by-the-conformance-idp'

/**
 * What the scenario tells the client. Without a context (auth/resource-mismatch), the client is
 * configured as an operator would be for an IdP it must never reach: a closed loopback port, and
 * an ID token that only has to look like one, since discovery is refused before leg 1.
 */
function scenarioContext() {
  const raw = process.env.MCP_CONFORMANCE_CONTEXT
  if (raw) return JSON.parse(raw)
  const unreachable = 'http://127.0.0.1:9'
  return {
    client_id: 'conformance-client',
    client_secret: 'conformance-secret',
    idp_client_id: 'conformance-idp-client',
    idp_id_token: placeholderIdToken(),
    idp_issuer: unreachable,
    idp_token_endpoint: `${unreachable}/token`,
  }
}

/** A JWS-shaped ID token (ES256 header, an hour's `exp`) that nothing will verify. */
function placeholderIdToken() {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const exp = Math.floor(Date.now() / 1000) + 3600
  return `${part({ alg: 'ES256', typ: 'JWT' })}.${part({ sub: 'demo-user', exp })}.${Buffer.from('unsigned').toString('base64url')}`
}

async function main(serverUrl) {
  if (!serverUrl) throw new TypeError('usage: client.mjs <MCP server URL>')
  const context = scenarioContext()
  const service = new OboTokenService({
    issuer: context.idp_issuer,
    tokenEndpoint: context.idp_token_endpoint,
    clientId: context.idp_client_id,
    clientSecret: IGNORED_IDP_SECRET,
    grantType: 'id_jag',
    // No clientAuthMethod: the authorization server's metadata decides (client_secret_basic here).
    authorizationServer: { clientId: context.client_id, clientSecret: context.client_secret },
    requestTimeoutMs: 5_000,
    allowedDomains: [new URL(serverUrl).hostname],
  })
  const fetch = createOboFetch({
    user: { id: 'conformance-user', provider: 'openid', openidId: 'demo-user' },
    oboConfig: { profile: 'id-jag', scopes: SCOPES },
    resolver: service,
    upstreamTokenProvider: async () => ({ id_token: context.idp_id_token }),
  })
  const client = new Client({ name: 'librechat-obo-conformance', version: '1.0.0' })
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(serverUrl), { fetch }), REQUEST)
    const { tools } = await client.listTools(undefined, REQUEST)
    const result = await client.callTool({ name: tools[0].name, arguments: {} }, undefined, REQUEST)
    console.log(`called ${tools[0].name}: ${JSON.stringify(result.content)}`)
  } finally {
    await client.close().catch(() => {})
  }
}

main(process.argv[2]).then(
  () => process.exit(0),
  (err) => {
    const cause = err?.cause
    const tags = [err?.reason, cause?.code, cause?.idJagStep && `step ${cause.idJagStep}`].filter(Boolean)
    console.error(
      `${process.env.MCP_CONFORMANCE_SCENARIO ?? 'client'}: ${err?.message ?? err}${tags.length ? ` (${tags.join(', ')})` : ''}`,
    )
    if (cause?.message && cause.message !== err.message) console.error(`cause: ${cause.message}`)
    process.exit(1)
  },
)
