// ID-JAG (the MCP spec's Enterprise-Managed Authorization) through this package, end to end on
// 127.0.0.1: the enterprise IdP (idp/index.mjs with idp/id-jag.mjs) mints ID-JAGs, a second
// oidc-provider (idp/mcp-as.mjs) stands for the MCP server's own authorization server and
// accepts an ID-JAG only after checking signature, typ, aud, resource, client_id, expiry and
// jti replay, and the protected MCP server (v1 SDK) admits only that server's tokens for its own
// URL. The service discovers the chain (RFC 9728, RFC 8414), runs both legs, and caches the
// final token like an OBO token.

import { describe, it, before, after, beforeEach, afterEach } from 'node:test'
import assert from 'node:assert/strict'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { USERS, TENANT } from './idp/index.mjs'
import { ID_JAG_PROFILE, REFRESH_TOKEN_TYPE } from './idp/id-jag.mjs'
import { startMcpAuthorizationServer, AS_CLIENTS } from './idp/mcp-as.mjs'
import { startMcpServer } from './mcp/server.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'
import { newService, rejection } from './helpers.mjs'
import obo from '../index.js'

const { createOboFetch, resolveOboToken } = obo
const SCOPE = 'files.read'
const REQUEST = { timeout: 5_000 }
/** Every server here is on 127.0.0.1, which the SSRF policy refuses unless `allowedDomains` lists it. */
const LOOPBACK = ['127.0.0.1']
const userOf = (name) => ({ openidId: USERS[name].oid, tenantId: TENANT })

describe('ID-JAG through OboTokenService and createOboFetch', { timeout: 60_000 }, () => {
  // readyIdJag readies the IdP and `as` before each test; `other` is readied the same way here.
  const servers = useIdJagServers({ scope: SCOPE })
  /** A second authorization server, trusted by the IdP, that the first one's metadata may point at. */
  let other
  const clients = []
  before(async () => {
    other = await startMcpAuthorizationServer({ idpIssuer: servers.idp.issuer })
  })
  after(() => other?.close())
  beforeEach(() => {
    servers.idp.trustAuthorizationServer(other.issuer, { clientId: AS_CLIENTS.secret.clientId })
    other.resetCounters()
    other.setResource(servers.mcp.resource)
    other.setGrantProfiles([ID_JAG_PROFILE])
    for (const server of [servers.as, other]) {
      server.setMetadataOverride(undefined)
      server.setTokenTtl(3600)
    }
    servers.mcp.setMetadataOverride(undefined)
  })
  afterEach(async () => {
    for (const client of clients.splice(0)) await client.close().catch(() => {})
  })

  /** A fresh service (its own chain cache) for ID-JAG at `as`, with the AS client `client`. */
  function idJagService(options = {}, client = AS_CLIENTS.secret) {
    const authorizationServer = { clientId: client.clientId, clientAuthMethod: client.method }
    if (client.clientSecret) authorizationServer.clientSecret = client.clientSecret
    else
      Object.assign(authorizationServer, { clientAssertionKey: servers.as.clientKeys.key.privateKeyPem, clientAssertionKeyId: client.kid })
    return newService(servers.idp, { grantType: 'id_jag', authorizationServer, allowedDomains: LOOPBACK, ...options })
  }
  const exchange = (service, idToken, options = {}) =>
    service.exchangeOboToken(userOf('alice'), idToken, SCOPE, true, undefined, { resource: servers.mcp.resource, ...options })
  /** Alice's createOboFetch for an id-jag block without a resource; the live session's token set is `tokens`. */
  const aliceFetch = (service, tokens) =>
    createOboFetch({
      user: userOf('alice'),
      oboConfig: { profile: 'id-jag', scopes: SCOPE },
      resolver: service,
      upstreamTokenProvider: async () => tokens,
    })
  /** An MCP client (v1 SDK) connected to `url` through `fetch`, closed after the test. */
  const connect = async (url, fetch) => {
    const client = new Client({ name: 'librechat-test', version: '1.0.0' })
    clients.push(client)
    await client.connect(new StreamableHTTPClientTransport(url, { fetch }), REQUEST)
    return client
  }

  it('an MCP tool call through createOboFetch: the ID token becomes an ID-JAG, then the MCP token; later calls hit the cache', async () => {
    const { service } = idJagService()
    const idToken = await servers.idp.mintIdToken('alice')
    const fetch = aliceFetch(service, { access_token: 'not-sent', id_token: idToken, expires_at: Date.now() / 1000 + 3600 })
    const client = await connect(servers.mcp.url, fetch)
    for (let i = 0; i < 3; i++) {
      const result = await client.callTool({ name: 'whoami', arguments: {} }, undefined, REQUEST)
      assert.equal(JSON.parse(result.content[0].text).sub, 'alice')
    }
    assert.equal(servers.idp.counters.idJag, 1, 'one ID-JAG for the session')
    assert.equal(servers.as.counters.grants, 1, 'one access token')
    assert.equal(servers.as.counters.metadata, 1, 'the chain was discovered once')
    const request = servers.idp.lastIdJagRequest()
    assert.equal(request.audience, servers.as.issuer)
    assert.equal(request.resource, servers.mcp.resource, "the resource is the server's own URL")
    assert.equal(request.scope, SCOPE)
    assert.ok(servers.mcp.state.log.every((entry) => entry.accepted))
  })

  it('createOboFetch takes its resource from the first request: a later URL does not move it', async () => {
    const { service } = idJagService()
    const idToken = await servers.idp.mintIdToken('alice')
    const fetch = aliceFetch(service, { id_token: idToken })
    const first = await fetch(`${servers.mcp.url.href}?session=1`, { method: 'GET' })
    await first.body?.cancel()
    const elsewhere = await fetch(new URL('/other', servers.mcp.url), { method: 'GET' })
    await elsewhere.body?.cancel()
    assert.equal(servers.idp.counters.idJag, 1, 'one exchange, for the first URL without its query')
    assert.equal(servers.idp.lastIdJagRequest().resource, servers.mcp.resource)
  })

  it("a server without well-known metadata: createOboFetch learns it from a 401's resource_metadata", async () => {
    const hidden = await startMcpServer({
      issuer: other.issuer,
      audience: 'self',
      scope: SCOPE,
      clientId: AS_CLIENTS.secret.clientId,
      metadataPath: '/meta/files.json',
    })
    try {
      other.setResource(hidden.resource)
      const { service } = idJagService()
      const idToken = await servers.idp.mintIdToken('alice')
      const client = await connect(hidden.url, aliceFetch(service, { id_token: idToken }))
      const result = await client.callTool({ name: 'whoami', arguments: {} }, undefined, REQUEST)
      assert.equal(JSON.parse(result.content[0].text).sub, 'alice')
      assert.equal(servers.idp.lastIdJagRequest().audience, other.issuer)
      assert.equal(servers.idp.counters.idJag, 1)
      assert.equal(hidden.state.log[0].accepted, true, 'the one request without a bearer is not logged as one')
    } finally {
      await hidden.close()
    }
  })

  it('the access token is for the MCP resource and this client, and users never share one', async () => {
    const { service } = idJagService()
    const alice = await exchange(service, await servers.idp.mintIdToken('alice'))
    const bob = await service.exchangeOboToken(userOf('bob'), await servers.idp.mintIdToken('bob'), SCOPE, true, undefined, {
      resource: servers.mcp.resource,
    })
    const claims = await servers.as.verify(alice.access_token, servers.mcp.resource)
    assert.equal(claims.sub, 'alice')
    assert.equal(claims.azp, AS_CLIENTS.secret.clientId)
    assert.equal((await servers.as.verify(bob.access_token, servers.mcp.resource)).sub, 'bob')
    assert.equal(servers.as.counters.grants, 2)
    const event = await rejection(exchange(service, await servers.idp.mintIdToken('alice'), { resource: undefined }))
    assert.equal(event.code, 'ERR_ID_JAG_NEEDS_RESOURCE')
  })

  it('grant profiles: an absent list says nothing; a list without the ID-JAG profile is refused at discovery', async () => {
    servers.as.setGrantProfiles(null)
    const tokens = await exchange(idJagService().service, await servers.idp.mintIdToken('alice'))
    assert.equal((await servers.as.verify(tokens.access_token, servers.mcp.resource)).sub, 'alice')
    servers.idp.resetCounters()
    servers.as.resetCounters()
    servers.as.setGrantProfiles(['urn:example:some-other-profile'])
    const { service } = idJagService()
    const err = await rejection(exchange(service, await servers.idp.mintIdToken('alice')))
    assert.equal(err.code, 'ERR_ID_JAG_METADATA')
    assert.equal(err.idJagStep, 'discovery')
    assert.match(err.message, /authorization_grant_profiles_supported \[urn:example:some-other-profile\]/)
    assert.equal(servers.idp.counters.idJag, 0)
    assert.equal(servers.as.counters.token, 0)
    assert.equal(service.stats().entries, 0, 'a failed exchange caches nothing')
  })

  // Which method an unset clientAuthMethod picks is tested where the request can be read: in
  // protocol/id_jag_tests.rs, and by the conformance suite, whose server takes only
  // client_secret_basic (this oidc-provider takes either secret method from any secret client).
  it("leg 2's client authentication must be one the server lists: refused before leg 1", async () => {
    servers.as.setMetadataOverride({ token_endpoint_auth_methods_supported: ['client_secret_basic'] })
    const configured = await rejection(exchange(idJagService().service, await servers.idp.mintIdToken('alice')))
    assert.equal(configured.code, 'ERR_ID_JAG_AUTH_METHOD')
    assert.equal(configured.idJagStep, 'discovery')
    assert.match(configured.message, /authorizationServer\.clientAuthMethod 'client_secret_post'.*\[client_secret_basic\]/)

    servers.as.setMetadataOverride({ token_endpoint_auth_methods_supported: ['private_key_jwt'] })
    const { service } = newService(servers.idp, {
      grantType: 'id_jag',
      authorizationServer: { clientId: AS_CLIENTS.secret.clientId, clientSecret: AS_CLIENTS.secret.clientSecret },
      allowedDomains: LOOPBACK,
    })
    const unset = await rejection(exchange(service, await servers.idp.mintIdToken('alice')))
    assert.equal(unset.code, 'ERR_ID_JAG_AUTH_METHOD')
    assert.match(unset.message, /lists neither client_secret_basic nor client_secret_post.*\[private_key_jwt\]/)
    assert.equal(servers.idp.counters.idJag, 0, 'the ID token is not spent')
    assert.equal(servers.as.counters.token, 0)
  })

  it("leg 2's refusal names the MCP server's authorization server", async () => {
    const { service } = idJagService({}, { ...AS_CLIENTS.secret, clientSecret: 'wrong' })
    const err = await rejection(exchange(service, await servers.idp.mintIdToken('alice')))
    assert.equal(err.idJagStep, 'leg2')
    assert.match(err.message, /failed: The MCP server's authorization server rejected the OBO exchange \(HTTP 401, invalid_client\)/)
    assert.doesNotMatch(err.message, /identity provider/)
  })

  it('createOboFetch sends no request without a bearer when discovery refused the metadata it found', async () => {
    servers.mcp.setMetadataOverride({ resource: 'https://elsewhere.example/mcp' })
    const sent = []
    const idToken = await servers.idp.mintIdToken('alice')
    const fetch = createOboFetch({
      user: userOf('alice'),
      oboConfig: { profile: 'id-jag', scopes: SCOPE },
      resolver: idJagService().service,
      upstreamTokenProvider: async () => ({ id_token: idToken }),
      fetch: (input, init) => {
        sent.push(new Headers(init.headers).get('authorization'))
        return globalThis.fetch(input, init)
      },
    })
    const err = await rejection(fetch(servers.mcp.url, { method: 'GET' }))
    assert.equal(err.cause.code, 'ERR_ID_JAG_METADATA')
    assert.match(err.cause.message, /names the resource https:\/\/elsewhere\.example\/mcp/)
    assert.deepEqual(sent, [], 'the MCP server is sent nothing')
    assert.equal(servers.idp.counters.idJag, 0)
  })

  it('wrong audience: metadata naming another issuer is refused; a token endpoint of another server refuses the ID-JAG', async () => {
    servers.as.setMetadataOverride({ issuer: other.issuer })
    let err = await rejection(exchange(idJagService().service, await servers.idp.mintIdToken('alice')))
    assert.equal(err.idJagStep, 'discovery')
    assert.match(err.message, /names the issuer/)
    assert.equal(servers.idp.counters.idJag, 0)

    servers.as.setMetadataOverride({ token_endpoint: other.tokenEndpoint })
    err = await rejection(exchange(idJagService().service, await servers.idp.mintIdToken('alice')))
    assert.equal(err.idJagStep, 'leg2')
    assert.equal(err.error, 'invalid_grant')
    assert.equal(err.retryable, false)
    assert.match(other.lastError(), /aud/)
    assert.equal(servers.idp.lastIdJagRequest().audience, servers.as.issuer, 'the ID-JAG was for the listed server')
  })

  it('an ID-JAG is never sent twice: a retry after a failed second leg asks the IdP for a new one', async () => {
    servers.as.injectFaults({ status: 503 })
    const { service } = idJagService()
    const token = await exchange(service, await servers.idp.mintIdToken('alice'))
    assert.ok(token.access_token)
    assert.equal(servers.idp.counters.idJag, 2, 'leg 1 ran again')
    assert.equal(servers.as.counters.grants, 1)
    assert.equal(servers.as.lastError(), undefined, 'no replay refused')
  })

  it('an expired ID token is refused before any request; an untrusted server is refused at leg 1', async () => {
    const { service } = idJagService()
    const expired = await rejection(exchange(service, await servers.idp.mintIdToken('alice', { ttlSeconds: -60 })))
    assert.equal(expired.code, 'ERR_ASSERTION_EXPIRED')
    assert.equal(servers.idp.counters.token, 0)
    servers.idp.distrustAuthorizationServer(servers.as.issuer)
    const untrusted = await rejection(exchange(service, await servers.idp.mintIdToken('alice')))
    assert.equal(untrusted.idJagStep, 'leg1')
    assert.equal(untrusted.error, 'invalid_target')
    assert.equal(servers.as.counters.token, 0)
  })

  it('a refresh token as subject, and private_key_jwt at the authorization server', async () => {
    const { service } = idJagService({ subjectTokenType: REFRESH_TOKEN_TYPE }, AS_CLIENTS.key)
    servers.idp.trustAuthorizationServer(servers.as.issuer, { clientId: AS_CLIENTS.key.clientId })
    const refreshToken = servers.idp.issueRefreshToken('alice')
    const tokens = await resolveOboToken(
      userOf('alice'),
      { profile: 'id-jag', scopes: SCOPE, resource: servers.mcp.resource },
      service,
      async () => ({ access_token: 'not-sent', id_token: 'not-sent', refresh_token: refreshToken }),
    )
    const claims = await servers.as.verify(tokens.access_token, servers.mcp.resource)
    assert.equal(claims.azp, AS_CLIENTS.key.clientId)
    assert.equal(servers.idp.lastIdJagRequest().subject_token_type, REFRESH_TOKEN_TYPE)
  })

  it('refresh-ahead renews the token in the background with both legs', async () => {
    servers.as.setTokenTtl(36) // usable 6 s past the 30 s buffer; the refresh point near 1.2 s
    const { service } = idJagService({ refreshAhead: 0.2 })
    const idToken = await servers.idp.mintIdToken('alice')
    const first = await exchange(service, idToken)
    // A silence longer than the time left over 1.5: the hit refreshes (cache/traffic.rs).
    await new Promise((resolve) => setTimeout(resolve, 2_500))
    const hit = await exchange(service, idToken)
    assert.equal(hit.access_token, first.access_token, 'the hit is answered at once')
    let renewed
    for (let i = 0; i < 100 && !renewed; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      const now = await exchange(service, idToken)
      if (now.access_token !== first.access_token) renewed = now
    }
    assert.ok(renewed, 'a renewed token within 2 s')
    assert.equal(servers.idp.counters.idJag, 2)
    assert.equal(service.stats().refreshesSucceeded, 1)
  })

  it("resolveOboToken sends the ID token by its own expiry, not the access token's expires_at", async () => {
    const { service } = idJagService()
    const idToken = await servers.idp.mintIdToken('alice')
    const oboConfig = { profile: 'id-jag', scopes: SCOPE, resource: servers.mcp.resource }
    const staleAccessToken = { access_token: 'not-sent', id_token: idToken, expires_at: Date.now() / 1000 - 60 }
    const tokens = await resolveOboToken(userOf('alice'), oboConfig, service, async () => staleAccessToken)
    assert.equal((await servers.as.verify(tokens.access_token, servers.mcp.resource)).sub, 'alice')
    const noIdToken = await rejection(resolveOboToken(userOf('alice'), oboConfig, service, async () => ({ access_token: 'x' })))
    assert.equal(noIdToken.reason, 'missing_upstream_id_token')
    assert.equal(noIdToken.message, 'The upstream OpenID ID token is missing for the ID-JAG exchange.')
    assert.equal(servers.idp.counters.idJag, 1)
  })

  it('resolveOboToken refuses a profile that does not match the resolver', async () => {
    const provider = async () => ({ access_token: 'x', id_token: 'y' })
    const plain = newService(servers.idp).service
    await assert.rejects(
      resolveOboToken(userOf('alice'), { profile: 'id-jag', scopes: SCOPE }, plain, provider),
      /profile 'id-jag' needs a resolver that is an OboTokenService with grantType 'id_jag'/,
    )
    await assert.rejects(
      resolveOboToken(userOf('alice'), { scopes: SCOPE }, idJagService().service, provider),
      /its oboConfig must say profile: 'id-jag'/,
    )
    await assert.rejects(resolveOboToken(userOf('alice'), { profile: 'jag', scopes: SCOPE }, plain, provider), /oboConfig.profile must be/)
    assert.equal(servers.idp.counters.token, 0)
  })
})
