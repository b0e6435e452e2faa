// OBO where it is used: the MCP SDK client, through createOboFetch, against a protected MCP
// server, with the local IdP. Counts IdP exchanges and the bearers the server saw.

import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startIdp, CLIENTS } from './idp/index.mjs'
import { startMcpServer } from './mcp/server.mjs'
import obo from '../index.js'

const { OboTokenService, OboTokenResolutionError, createOboFetch } = obo
const alice = { openidId: 'alice' }

let idp
let mcp
before(async () => {
  idp = await startIdp()
})
after(() => idp.close())

describe('MCP tool calls with OBO bearer tokens', () => {
  let service
  let upstream
  let clients
  beforeEach(async () => {
    idp.resetCounters()
    mcp = await startMcpServer({ issuer: idp.issuer })
    service = new OboTokenService({
      issuer: idp.issuer,
      clientId: CLIENTS.post.clientId,
      clientSecret: CLIENTS.post.clientSecret,
      retryDelayMs: 10,
    })
    upstream = await idp.mintUserToken('alice')
    clients = []
  })
  afterEach(async () => {
    for (const client of clients) await client.close().catch(() => {})
    await mcp.close()
  })

  async function connect({ scopes = 'api://mcp-files/files.read' } = {}) {
    const fetch = createOboFetch({
      user: alice,
      oboConfig: { scopes },
      resolver: service,
      upstreamTokenProvider: async () => ({ access_token: upstream }),
    })
    const client = new Client({ name: 'librechat-test', version: '1.0.0' })
    clients.push(client)
    await client.connect(new StreamableHTTPClientTransport(mcp.url, { fetch }))
    await streamOpened()
    return client
  }
  /**
   * The SDK opens its GET event stream after connecting; wait (at most 2 s) until the server has
   * accepted it, so it does not race a test's rejections or assertions (its log entry is written
   * before the bearer is verified).
   */
  async function streamOpened() {
    for (let i = 0; i < 100 && !mcp.state.log.some((entry) => entry.method === 'GET' && entry.accepted); i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
  }
  const whoami = async (client) => JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text)
  const exchanges = () => idp.counters.obo

  it('cold connect makes one exchange and every handshake request carries the OBO token', async () => {
    await connect()
    assert.equal(exchanges(), 1)
    assert.ok(mcp.state.log.length >= 2, `handshake requests: ${mcp.state.log.length}`)
    assert.ok(mcp.state.log.every((entry) => entry.accepted && entry.aud === 'api://mcp-files'))
    assert.equal(new Set(mcp.state.log.map((entry) => entry.jti)).size, 1)
  })

  it('tool calls with a cached token make no exchange', async () => {
    const client = await connect()
    const before = exchanges()
    const first = await whoami(client)
    const second = await whoami(client)
    assert.equal(first.sub, 'alice')
    assert.equal(second.jti, first.jti)
    assert.equal(exchanges() - before, 0)
  })

  it('a revoked token is replaced by one forced exchange, and the new one is used from then on', async () => {
    const client = await connect()
    const old = await whoami(client)
    const before = exchanges()
    mcp.rejectNext(1)
    const renewed = await whoami(client)
    assert.equal(exchanges() - before, 1)
    assert.notEqual(renewed.jti, old.jti)
    const next = await whoami(client)
    assert.equal(next.jti, renewed.jti)
    assert.equal(exchanges() - before, 1)
  })

  it('a second rejection fails the call after exactly one forced exchange', async () => {
    const client = await connect()
    const before = exchanges()
    mcp.rejectNext(2)
    await assert.rejects(whoami(client), /invalid_token/)
    assert.equal(exchanges() - before, 1)
  })

  it('a failed forced re-exchange says so and does not loop', async () => {
    const client = await connect()
    const tokenRequests = idp.counters.token
    mcp.rejectNext(1)
    idp.injectFaults({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'AADSTS50013: Assertion failed signature validation.', error_codes: [50013] },
    })
    const err = await whoami(client).catch((e) => e)
    assert.ok(err instanceof OboTokenResolutionError, String(err))
    assert.equal(err.reason, 'exchange_failed')
    assert.equal(err.retryable, false)
    assert.equal(err.message, 'The identity provider rejected the OBO token exchange.')
    assert.equal(err.hint, 'Re-authenticate the user or verify the configured OBO scopes and retry.')
    assert.equal(err.cause.error, 'invalid_grant')
    assert.equal(idp.counters.token - tokenRequests, 1)
  })

  it('403 insufficient_scope for a scope not allowed to step up: no re-exchange, the 403 reaches the client', async () => {
    await mcp.close()
    mcp = await startMcpServer({ issuer: idp.issuer, scope: 'files.write' })
    await assert.rejects(connect({ scopes: 'api://mcp-files/files.read' }), /insufficient_scope/)
    assert.equal(exchanges(), 1, 'the same scopes again would not help')
    assert.deepEqual(
      mcp.state.log.map((entry) => entry.accepted),
      [false],
    )
  })

  it('50 parallel tool calls on a cold cache make one exchange', async () => {
    const client = await connect()
    service.clear()
    const before = exchanges()
    const results = await Promise.all(Array.from({ length: 50 }, () => whoami(client)))
    assert.equal(exchanges() - before, 1)
    assert.equal(new Set(results.map((r) => r.jti)).size, 1)
  })

  it('checks its arguments when it is created', () => {
    const provider = async () => null
    assert.throws(() => createOboFetch({ user: alice, oboConfig: {}, resolver: service, upstreamTokenProvider: provider }), {
      name: 'TypeError',
      message: 'oboConfig.scopes must be a string, got undefined',
    })
    assert.throws(() => createOboFetch({ user: alice, oboConfig: { scopes: 's' }, resolver: 'svc', upstreamTokenProvider: provider }), {
      message: 'resolver must be an OboTokenService or a function, got string',
    })
    assert.throws(
      () => createOboFetch({ user: alice, oboConfig: { scopes: 's' }, resolver: service, upstreamTokenProvider: provider, fetch: 1 }),
      {
        message: 'fetch must be a function, got number',
      },
    )
  })

  it("never accepts the user's own upstream token", async () => {
    const response = await fetch(mcp.url, {
      method: 'POST',
      headers: { authorization: `Bearer ${upstream}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    })
    assert.equal(response.status, 401)
    assert.match(
      response.headers.get('www-authenticate'),
      /error="invalid_token", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource", scope="files\.read"/,
    )
    const missing = await fetch(mcp.url, { method: 'POST', body: '{}' })
    assert.equal(missing.status, 401)
    await connect()
    assert.ok(mcp.state.log.filter((entry) => entry.accepted).every((entry) => entry.aud === 'api://mcp-files'))
    assert.ok(!mcp.state.log.some((entry) => entry.accepted && entry.aud === 'api://middle-tier'))
    const metadata = await (await fetch(new URL('/.well-known/oauth-protected-resource', mcp.url))).json()
    assert.deepEqual(metadata.authorization_servers, [idp.issuer])
  })
})
