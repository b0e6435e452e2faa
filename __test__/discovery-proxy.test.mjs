// Entra's multi-tenant discovery documents at their real URL: the service reaches
// https://login.microsoftonline.com through its `proxy` option, and the proxy (a loopback
// CONNECT proxy) hands the tunnel to a TLS server that presents a certificate for
// login.microsoftonline.com signed by a test CA. The addon trusts that CA through
// SSL_CERT_FILE (rustls-native-certs reads it when the HTTP client is built), so no
// option of the package is needed or added for it. The documents are served verbatim:
// their issuer is Entra's `{tenantid}` template, which only openid-client's Entra
// exception accepts, and validateAssertion holds a token's iss to its own tid.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { createServer as createTlsServer } from 'node:https'
import { fileURLToPath } from 'node:url'
import * as jose from 'jose'
import { OboTokenService } from './helpers.mjs'
import serviceModule from '../lib/service.js'

const { planOf } = serviceModule
const ENTRA = 'https://login.microsoftonline.com'
const HOST = 'login.microsoftonline.com:443'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** {"alg":"RS256","typ":"JWT"}.{"sub":"alice","exp":4102444800}.signature */
const ASSERTION = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2ln'
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47'
const API = 'api://middle-tier'
const fixture = (name) => new URL(`./fixtures/${name}`, import.meta.url)
const corpus = (name) => readFileSync(new URL(`./discovery-corpus/${name}`, import.meta.url), 'utf8')

/** Documents at their real paths, verbatim. */
const DOCUMENTS = {
  '/common/v2.0/.well-known/openid-configuration': corpus('entra-common-v2.json'),
  '/organizations/v2.0/.well-known/openid-configuration': corpus('entra-organizations-v2.json'),
  '/common/.well-known/openid-configuration': corpus('entra-common-v1.json'),
}
const TOKEN_PATHS = ['/common/oauth2/v2.0/token', '/organizations/oauth2/v2.0/token', '/common/oauth2/token']

const seen = { connects: [], requests: [], grants: [] }
const sockets = new Set()
let proxy
let entra
let proxyUrl
let signingKey
let jwks

before(async () => {
  // Read by the addon when a service builds its HTTP client; this file's services only.
  process.env.SSL_CERT_FILE = fileURLToPath(fixture('test-ca.pem'))
  const pair = await jose.generateKeyPair('ES256')
  signingKey = pair.privateKey
  jwks = { keys: [{ ...(await jose.exportJWK(pair.publicKey)), kid: 'entra-test', use: 'sig', alg: 'ES256' }] }
  entra = createTlsServer({ key: readFileSync(fixture('entra-host.key')), cert: readFileSync(fixture('entra-host.pem')) }, answer)
  proxy = createServer((_req, res) => res.writeHead(405).end())
  proxy.on('connect', (req, socket) => {
    sockets.add(socket)
    seen.connects.push(req.url)
    if (req.url !== HOST) return socket.end('HTTP/1.1 403 Forbidden\r\n\r\n')
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
    entra.emit('connection', socket)
  })
  await new Promise((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  proxyUrl = `http://127.0.0.1:${proxy.address().port}`
})

after(async () => {
  delete process.env.SSL_CERT_FILE
  for (const socket of sockets) socket.destroy()
  proxy.closeAllConnections()
  await new Promise((resolve) => proxy.close(resolve))
})

/** The intercepted login.microsoftonline.com. */
function answer(req, res) {
  let body = ''
  req.on('data', (chunk) => {
    body += chunk
  })
  req.on('end', () => {
    seen.requests.push(`${req.method} ${req.url}`)
    const json = (status, text) => res.writeHead(status, { 'content-type': 'application/json' }).end(text)
    if (req.method === 'GET' && DOCUMENTS[req.url]) return json(200, DOCUMENTS[req.url])
    if (req.method === 'GET' && req.url === '/common/discovery/v2.0/keys') return json(200, JSON.stringify(jwks))
    if (req.method === 'POST' && TOKEN_PATHS.includes(req.url)) {
      seen.grants.push(new URLSearchParams(body).get('grant_type'))
      return json(200, JSON.stringify({ access_token: `entra-at-${seen.grants.length}`, token_type: 'Bearer', expires_in: 3600 }))
    }
    json(404, '{"error":"not_found"}')
  })
}

function service(issuer, options = {}) {
  return new OboTokenService({ issuer, clientId: 'middle-tier', clientSecret: 'middle-secret', proxy: proxyUrl, maxRetries: 0, ...options })
}

/** A user token from `tenant` (iss) claiming `tid`, signed with the served key. */
function userToken(issTenant, tid) {
  const claims = { sub: 'alice', aud: API, ...(tid === undefined ? {} : { tid }) }
  return new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: 'entra-test' })
    .setIssuer(`${ENTRA}/${issTenant}/v2.0`)
    .setExpirationTime('10m')
    .sign(signingKey)
}

describe("Entra's multi-tenant documents at login.microsoftonline.com", () => {
  for (const [issuer, template] of [
    [`${ENTRA}/common/v2.0`, `${ENTRA}/{tenantid}/v2.0`],
    [`${ENTRA}/organizations/v2.0`, `${ENTRA}/{tenantid}/v2.0`],
    [`${ENTRA}/common`, 'https://sts.windows.net/{tenantid}/'],
  ]) {
    it(`${issuer}: exchanges with grantType unset and with auto (jwt_bearer)`, async () => {
      const grants = seen.grants.length
      const unset = await service(issuer).exchangeOboToken({ openidId: 'alice' }, ASSERTION, 'api://mcp/.default')
      assert.match(unset.access_token, /^entra-at-/)
      const auto = service(issuer, { grantType: 'auto' })
      const plan = await planOf(auto)
      assert.equal(plan.grant, 'jwt_bearer')
      assert.equal(plan.grantReason, 'auto: the IdP advertises no grant_types_supported, so On-Behalf-Of (jwt-bearer)')
      assert.equal(plan.discoveryDocument, `${issuer}/.well-known/openid-configuration`)
      assert.ok(plan.discoveredIssuer.startsWith(`${template} (`), plan.discoveredIssuer)
      await auto.exchangeOboToken({ openidId: 'alice' }, ASSERTION, 'api://mcp/.default')
      assert.deepEqual(seen.grants.slice(grants), [JWT_BEARER, JWT_BEARER])
    })
  }

  it('went through the proxy to login.microsoftonline.com and nowhere else', () => {
    assert.ok(seen.connects.length > 0)
    assert.deepEqual([...new Set(seen.connects)], [HOST])
  })

  it("validateAssertion holds the token's iss to the template with its own tid", async () => {
    const verifying = service(`${ENTRA}/common/v2.0`, { validateAssertion: { audiences: [API] } })
    const user = { openidId: 'alice' }
    const good = await verifying.exchangeOboToken(user, await userToken(TENANT, TENANT), 'api://mcp/.default')
    assert.match(good.access_token, /^entra-at-/)
    const grants = seen.grants.length
    const elsewhere = await verifying.exchangeOboToken(user, await userToken('other-tenant', TENANT), 'api://mcp/.default').catch((e) => e)
    assert.equal(elsewhere.code, 'ERR_ASSERTION_INVALID')
    assert.match(elsewhere.message, new RegExp(`accepted issuers \\[${ENTRA}/${TENANT}/v2\\.0\\]`))
    const untenanted = await verifying.exchangeOboToken(user, await userToken(TENANT, undefined), 'api://mcp/.default').catch((e) => e)
    assert.equal(untenanted.code, 'ERR_ASSERTION_INVALID')
    assert.match(
      untenanted.message,
      /it has no tid claim, and the issuer https:\/\/login\.microsoftonline\.com\/\{tenantid\}\/v2\.0 takes the tenant from it/,
    )
    assert.equal(seen.grants.length, grants, 'refused tokens are never sent')
  })
})
