// Beyond Entra's dialect, against the local IdP: RFC 8693 token exchange (named and
// `auto`), and private_key_jwt client authentication (RSA with kid, EC, certificate
// thumbprints, aud = issuer, replay refused by the IdP).

import { describe, it, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import * as jose from 'jose'
import { startIdp, CLIENTS, KEY_CLIENTS, ACCESS_TOKEN_TYPE } from './idp/index.mjs'
import { OboTokenService, OboExchangeError, rejection, FILES } from './helpers.mjs'
import { createRequire } from 'node:module'

const { explainError } = createRequire(import.meta.url)('../lib/explain.js')

const CERTIFICATE = readFileSync(new URL('./fixtures/certificate.pem', import.meta.url), 'utf8')
const alice = { openidId: 'alice' }
const TARGET = { audience: 'api://mcp-files' }

let idp
let entraLike
before(async () => {
  idp = await startIdp()
  entraLike = await startIdp({ tokenExchange: false })
})
after(async () => {
  await idp.close()
  await entraLike.close()
})
beforeEach(() => {
  idp.resetCounters()
  entraLike.resetCounters()
})

const secretService = (issuer, options = {}) =>
  new OboTokenService({ issuer, clientId: CLIENTS.post.clientId, clientSecret: CLIENTS.post.clientSecret, retryDelayMs: 20, ...options })

describe('RFC 8693 token exchange', () => {
  it('exchanges for the audience, returns issued_token_type, and caches per target', async () => {
    const service = secretService(idp.issuer, { grantType: 'token_exchange' })
    const assertion = await idp.mintUserToken('alice')
    const token = await service.exchangeOboToken(alice, assertion, 'files.read', true, undefined, TARGET)
    assert.equal(token.issued_token_type, ACCESS_TOKEN_TYPE)
    const claims = await idp.verify(token.access_token, 'api://mcp-files')
    assert.deepEqual([claims.sub, claims.scp, claims.azp], ['alice', 'files.read', CLIENTS.post.clientId])
    assert.deepEqual(idp.lastExchange(), {
      subject_token_type: ACCESS_TOKEN_TYPE,
      audience: 'api://mcp-files',
      resource: undefined,
      scope: 'files.read',
      requested_token_type: undefined,
    })
    const again = await service.exchangeOboToken(alice, assertion, 'files.read', true, undefined, TARGET)
    assert.deepEqual(again, token, 'a hit keeps issued_token_type')
    const byResource = await service.exchangeOboToken(alice, assertion, 'files.read', true, undefined, { resource: 'api://mcp-files' })
    assert.notEqual(byResource.access_token, token.access_token, 'another target is another key')
    assert.equal(idp.counters.exchange, 2)
    assert.equal(idp.counters.obo, 0)
  })

  it("'auto' picks token exchange where it is advertised, and On-Behalf-Of where only jwt-bearer is", async () => {
    const assertion = await idp.mintUserToken('alice')
    await secretService(idp.issuer, { grantType: 'auto' }).exchangeOboToken(alice, assertion, FILES)
    assert.deepEqual([idp.counters.exchange, idp.counters.obo], [1, 0])
    const entraAssertion = await entraLike.mintUserToken('alice')
    const token = await secretService(entraLike.issuer, { grantType: 'auto' }).exchangeOboToken(alice, entraAssertion, FILES)
    assert.equal(token.issued_token_type, undefined)
    assert.deepEqual([entraLike.counters.exchange, entraLike.counters.obo], [0, 1])
  })

  it('a grant the IdP does not advertise fails before any token request, and says so', async () => {
    const service = secretService(entraLike.issuer, { grantType: 'token_exchange' })
    const err = await rejection(service.exchangeOboToken(alice, await entraLike.mintUserToken('alice'), FILES))
    assert.ok(err instanceof OboExchangeError)
    assert.equal(err.code, 'ERR_GRANT_NOT_ADVERTISED')
    assert.equal(err.retryable, false)
    assert.match(err.message, /does not advertise the token_exchange grant \(urn:ietf:params:oauth:grant-type:token-exchange\)/)
    assert.match(err.message, /urn:ietf:params:oauth:grant-type:jwt-bearer/)
    assert.equal(entraLike.counters.token, 0)
  })

  it('sends an opaque subject token to the IdP, which alone can judge it', async () => {
    const service = secretService(idp.issuer, { grantType: 'token_exchange' })
    const reference = idp.issueReferenceToken('alice')
    const token = await service.exchangeOboToken(alice, reference, 'files.read', true, undefined, TARGET)
    const claims = await idp.verify(token.access_token, 'api://mcp-files')
    assert.deepEqual([claims.sub, claims.scp], ['alice', 'files.read'])
    const unknown = await rejection(service.exchangeOboToken(alice, 'not-a-token-this-idp-issued', 'files.read', true, undefined, TARGET))
    assert.equal(unknown.error, 'invalid_request', 'the IdP refused it, not a local check')
    assert.equal(unknown.code, undefined)
    assert.equal(idp.counters.exchange, 2)
    const auto = secretService(idp.issuer, { grantType: 'auto' })
    await auto.exchangeOboToken(alice, idp.issueReferenceToken('alice'), 'files.read', true, undefined, TARGET)
    assert.equal(idp.counters.exchange, 3, "'auto' resolving to token exchange sends it too")
  })

  it('still refuses an opaque token locally for On-Behalf-Of', async () => {
    const err = await rejection(secretService(entraLike.issuer).exchangeOboToken(alice, 'opaque-reference-token', FILES))
    assert.equal(err.code, 'ERR_ASSERTION_NOT_JWS')
    assert.equal(entraLike.counters.token, 0)
  })

  it('invalid_target and invalid_request come back as permanent errors with their descriptions', async () => {
    const service = secretService(idp.issuer, { grantType: 'token_exchange', maxRetries: 3 })
    const assertion = await idp.mintUserToken('alice')
    const target = await rejection(service.exchangeOboToken(alice, assertion, 'files.read', true, undefined, { audience: 'api://unknown' }))
    assert.deepEqual([target.status, target.error, target.retryable], [400, 'invalid_target', false])
    assert.match(target.message, /invalid_target\): The target api:\/\/unknown is not available/)
    const { privateKey } = await jose.generateKeyPair('RS256')
    const forged = await new jose.SignJWT({ sub: 'alice', aud: 'api://middle-tier' })
      .setProtectedHeader({ alg: 'RS256' })
      .setIssuer(idp.issuer)
      .setExpirationTime('1h')
      .sign(privateKey)
    const request = await rejection(service.exchangeOboToken(alice, forged, 'files.read', true, undefined, TARGET))
    assert.deepEqual([request.error, request.error_description, request.retryable], ['invalid_request', 'subject_token is invalid', false])
    assert.equal(idp.counters.exchange, 2, 'no retries')
    assert.equal(service.stats().entries, 0)
  })

  it('a target with the On-Behalf-Of grant is refused before the network', async () => {
    const service = secretService(idp.issuer)
    const err = await rejection(service.exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES, true, undefined, TARGET))
    assert.equal(err.code, 'ERR_TARGET_NEEDS_TOKEN_EXCHANGE')
    assert.equal(idp.counters.token, 0)
  })
})

/** A service for one of the key clients; the user token is addressed to that client. */
function keyService(name, options = {}) {
  const client = KEY_CLIENTS[name]
  const service = new OboTokenService({
    issuer: idp.issuer,
    clientId: client.clientId,
    clientAuthMethod: 'private_key_jwt',
    clientAssertionKey: idp.clientKeys[name].privateKeyPem,
    clientAssertionKeyId: client.kid,
    ...options,
  })
  const assertion = () => idp.mintUserToken('alice', { aud: `api://${client.clientId}` })
  return { service, assertion }
}

describe('private_key_jwt', () => {
  it('authenticates with an RSA key by kid, signing a fresh assertion for each request', async () => {
    const { service, assertion } = keyService('rsa')
    const token = await service.exchangeOboToken(alice, await assertion(), FILES)
    assert.equal((await idp.verify(token.access_token, 'api://mcp-files')).azp, KEY_CLIENTS.rsa.clientId)
    const first = idp.lastClientAssertion()
    await service.exchangeOboToken(alice, await assertion(), FILES)
    const second = idp.lastClientAssertion()
    const [a, b] = [first, second].map((jwt) => jose.decodeJwt(jwt))
    assert.notEqual(a.jti, b.jti)
    assert.deepEqual([a.iss, a.sub, a.aud], [KEY_CLIENTS.rsa.clientId, KEY_CLIENTS.rsa.clientId, `${idp.issuer}/token`])
    assert.ok(a.exp - a.iat <= 300)
    assert.deepEqual(jose.decodeProtectedHeader(first), { alg: 'RS256', typ: 'JWT', kid: 'rsa-1' })
  })

  it('the IdP refuses a replayed client assertion', async () => {
    const { service, assertion } = keyService('rsa')
    await service.exchangeOboToken(alice, await assertion(), FILES)
    const replayed = idp.lastClientAssertion()
    const response = await fetch(`${idp.issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
        assertion: await assertion(),
        scope: FILES,
        requested_token_use: 'on_behalf_of',
        client_id: KEY_CLIENTS.rsa.clientId,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: replayed,
      }),
    })
    const body = await response.json()
    assert.equal(response.status, 401)
    assert.equal(body.error, 'invalid_client')
    assert.match(body.error_description, /AADSTS700027: .*(already been used|only be used once)/)
  })

  it('authenticates with an EC P-256 key (ES256 picked from the curve)', async () => {
    const { service, assertion } = keyService('ec')
    await service.exchangeOboToken(alice, await assertion(), FILES)
    assert.equal(jose.decodeProtectedHeader(idp.lastClientAssertion()).alg, 'ES256')
  })

  it('sends x5t#S256 and x5t computed from the certificate, and aud = issuer when asked', async () => {
    const { service, assertion } = keyService('cert', { clientAssertionCertificate: CERTIFICATE, clientAssertionAudience: 'issuer' })
    await service.exchangeOboToken(alice, await assertion(), FILES)
    const jwt = idp.lastClientAssertion()
    const der = new X509Certificate(CERTIFICATE).raw
    const thumbprint = (algorithm) => createHash(algorithm).update(der).digest('base64url')
    const header = jose.decodeProtectedHeader(jwt)
    assert.deepEqual(header, { alg: 'RS256', typ: 'JWT', 'x5t#S256': thumbprint('sha256'), x5t: thumbprint('sha1') })
    assert.equal(jose.decodeJwt(jwt).aud, idp.issuer)
  })

  it('a key the IdP does not know for the client fails as invalid_client, naming no key material', async () => {
    const { service, assertion } = keyService('rsa', { clientAssertionKey: idp.clientKeys.cert.privateKeyPem })
    const err = await rejection(service.exchangeOboToken(alice, await assertion(), FILES))
    assert.deepEqual([err.status, err.error, err.retryable], [401, 'invalid_client', false])
    assert.ok(!err.message.includes('PRIVATE KEY') && !err.message.includes(idp.lastClientAssertion() ?? '\u0000'))
  })

  it('bad key options fail when the service is built, naming the option', () => {
    const base = { issuer: idp.issuer, clientId: 'c', clientAuthMethod: 'private_key_jwt' }
    const pem = idp.clientKeys.ec.privateKeyPem
    assert.throws(() => new OboTokenService({ ...base, clientAssertionKey: pem }), {
      message: /^options\.clientAssertionKeyId or options\.clientAssertionCertificate is required for private_key_jwt/,
    })
    assert.throws(() => new OboTokenService({ ...base, clientAssertionKey: pem, clientAssertionKeyId: 'k', clientAssertionAlg: 'RS256' }), {
      message: /^options\.clientAssertionAlg RS256 does not fit the key in options\.clientAssertionKey$/,
    })
    assert.throws(
      () => new OboTokenService({ ...base, clientAssertionKey: pem, clientAssertionKeyId: 'k', clientAssertionCertificate: 'nope' }),
      {
        message: /^options\.clientAssertionCertificate is not a PEM certificate/,
      },
    )
  })
})

describe('validateAssertion', () => {
  const validating = (options = {}) => secretService(idp.issuer, { validateAssertion: { audiences: ['api://middle-tier'], ...options } })

  it('exchanges an assertion that verifies against the issuer JWKS', async () => {
    const token = await validating().exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES)
    assert.equal((await idp.verify(token.access_token, 'api://mcp-files')).sub, 'alice')
    assert.equal(idp.counters.obo, 1)
  })

  it('refuses, before any token request, a token for another API, a forged one and one from another issuer', async () => {
    const service = validating()
    const graph = await rejection(
      service.exchangeOboToken(alice, await idp.mintUserToken('alice', { aud: '00000003-0000-0000-c000-000000000000' }), FILES),
    )
    assert.equal(graph.code, 'ERR_ASSERTION_INVALID')
    assert.match(
      graph.message,
      /failed validation: its aud "00000003-0000-0000-c000-000000000000" is not among the accepted audiences \[api:\/\/middle-tier\]/,
    )
    const { privateKey } = await jose.generateKeyPair('RS256')
    const sign = (issuer, kid) =>
      new jose.SignJWT({ sub: 'alice', aud: 'api://middle-tier' })
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuer(issuer)
        .setExpirationTime('1h')
        .sign(privateKey)
    const forged = await rejection(service.exchangeOboToken(alice, await sign(idp.issuer, 'k1'), FILES))
    assert.match(forged.message, /its signature does not verify/)
    const unknownKid = await rejection(service.exchangeOboToken(alice, await sign(idp.issuer, 'rotated'), FILES))
    assert.match(unknownKid.message, /no key with kid 'rotated'/)
    const foreign = await rejection(
      validating({ issuers: ['https://login.example.com/tenant/v2.0'] }).exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES),
    )
    assert.match(foreign.message, /its iss "http:\/\/127\.0\.0\.1:\d+" is not among the accepted issuers/)
    for (const err of [graph, forged, unknownKid, foreign]) assert.equal(err.retryable, false)
    // The refused claim is a field, and the doctor's explanation reads it (never the message).
    assert.deepEqual([graph.kind, foreign.kind, forged.kind], ['audience', 'issuer', undefined])
    assert.equal(explainError(graph).what, 'the user token is issued for another API')
    assert.equal(explainError(foreign).what, 'the user token comes from another issuer')
    assert.equal(explainError(forged).what, 'the user token did not verify')
    assert.equal(idp.counters.token, 0)
  })

  it('bad validateAssertion options are named', () => {
    const base = { issuer: idp.issuer, clientId: 'c', clientSecret: 's' }
    assert.throws(() => new OboTokenService({ ...base, validateAssertion: { audiences: 'api://x' } }), {
      message: /^options\.validateAssertion\.audiences must be an array of strings, got string$/,
    })
    assert.throws(() => new OboTokenService({ ...base, validateAssertion: { audiences: [] } }), {
      message: /^options\.validateAssertion\.audiences must name at least one audience/,
    })
    assert.throws(() => new OboTokenService({ ...base, validateAssertion: { audiences: ['a'], leewaySeconds: 900 } }), {
      message: /^options\.validateAssertion\.leewaySeconds must be an integer from 0 to 300, got 900$/,
    })
    assert.throws(() => new OboTokenService({ ...base, validateAssertion: { audience: ['a'] } }), {
      message: /^options\.validateAssertion\.audience is not a known option/,
    })
  })
})
