// The ID-JAG test infrastructure itself (idp/id-jag.mjs at the enterprise IdP, the MCP server's
// authorization server idp/mcp-as.mjs, and the MCP server with `audience: 'self'`), driven with
// plain fetch on 127.0.0.1 and no addon, so that a test of the package relying on it fails for
// the package's reasons, not the infrastructure's: leg 1 (ID token or refresh token → ID-JAG),
// leg 2 (ID-JAG → access token), a real MCP request with that token, and every refusal.

import { describe, it, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import * as jose from 'jose'
import { CLIENTS, USERS, TENANT, JWT_BEARER, TOKEN_EXCHANGE, ACCESS_TOKEN_TYPE } from './idp/index.mjs'
import { ID_JAG_TYPE, ID_TOKEN_TYPE, REFRESH_TOKEN_TYPE, ID_JAG_PROFILE, ID_JAG_TYP } from './idp/id-jag.mjs'
import { AS_CLIENTS } from './idp/mcp-as.mjs'
import { startMcpServer } from './mcp/server.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'

/** An authorization server the IdP may be told to trust; never contacted. */
const OTHER_AS = 'https://other-as.example'

describe('ID-JAG test infrastructure', { timeout: 30_000 }, () => {
  const servers = useIdJagServers()
  beforeEach(() => {
    servers.idp.setIdJagTtl(300)
    servers.idp.setIdJagDelay(0)
    servers.idp.distrustAuthorizationServer(OTHER_AS)
    servers.as.setScopes(['files.read', 'files.write'])
    servers.as.setTokenTtl(3600)
    servers.as.setMetadataOverride(undefined)
    servers.mcp.setMetadataOverride(undefined)
  })

  /** A form POST; the answer's status, Retry-After and JSON body (never logged: it may hold tokens). */
  async function post(url, params, headers = {}) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined)),
    })
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json().catch(() => undefined) }
  }

  /** Leg 1 at the IdP, as the `post` client unless told otherwise; an option given as undefined leaves the parameter out. */
  function requestIdJag(subject, options = {}) {
    const defaults = {
      type: ID_TOKEN_TYPE,
      audience: servers.as.issuer,
      resource: servers.mcp.resource,
      scope: 'files.read',
      client: CLIENTS.post,
    }
    const { type, audience, resource, scope, client } = { ...defaults, ...options }
    return post(servers.idp.tokenEndpoint, {
      grant_type: TOKEN_EXCHANGE,
      requested_token_type: ID_JAG_TYPE,
      subject_token: subject,
      subject_token_type: type,
      audience,
      resource,
      scope,
      client_id: client.clientId,
      client_secret: client.clientSecret,
    })
  }

  /** A fresh ID-JAG for `user` through leg 1 (fails the test if refused). */
  async function idJagFor(user = 'alice', options = {}) {
    const { status, body } = await requestIdJag(await servers.idp.mintIdToken(user), options)
    assert.equal(status, 200, body?.error_description)
    return body.access_token
  }

  /** Leg 2 at the MCP authorization server, authenticating as `client` (an AS_CLIENTS entry). */
  async function redeem(assertion, { client = AS_CLIENTS.secret, scope, resource } = {}) {
    const params = { grant_type: JWT_BEARER, assertion, scope, resource }
    const headers = {}
    if (client.method === 'client_secret_post') Object.assign(params, { client_id: client.clientId, client_secret: client.clientSecret })
    if (client.method === 'client_secret_basic') {
      const pair = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret)}`
      headers.authorization = `Basic ${Buffer.from(pair).toString('base64')}`
    }
    if (client.method === 'private_key_jwt') {
      const key = await jose.importPKCS8(servers.as.clientKeys.key.privateKeyPem, client.alg)
      params.client_assertion_type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
      params.client_assertion = await new jose.SignJWT({})
        .setProtectedHeader({ alg: client.alg, kid: client.kid })
        .setIssuer(client.clientId)
        .setSubject(client.clientId)
        .setAudience(servers.as.issuer)
        .setJti(randomUUID())
        .setIssuedAt()
        .setExpirationTime('1m')
        .sign(key)
    }
    return post(servers.as.tokenEndpoint, params, headers)
  }

  /** A refusal by the AS: 400, `error`, a reason matching `reason` (also in lastError), and no token echoed back. */
  function assertRefused({ status, body }, assertion, error, reason) {
    assert.equal(status, 400)
    assert.equal(body.error, error)
    assert.match(body.error_description, reason)
    assert.equal(servers.as.lastError(), body.error_description)
    assert.ok(!JSON.stringify(body).includes(assertion), 'the refusal must not echo the assertion')
    assert.equal(body.access_token, undefined)
  }

  /** Claims of a grant the AS accepts, for `signIdJag` forgeries that change one thing. */
  const goodClaims = () => ({
    sub: 'alice',
    aud: servers.as.issuer,
    client_id: AS_CLIENTS.secret.clientId,
    resource: servers.mcp.resource,
    scope: 'files.read',
  })

  /** An MCP JSON-RPC POST with `token` as bearer. */
  const rpc = (token, message, sessionId) =>
    fetch(servers.mcp.url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...(sessionId && { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' }),
      },
      body: JSON.stringify({ jsonrpc: '2.0', ...message }),
    })

  describe('leg 1: the enterprise IdP mints ID-JAGs', () => {
    it('trades an ID token for an ID-JAG addressed to the trusted authorization server', async () => {
      const { status, body } = await requestIdJag(await servers.idp.mintIdToken('alice'))
      assert.equal(status, 200, body?.error_description)
      assert.equal(body.issued_token_type, ID_JAG_TYPE)
      assert.equal(body.token_type, 'N_A')
      assert.equal(body.expires_in, 300)
      assert.equal(body.scope, 'files.read')

      const jwks = jose.createRemoteJWKSet(new URL(`${servers.idp.issuer}/jwks`))
      const { payload, protectedHeader } = await jose.jwtVerify(body.access_token, jwks, {
        issuer: servers.idp.issuer,
        audience: servers.as.issuer,
        algorithms: ['RS256'],
        typ: ID_JAG_TYP,
      })
      assert.deepEqual(protectedHeader, { alg: 'RS256', kid: 'k1', typ: ID_JAG_TYP })
      assert.equal(payload.sub, 'alice')
      assert.equal(payload.client_id, AS_CLIENTS.secret.clientId)
      assert.equal(payload.resource, servers.mcp.url.href)
      assert.equal(payload.scope, 'files.read')
      assert.equal(payload.tid, TENANT)
      assert.equal(payload.oid, USERS.alice.oid)
      assert.match(payload.jti, /^[0-9a-f-]{36}$/)
      assert.equal(payload.exp - payload.iat, 300)

      assert.deepEqual(servers.idp.lastIdJagRequest(), {
        subject_token_type: ID_TOKEN_TYPE,
        audience: servers.as.issuer,
        resource: servers.mcp.url.href,
        scope: 'files.read',
        requested_token_type: ID_JAG_TYPE,
        clientId: CLIENTS.post.clientId,
      })
      assert.deepEqual([servers.idp.counters.token, servers.idp.counters.idJag, servers.idp.counters.exchange], [1, 1, 0])
    })

    it('trades a refresh token it issued to the calling client, and no other', async () => {
      const ok = await requestIdJag(servers.idp.issueRefreshToken('bob'), { type: REFRESH_TOKEN_TYPE, scope: undefined })
      assert.equal(ok.status, 200, ok.body?.error_description)
      assert.equal(ok.body.scope, undefined)
      const claims = jose.decodeJwt(ok.body.access_token)
      assert.deepEqual([claims.sub, claims.oid, claims.scope], ['bob', USERS.bob.oid, undefined])

      const elsewhere = servers.idp.issueRefreshToken('bob', { clientId: CLIENTS.basic.clientId })
      const stolen = await requestIdJag(elsewhere, { type: REFRESH_TOKEN_TYPE })
      assert.deepEqual([stolen.status, stolen.body.error], [400, 'invalid_grant'])
      const unknown = await requestIdJag('not-a-refresh-token', { type: REFRESH_TOKEN_TYPE })
      assert.deepEqual([unknown.status, unknown.body.error], [400, 'invalid_grant'])
    })

    it('refuses an expired ID token, one for another client, and an access token', async () => {
      const expired = await requestIdJag(await servers.idp.mintIdToken('alice', { ttlSeconds: -60 }))
      assert.deepEqual(
        [expired.status, expired.body.error, expired.body.error_description],
        [400, 'invalid_grant', 'subject_token has expired'],
      )
      const foreign = await requestIdJag(await servers.idp.mintIdToken('alice', { aud: 'someone-else' }))
      assert.deepEqual(
        [foreign.status, foreign.body.error, foreign.body.error_description],
        [400, 'invalid_grant', 'subject_token is invalid'],
      )
      const accessToken = await requestIdJag(await servers.idp.mintUserToken('alice', { aud: CLIENTS.post.clientId }))
      assert.deepEqual([accessToken.status, accessToken.body.error], [400, 'invalid_grant'])
      assert.equal(servers.idp.counters.idJag, 3)
    })

    it('refuses an untrusted or missing audience, and an unsupported subject token type', async () => {
      const idToken = await servers.idp.mintIdToken('alice')
      const untrusted = await requestIdJag(idToken, { audience: OTHER_AS })
      assert.equal(untrusted.status, 400)
      assert.equal(untrusted.body.error, 'invalid_target')
      assert.match(untrusted.body.error_description, /is not a trusted authorization server/)
      const missing = await requestIdJag(idToken, { audience: undefined })
      assert.deepEqual([missing.status, missing.body.error], [400, 'invalid_request'])
      const wrongType = await requestIdJag(idToken, { type: ACCESS_TOKEN_TYPE })
      assert.deepEqual([wrongType.status, wrongType.body.error], [400, 'invalid_request'])
      assert.match(wrongType.body.error_description, /access_token/)
      servers.idp.distrustAuthorizationServer(servers.as.issuer)
      const distrusted = await requestIdJag(idToken)
      assert.deepEqual([distrusted.status, distrusted.body.error], [400, 'invalid_target'])
    })

    it('goes through token-endpoint faults, and honours its TTL and delay switches', async () => {
      servers.idp.injectFaults({ status: 503 })
      const faulted = await requestIdJag(await servers.idp.mintIdToken('alice'))
      assert.equal(faulted.status, 503)
      assert.deepEqual([servers.idp.counters.token, servers.idp.counters.faults, servers.idp.counters.idJag], [1, 1, 0])

      servers.idp.setIdJagTtl(60)
      servers.idp.setIdJagDelay(150)
      const started = Date.now()
      const { status, body } = await requestIdJag(await servers.idp.mintIdToken('alice'))
      assert.equal(status, 200, body?.error_description)
      assert.ok(Date.now() - started >= 140) // a lower bound: the delay applied; busy machines only add
      assert.equal(body.expires_in, 60)
      const claims = jose.decodeJwt(body.access_token)
      assert.equal(claims.exp - claims.iat, 60)
    })

    it('advertises ID-JAG in its discovery document', async () => {
      const doc = await (await fetch(`${servers.idp.issuer}/.well-known/openid-configuration`)).json()
      assert.deepEqual(doc.identity_chaining_requested_token_types_supported, [ID_JAG_TYPE])
      assert.ok(doc.grant_types_supported.includes(TOKEN_EXCHANGE))
    })
  })

  describe('leg 2: the MCP authorization server trades ID-JAGs for access tokens', () => {
    it('issues an access token the MCP server accepts on a real MCP request', async () => {
      const { status, body } = await redeem(await idJagFor('alice'))
      assert.equal(status, 200, body?.error_description)
      assert.deepEqual([body.token_type, body.expires_in, body.scope, body.refresh_token], ['Bearer', 3600, 'files.read', undefined])
      const claims = await servers.as.verify(body.access_token, servers.mcp.url.href)
      assert.equal(claims.sub, 'alice')
      assert.equal(claims.azp, AS_CLIENTS.secret.clientId)
      assert.equal(claims.client_id, AS_CLIENTS.secret.clientId)
      assert.equal(claims.scp, 'files.read')
      assert.equal(jose.decodeProtectedHeader(body.access_token).typ, 'at+jwt')
      assert.deepEqual([servers.as.counters.token, servers.as.counters.grants, servers.as.lastError()], [1, 1, undefined])

      const init = await rpc(body.access_token, {
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'id-jag-infra', version: '1.0.0' } },
      })
      assert.equal(init.status, 200)
      assert.match(await init.text(), /"files-mcp"/)
      const session = init.headers.get('mcp-session-id')
      assert.equal((await rpc(body.access_token, { method: 'notifications/initialized' }, session)).status, 202)
      const call = await rpc(body.access_token, { id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } }, session)
      assert.equal(call.status, 200)
      assert.match(await call.text(), /\\"sub\\":\\"alice\\"/)
      assert.ok(servers.mcp.state.log.length >= 3)
      assert.ok(servers.mcp.state.log.every((entry) => entry.accepted && entry.aud === servers.mcp.url.href))
    })

    it('authenticates its clients with client_secret_basic and private_key_jwt too', async () => {
      for (const client of [AS_CLIENTS.basic, AS_CLIENTS.key]) {
        servers.idp.trustAuthorizationServer(servers.as.issuer, { clientId: client.clientId })
        const { status, body } = await redeem(await idJagFor('alice'), { client })
        assert.equal(status, 200, `${client.method}: ${body?.error_description}`)
        assert.equal((await servers.as.verify(body.access_token)).azp, client.clientId)
      }
      const wrongSecret = await redeem(await idJagFor('alice'), { client: { ...AS_CLIENTS.secret, clientSecret: 'wrong' } })
      assert.deepEqual([wrongSecret.status, wrongSecret.body.error], [401, 'invalid_client'])
    })

    it('grants the requested scopes, or the ID-JAG scope, within its own list', async () => {
      const wider = await redeem(await idJagFor('alice'), { scope: 'files.read files.write' })
      assert.equal(wider.status, 200, wider.body?.error_description)
      assert.equal((await servers.as.verify(wider.body.access_token)).scp, 'files.read files.write')
      const unknown = await idJagFor('alice')
      assertRefused(await redeem(unknown, { scope: 'files.delete' }), unknown, 'invalid_scope', /files\.delete/)
      // Refused for its scope, the grant was not used up.
      assert.equal((await redeem(unknown)).status, 200)
    })

    it('refuses an ID-JAG minted for another authorization server', async () => {
      servers.idp.trustAuthorizationServer(OTHER_AS, { clientId: AS_CLIENTS.secret.clientId })
      const assertion = await idJagFor('alice', { audience: OTHER_AS })
      assertRefused(await redeem(assertion), assertion, 'invalid_grant', /aud must be this authorization server's issuer/)
    })

    it('refuses a replayed ID-JAG', async () => {
      const assertion = await idJagFor('alice')
      assert.equal((await redeem(assertion)).status, 200)
      assertRefused(await redeem(assertion), assertion, 'invalid_grant', /^ID-JAG jti was already used$/)
      assert.deepEqual([servers.as.counters.token, servers.as.counters.grants], [2, 2])
    })

    it('refuses an ID-JAG presented by a client other than the one it names', async () => {
      const assertion = await idJagFor('alice')
      assertRefused(await redeem(assertion, { client: AS_CLIENTS.basic }), assertion, 'invalid_grant', /client_id does not match/)
    })

    it('refuses a wrong or missing resource, and every grant while it protects none', async () => {
      const wrong = await idJagFor('alice', { resource: 'http://127.0.0.1:1/mcp' })
      assertRefused(await redeem(wrong), wrong, 'invalid_grant', /resource must be/)
      const missing = await idJagFor('alice', { resource: undefined })
      assertRefused(await redeem(missing), missing, 'invalid_grant', /resource must be/)
      servers.as.setResource(undefined)
      const right = await idJagFor('alice')
      assertRefused(await redeem(right), right, 'invalid_grant', /protects no resource/)
    })

    it('accepts a forged-but-right grant from signIdJag, and refuses each claim or header made wrong', async () => {
      const right = await servers.idp.signIdJag(goodClaims())
      assert.equal((await redeem(right)).status, 200)
      const now = Math.floor(Date.now() / 1000)
      const cases = [
        [{ typ: 'JWT' }, {}, /typ must be oauth-id-jag\+jwt/],
        [{ typ: 'at+jwt' }, {}, /typ must be oauth-id-jag\+jwt/],
        [{}, { exp: now - 60, iat: now - 360 }, /has expired/],
        [{}, { iss: 'https://not-the-idp.example' }, /iss is not the trusted IdP/],
        [{}, { jti: undefined }, /has no jti/],
        [{}, { sub: undefined }, /has no sub/],
      ]
      for (const [header, change, reason] of cases) {
        const assertion = await servers.idp.signIdJag({ ...goodClaims(), ...change }, header)
        assertRefused(await redeem(assertion), assertion, 'invalid_grant', reason)
      }
      // Within the 5 s clock tolerance, a just-expired grant still passes.
      assert.equal((await redeem(await servers.idp.signIdJag({ ...goodClaims(), exp: now - 2, iat: now - 300 }))).status, 200)
    })

    it("refuses a grant not signed by the IdP's keys", async () => {
      const { privateKey } = await jose.generateKeyPair('RS256')
      const now = Math.floor(Date.now() / 1000)
      const assertion = await new jose.SignJWT({ ...goodClaims(), iss: servers.idp.issuer, jti: randomUUID(), iat: now, exp: now + 300 })
        .setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: ID_JAG_TYP })
        .sign(privateKey)
      assertRefused(await redeem(assertion), assertion, 'invalid_grant', /signature does not verify/)
      assert.equal(servers.idp.counters.jwks, 0, "the AS's JWKS requests are not counted as the app's")
    })

    it('meets injected faults and its delay on the token endpoint', async () => {
      servers.as.injectFaults({ status: 503, retryAfter: 2 }, { drop: true })
      const assertion = await idJagFor('alice')
      const faulted = await redeem(assertion)
      assert.deepEqual([faulted.status, faulted.retryAfter, faulted.body.error], [503, '2', 'temporarily_unavailable'])
      await assert.rejects(redeem(assertion), TypeError)
      servers.as.setDelay(150)
      const started = Date.now()
      assert.equal((await redeem(assertion)).status, 200)
      assert.ok(Date.now() - started >= 140) // a lower bound: the delay applied; busy machines only add
      assert.deepEqual([servers.as.counters.token, servers.as.counters.faults, servers.as.counters.grants], [3, 2, 1])
    })

    it('refuses at the MCP server a token issued for another resource', async () => {
      const elsewhere = 'http://127.0.0.1:1/mcp'
      servers.as.setResource(elsewhere)
      const { status, body } = await redeem(await idJagFor('alice', { resource: elsewhere }))
      assert.equal(status, 200, body?.error_description)
      const refused = await rpc(body.access_token, { id: 1, method: 'tools/list' })
      assert.equal(refused.status, 401)
      assert.match(refused.headers.get('www-authenticate'), /error="invalid_token"/)
    })
  })

  describe('metadata', () => {
    it('serves RFC 8414 metadata with the ID-JAG grant profile, which can be removed or overridden', async () => {
      const metadata = async () => (await fetch(servers.as.metadataUrl)).json()
      const doc = await metadata()
      assert.equal(doc.issuer, servers.as.issuer)
      assert.equal(doc.token_endpoint, `${servers.as.issuer}/token`)
      assert.equal(doc.jwks_uri, `${servers.as.issuer}/jwks`)
      assert.deepEqual(doc.grant_types_supported, [JWT_BEARER])
      assert.deepEqual(doc.token_endpoint_auth_methods_supported, ['client_secret_post', 'client_secret_basic', 'private_key_jwt'])
      assert.deepEqual(doc.authorization_grant_profiles_supported, [ID_JAG_PROFILE])
      servers.as.setGrantProfiles(null)
      assert.ok(!('authorization_grant_profiles_supported' in (await metadata())))
      servers.as.setMetadataOverride({ issuer: 'https://wrong.example' })
      assert.equal((await metadata()).issuer, 'https://wrong.example')
      assert.equal(servers.as.counters.metadata, 3)
      const jwks = await (await fetch(doc.jwks_uri)).json()
      assert.equal(jwks.keys.length, 1)
      assert.equal(jwks.keys[0].d, undefined)
    })

    it('the MCP server names its own URL as the resource and the AS as its authorization server', async () => {
      const prm = async (path = '/mcp') => (await fetch(`${servers.mcp.url.origin}/.well-known/oauth-protected-resource${path}`)).json()
      assert.equal(servers.mcp.resource, servers.mcp.url.href)
      for (const path of ['/mcp', '']) {
        const doc = await prm(path)
        assert.equal(doc.resource, servers.mcp.url.href)
        assert.deepEqual(doc.authorization_servers, [servers.as.issuer])
      }
      servers.mcp.setMetadataOverride({ resource: 'https://elsewhere.example/mcp' })
      assert.equal((await prm()).resource, 'https://elsewhere.example/mcp')

      const unknownAs = await startMcpServer({
        issuer: servers.as.issuer,
        audience: 'self',
        authorizationServers: ['https://unknown-as.example'],
      })
      try {
        const doc = await (await fetch(`${unknownAs.url.origin}/.well-known/oauth-protected-resource/mcp`)).json()
        assert.deepEqual(doc.authorization_servers, ['https://unknown-as.example'])
        assert.equal(doc.resource, unknownAs.url.href)
      } finally {
        await unknownAs.close()
      }
    })
  })
})
