// OBO against the stateless MCP revision (2026-07-28: no initialize handshake, no
// Mcp-Session-Id): the v2 SDK client, through createOboFetch, against a protected v2 server
// (mcp/stateless-server.mjs), with the local IdP. Counts IdP exchanges and reads the server's
// log of what each request carried. mcp.test.mjs does the same with the v1 SDK (2025 revisions).

import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client'
import { startIdp } from './idp/index.mjs'
import { newService } from './helpers.mjs'
import { startStatelessMcpServer } from './mcp/stateless-server.mjs'
import obo from '../index.js'

const { createOboFetch } = obo
const REVISION = '2026-07-28'
/** Per MCP request: a stuck call fails the test instead of hanging it. */
const REQUEST = { timeout: 5_000 }

let idp
before(async () => {
  idp = await startIdp()
})
after(() => idp?.close())

describe('MCP tool calls on the stateless revision with OBO bearer tokens', { timeout: 30_000 }, () => {
  let mcp
  let service
  let upstream
  let clients
  beforeEach(async () => {
    idp.resetCounters()
    clients = []
    mcp = await startStatelessMcpServer({ issuer: idp.issuer })
    ;({ service } = newService(idp, { retryDelayMs: 10 }))
    upstream = await idp.mintUserToken('alice')
  })
  afterEach(async () => {
    for (const client of clients) await client.close().catch(() => {})
    await mcp?.close()
    mcp = undefined
  })

  /** A v2 client through createOboFetch; pinned to the stateless revision unless `versionNegotiation` says otherwise. */
  async function connect({ versionNegotiation = { mode: { pin: REVISION } } } = {}) {
    const fetch = createOboFetch({
      user: { openidId: 'alice' },
      oboConfig: { scopes: 'api://mcp-files/files.read' },
      resolver: service,
      upstreamTokenProvider: async () => ({ access_token: upstream }),
    })
    const client = new Client({ name: 'librechat-test', version: '1.0.0' }, { versionNegotiation })
    clients.push(client)
    await client.connect(new StreamableHTTPClientTransport(mcp.url, { fetch }), REQUEST)
    return client
  }
  const whoami = async (client) => JSON.parse((await client.callTool({ name: 'whoami', arguments: {} }, REQUEST)).content[0].text)
  const exchanges = () => idp.counters.obo

  it("connects without initialize or a session, and whoami answers with alice's OBO token", async () => {
    const client = await connect()
    assert.equal(client.getProtocolEra(), 'modern')
    assert.equal(client.getNegotiatedProtocolVersion(), REVISION)
    const me = await whoami(client)
    assert.equal(me.sub, 'alice')
    assert.deepEqual(
      mcp.state.log.map((entry) => entry.rpc),
      ['server/discover', 'tools/call'],
    )
    for (const entry of mcp.state.log) {
      assert.equal(entry.session, null, 'no request carries Mcp-Session-Id')
      assert.equal(entry.version, REVISION)
      assert.ok(entry.accepted && entry.aud === 'api://mcp-files' && entry.jti === me.jti, JSON.stringify(entry))
    }
  })

  it('N tool calls cost exactly one IdP exchange', async () => {
    const client = await connect()
    const calls = 10
    const results = []
    for (let i = 0; i < calls; i++) results.push(await whoami(client))
    results.push(...(await Promise.all(Array.from({ length: calls }, () => whoami(client)))))
    assert.equal(exchanges(), 1)
    assert.equal(new Set(results.map((r) => r.jti)).size, 1)
    assert.ok(results.every((r) => r.sub === 'alice'))
    const rpcs = mcp.state.log.map((entry) => entry.rpc)
    assert.equal(rpcs.filter((rpc) => rpc === 'tools/call').length, 2 * calls)
    assert.ok(!rpcs.includes('initialize'), rpcs.join(' '))
    assert.ok(mcp.state.log.every((entry) => entry.session === null))
  })

  it('a revoked token is replaced by one forced exchange, and the new one is used from then on', async () => {
    const client = await connect()
    const old = await whoami(client)
    const before = exchanges()
    mcp.rejectNext(1)
    const renewed = await whoami(client)
    assert.equal(exchanges() - before, 1)
    assert.equal(renewed.sub, 'alice')
    assert.notEqual(renewed.jti, old.jti)
    const next = await whoami(client)
    assert.equal(next.jti, renewed.jti)
    assert.equal(exchanges() - before, 1)
    const retried = mcp.state.log.slice(-3)
    assert.deepEqual(
      retried.map((entry) => [entry.rpc, entry.accepted, entry.jti]),
      [
        ['tools/call', false, old.jti],
        ['tools/call', true, renewed.jti],
        ['tools/call', true, renewed.jti],
      ],
    )
  })

  it('a second rejection fails the call after exactly one forced exchange', async () => {
    const client = await connect()
    const before = exchanges()
    mcp.rejectNext(2)
    await assert.rejects(whoami(client), /invalid_token/)
    assert.equal(exchanges() - before, 1)
    assert.equal(mcp.state.rejectNext, 0)
  })

  it("refuses a 2025-era client's initialize (the log would show one)", async () => {
    await assert.rejects(connect({ versionNegotiation: { mode: 'legacy' } }), /Unsupported protocol version/)
    assert.deepEqual(
      mcp.state.log.map((entry) => [entry.rpc, entry.accepted]),
      [['initialize', true]],
    )
  })
})
