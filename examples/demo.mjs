// `npm run demo`: the whole On-Behalf-Of flow on embedded defaults, no configuration.
//
// Starts the local IdP on 127.0.0.1, signs a user in, exchanges the user's token for two
// MCP servers' scopes, shows a cache hit, then 100 concurrent tool calls on a cold
// cache served by one IdP request, and prints the service's counters.

import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { startIdp, CLIENTS, TENANT } from '../__test__/idp/index.mjs'
import { startMcpServer } from '../__test__/mcp/server.mjs'
import { HAS_REDIS, startRedis } from '../__test__/redis.mjs'
import { startWorkers, stopWorkers } from '../__test__/workers.mjs'
import obo from '../index.js'

/** Two MCP servers as `librechat.yaml` would declare them, with the resource each one is. */
const MCP_SERVERS = {
  'files-mcp': { scopes: 'api://mcp-files/files.read api://mcp-files/files.write', audience: 'api://mcp-files' },
  'mail-mcp': { scopes: 'api://mcp-mail/mail.read', audience: 'api://mcp-mail' },
}

const idp = await startIdp()
try {
  console.log(`Local IdP (oidc-provider) at ${idp.issuer}\n`)
  const service = new obo.OboTokenService({
    issuer: idp.issuer,
    clientId: CLIENTS.post.clientId,
    clientSecret: CLIENTS.post.clientSecret,
  })

  const user = { openidId: 'alice', tenantId: TENANT }
  const upstream = await idp.mintUserToken('alice')
  const login = decode(upstream)
  console.log(`1. alice signs in to LibreChat: access token for aud=${login.aud}, expires in ${login.exp - login.iat} s`)

  console.log('2. One OBO exchange per MCP server (obo.scopes from librechat.yaml):')
  for (const [server, { scopes, audience }] of Object.entries(MCP_SERVERS)) {
    const token = await service.exchangeOboToken(user, upstream, scopes)
    const claims = await idp.verify(token.access_token, audience)
    console.log(
      `   ${server.padEnd(10)} aud=${claims.aud} scp="${claims.scp}" sub=${claims.sub} azp=${claims.azp} ` +
        `expires_in=${token.expires_in}s (signature verified against the IdP's JWKS)`,
    )
  }
  console.log(`   IdP token requests so far: ${idp.counters.obo}`)

  const samples = []
  for (let i = 0; i < 1000; i++) {
    const started = performance.now()
    await service.exchangeOboToken(user, upstream, MCP_SERVERS['files-mcp'].scopes)
    samples.push((performance.now() - started) * 1000)
  }
  const median = samples.sort((a, b) => a - b)[500].toFixed(1)
  console.log(
    `3. The next 1,000 tool calls on files-mcp: served from the cache, median ${median} µs each, IdP token requests still ${idp.counters.obo}`,
  )

  service.invalidate(user)
  const before = idp.counters.obo
  const calls = Array.from({ length: 100 }, () => service.exchangeOboToken(user, upstream, MCP_SERVERS['mail-mcp'].scopes))
  const tokens = await Promise.all(calls)
  console.log(
    `4. alice's cached tokens dropped (as at logout), then 100 concurrent tool calls on mail-mcp: ` +
      `${tokens.length} tool calls, ${idp.counters.obo - before} IdP request, ` +
      `${new Set(tokens.map((t) => t.access_token)).size} distinct token`,
  )

  await mcpToolCall(service, user, upstream)
  console.log('\nservice.stats():', service.stats())
  await severalInstances(user)
} finally {
  await idp.close()
}

/** An MCP SDK client calls `whoami` on the protected files-mcp server with the OBO token. */
async function mcpToolCall(service, user, upstream) {
  const mcp = await startMcpServer({ issuer: idp.issuer })
  const client = new Client({ name: 'librechat-demo', version: '1.0.0' })
  try {
    const fetch = obo.createOboFetch({
      user,
      oboConfig: { scopes: MCP_SERVERS['files-mcp'].scopes },
      resolver: service,
      upstreamTokenProvider: async () => ({ access_token: upstream }),
    })
    const whoami = async () => JSON.parse((await client.callTool({ name: 'whoami', arguments: {} })).content[0].text)
    const atStart = idp.counters.obo
    await client.connect(new StreamableHTTPClientTransport(mcp.url, { fetch }))
    const forConnect = idp.counters.obo - atStart
    const seen = await whoami()
    const accepted = mcp.state.log.filter((entry) => entry.accepted && entry.jti === seen.jti).length
    console.log(
      `5. MCP SDK client → files-mcp, tool whoami: the server saw sub=${seen.sub}, token jti=${seen.jti.slice(0, 8)}…; ` +
        `${accepted} of ${mcp.state.log.length} requests carried that OBO token; IdP requests: ${forConnect} for the connect ` +
        `(step 4 dropped alice's tokens), ${idp.counters.obo - atStart - forConnect} for the tool call`,
    )
    const beforeRevocation = idp.counters.obo
    mcp.rejectNext(1)
    const renewed = await whoami()
    console.log(
      `6. files-mcp revokes that token (401): ${idp.counters.obo - beforeRevocation} re-exchange, the call is retried and ` +
        `succeeds with jti=${renewed.jti.slice(0, 8)}…`,
    )
  } finally {
    await client.close()
    await mcp.close()
  }
}

function decode(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'))
}

/**
 * 7. Two LibreChat instances (two node processes) sharing one exchange through the shared
 * Redis tier, on a redis-server started here on a free loopback port and stopped after.
 * Without redis-server on the PATH, says how to see it.
 */
async function severalInstances(user) {
  if (!HAS_REDIS) {
    console.log(
      '\n7. Several instances: skipped, redis-server is not on the PATH. Install it (Debian/Ubuntu: apt-get install redis-server) ' +
        'and run `npm run demo` again to see two processes share one exchange through Redis.',
    )
    return
  }
  const redis = await startRedis()
  const workers = []
  try {
    const sharedCache = { url: redis.url, keyPrefix: 'demo', encryptionKeys: [randomBytes(32).toString('hex')] }
    const options = { issuer: idp.issuer, clientId: CLIENTS.post.clientId, clientSecret: CLIENTS.post.clientSecret, sharedCache }
    workers.push(...(await startWorkers(2, options)))
    const [a, b] = workers
    const upstream = await idp.mintUserToken('alice')
    const call = { user, token: upstream, scopes: MCP_SERVERS['files-mcp'].scopes }
    const before = idp.counters.obo
    const first = await a.call('exchange', call)
    const second = await b.call('exchange', call)
    const { stats } = await b.call('stats')
    console.log(
      `\n7. Two instances (node processes ${a.pid} and ${b.pid}) with a redis-server on port ${redis.port}: instance A exchanged ` +
        `alice's token, instance B served ${first.fingerprints[0] === second.fingerprints[0] ? 'the same token' : 'another token'} ` +
        `from Redis (sharedHits ${stats.sharedHits}); IdP requests for both: ${idp.counters.obo - before}`,
    )
  } finally {
    await stopWorkers(workers)
    await redis.stop()
  }
}
