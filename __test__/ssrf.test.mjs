// The SSRF policy on the URLs an MCP server hands to ID-JAG discovery (a 401's
// resource_metadata, the authorization servers its metadata lists, their endpoints), end to end
// through createOboFetch. Loopback targets are "bait" servers that count every connection; the
// cloud metadata address and the private one are refused before any connection, so no test ever
// dials an address off this machine.

import { describe, it, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import { lookup } from 'node:dns/promises'
import { hostname } from 'node:os'
import { USERS, TENANT } from './idp/index.mjs'
import { AS_CLIENTS } from './idp/mcp-as.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'
import { newService, rejection } from './helpers.mjs'
import obo from '../index.js'

const { createOboFetch, OboTokenService } = obo
const SCOPE = 'files.read'
const alice = { openidId: USERS.alice.oid, tenantId: TENANT }

/** An http server on 127.0.0.1 that counts connections and requests; `answer(req, res)` replies. */
async function listen(answer) {
  const counts = { connections: 0, requests: 0 }
  const server = createServer((req, res) => {
    counts.requests += 1
    answer(req, res)
  })
  server.on('connection', () => {
    counts.connections += 1
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    counts,
    close: () => new Promise((resolve) => server.close(resolve).closeAllConnections()),
  }
}

/** An MCP server without well-known metadata whose 401 names `hint` as its resource_metadata. */
const challenger = (hint) =>
  listen((req, res) => {
    if (req.url.startsWith('/.well-known/')) res.writeHead(404).end()
    else res.writeHead(401, { 'www-authenticate': `Bearer resource_metadata="${hint()}"` }).end()
  })

describe('SSRF policy for URLs from MCP servers', { timeout: 60_000 }, () => {
  const servers = useIdJagServers({ scope: SCOPE })
  /** Counts what reaches it; stands for an internal service on this machine. */
  let bait
  let hint = () => ''
  let server
  before(async () => {
    bait = await listen((_, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'))
    server = await challenger(() => hint())
  })
  after(() => Promise.allSettled([server?.close(), bait?.close()]))
  beforeEach(() => {
    servers.as.setMetadataOverride(undefined)
    servers.mcp.setMetadataOverride(undefined)
    bait.counts.connections = 0
    bait.counts.requests = 0
  })

  const service = (allowedDomains) =>
    newService(servers.idp, {
      grantType: 'id_jag',
      authorizationServer: { clientId: AS_CLIENTS.secret.clientId, clientSecret: AS_CLIENTS.secret.clientSecret },
      maxRetries: 0,
      allowedDomains,
    }).service
  /** One request through createOboFetch to the challenger, whose 401 names `target`. */
  async function followHint(target, allowedDomains) {
    hint = () => target
    const idToken = await servers.idp.mintIdToken('alice')
    const fetch = createOboFetch({
      user: alice,
      oboConfig: { profile: 'id-jag', scopes: SCOPE },
      resolver: service(allowedDomains),
      upstreamTokenProvider: async () => ({ id_token: idToken }),
    })
    const err = await rejection(fetch(`${server.url}/mcp`, { method: 'POST', body: '{}' }))
    return err.cause ?? err
  }

  it('a 401 naming the cloud metadata address or a private one is refused before any connection', async () => {
    for (const [target, host] of [
      ['https://169.254.169.254/latest/meta-data/iam/security-credentials/', '169.254.169.254'],
      ['https://10.1.2.3/.well-known/oauth-protected-resource', '10.1.2.3'],
      ['https://[fd00:ec2::254]/latest/meta-data/', '[fd00:ec2::254]'],
      ['https://metadata.google.internal/computeMetadata/v1/', 'metadata.google.internal'],
    ]) {
      const err = await followHint(target)
      assert.equal(err.code, 'ERR_SSRF_BLOCKED', `${target}: ${err.message}`)
      assert.equal(err.idJagStep, 'discovery')
      assert.equal(err.retryable, false)
      assert.ok(
        err.message.includes(`leads to the ${host.includes('.internal') ? 'internal host' : 'private or reserved address'} ${host};`),
        err.message,
      )
      assert.ok(!err.message.includes('/latest') && !err.message.includes('computeMetadata'), 'the host, not the URL')
    }
    assert.equal(servers.idp.counters.idJag, 0, 'nothing was asked of the IdP')
  })

  it('loopback in any spelling gets no connection; listed in allowedDomains, it does', async () => {
    const targets = [
      [`https://[::ffff:127.0.0.1]:${bait.port}/meta`, '[::ffff:127.0.0.1]'],
      [`https://localhost:${bait.port}/meta`, 'localhost'],
      [`https://app.localhost:${bait.port}/meta`, '*.localhost'],
      [`https://127.0.0.1:${bait.port}/meta`, `127.0.0.1:${bait.port}`],
    ]
    for (const [target] of targets) {
      const err = await followHint(target)
      assert.equal(err.code, 'ERR_SSRF_BLOCKED', `${target}: ${err.message}`)
    }
    assert.equal(bait.counts.connections, 0)
    for (const [target, pattern] of targets) {
      if (target.includes('app.localhost') && !(await resolvesToLoopback('app.localhost'))) continue
      const before = bait.counts.connections
      await followHint(target, [pattern])
      assert.ok(bait.counts.connections > before, `${target} listed as ${pattern} reaches the server`)
    }
  })

  it('a name that resolves to loopback is refused after resolution', async (t) => {
    const name = hostname()
    if (!(await resolvesToLoopback(name))) return t.skip(`${name} does not resolve to loopback only here`)
    const err = await followHint(`https://${name}:${bait.port}/meta`)
    assert.equal(err.code, 'ERR_SSRF_BLOCKED', err.message)
    assert.match(err.message, new RegExp(`leads to ${name}, which resolves to the private or reserved address 127\\.`))
    assert.equal(bait.counts.connections, 0)
  })

  it('metadata listing an internal authorization server is refused: nothing reaches it, no ID-JAG is minted', async () => {
    const err = await rejection(
      service().exchangeOboToken(alice, await servers.idp.mintIdToken('alice'), SCOPE, true, undefined, { resource: servers.mcp.resource }),
    )
    assert.equal(err.code, 'ERR_SSRF_BLOCKED', err.message)
    assert.equal(err.idJagStep, 'discovery')
    assert.equal(servers.as.counters.metadata, 0)
    assert.equal(servers.idp.counters.idJag, 0)
    servers.mcp.setMetadataOverride({ authorization_servers: ['https://169.254.169.254'] })
    const metadata = await rejection(
      service().exchangeOboToken(alice, await servers.idp.mintIdToken('alice'), SCOPE, true, undefined, { resource: servers.mcp.resource }),
    )
    assert.equal(metadata.code, 'ERR_SSRF_BLOCKED', metadata.message)
    assert.match(metadata.message, /169\.254\.169\.254/)
  })

  it('with allowedDomains, a URL outside it is refused, a token endpoint included', async () => {
    servers.as.setMetadataOverride({ token_endpoint: 'https://10.1.2.3/token' })
    const err = await rejection(
      service(['127.0.0.1']).exchangeOboToken(alice, await servers.idp.mintIdToken('alice'), SCOPE, true, undefined, {
        resource: servers.mcp.resource,
      }),
    )
    assert.equal(err.code, 'ERR_URL_NOT_ALLOWED', err.message)
    assert.match(err.message, /leads to 10\.1\.2\.3, which allowedDomains does not list/)
    assert.equal(servers.idp.counters.idJag, 0, 'refused at discovery, before leg 1')
    servers.as.setMetadataOverride(undefined)
    servers.as.resetCounters()
    const other = await rejection(
      service(['localhost']).exchangeOboToken(alice, await servers.idp.mintIdToken('alice'), SCOPE, true, undefined, {
        resource: servers.mcp.resource,
      }),
    )
    assert.equal(other.code, 'ERR_URL_NOT_ALLOWED')
    assert.equal(servers.as.counters.metadata, 0)
  })

  it("the operator's authorizationServer.issuer is trusted as configured", async () => {
    const trusted = newService(servers.idp, {
      grantType: 'id_jag',
      authorizationServer: {
        issuer: servers.as.issuer,
        clientId: AS_CLIENTS.secret.clientId,
        clientSecret: AS_CLIENTS.secret.clientSecret,
      },
    }).service
    const token = await trusted.exchangeOboToken(alice, await servers.idp.mintIdToken('alice'), SCOPE, true, undefined, {
      resource: servers.mcp.resource,
    })
    assert.equal((await servers.as.verify(token.access_token, servers.mcp.resource)).sub, 'alice')
  })

  it('allowedDomains is checked at construction, naming the option', () => {
    const base = { issuer: servers.idp.issuer, clientId: 'c', clientSecret: 's' }
    assert.throws(() => new OboTokenService({ ...base, allowedDomains: 'example.com' }), {
      name: 'TypeError',
      message: /^options\.allowedDomains must be an array of strings/,
    })
    assert.throws(() => new OboTokenService({ ...base, allowedDomains: ['example.com', 'https://'] }), {
      message: /^options\.allowedDomains entry 1 \('https:\/\/'\) is not a domain pattern/,
    })
    for (const allowedDomains of [[], ['*.example.com', 'https://as.example.com:8443', '[::1]:3000']]) {
      assert.ok(new OboTokenService({ ...base, allowedDomains }))
    }
  })
})

/** Whether every address `name` resolves to here is a loopback one. */
async function resolvesToLoopback(name) {
  const found = await lookup(name, { all: true }).catch(() => [])
  return found.length > 0 && found.every(({ address }) => address.startsWith('127.') || address === '::1')
}
