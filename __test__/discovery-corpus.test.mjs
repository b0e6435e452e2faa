// Real providers' discovery documents (`discovery-corpus/`, sources in its SOURCES.md),
// each served from a loopback server with a token endpoint that answers a token: an
// exchange completes for grantType unset and for 'auto', and 'auto' picks what the
// README's table says. Only the documents' URLs are rewritten, to the loopback server;
// Entra's multi-tenant documents are served at their real URL instead, through the
// `proxy` option and a test CA (discovery-proxy.test.mjs), since rewriting their host
// would take them out of openid-client's Entra exception.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'
import { OboTokenService } from './helpers.mjs'
import serviceModule from '../lib/service.js'

const { planOf } = serviceModule
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** {"alg":"RS256","typ":"JWT"}.{"sub":"alice","exp":4102444800}.signature: a JWS the IdP alone would judge. */
const ASSERTION = 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0.c2ln'
const SCOPES = 'api://mcp/.default'

/**
 * Each document and the grant `auto` must pick (none of them lists token exchange).
 * `tokenEndpoint`: the document has none, so the operator configures it.
 */
const CORPUS = [
  { file: 'entra-tenant-v2.json', provider: 'Microsoft Entra ID v2.0 (one tenant)', auto: 'jwt_bearer' },
  { file: 'google.json', provider: 'Google', auto: 'jwt_bearer' },
  { file: 'gitlab.json', provider: 'GitLab', auto: 'jwt_bearer' },
  { file: 'auth0.json', provider: 'Auth0', auto: 'jwt_bearer' },
  { file: 'keycloak.json', provider: 'Keycloak (realm)', auto: 'jwt_bearer' },
  { file: 'okta-default.json', provider: 'Okta (default authorization server)', auto: 'jwt_bearer' },
  { file: 'adfs.json', provider: 'AD FS', auto: 'jwt_bearer' },
  { file: 'dex.json', provider: 'Dex', auto: 'jwt_bearer' },
]

/** The document's text with every URL origin (and a `<platform-url>` placeholder) made `base`. */
function rewritten(file, base) {
  const text = readFileSync(new URL(`./discovery-corpus/${file}`, import.meta.url), 'utf8')
  return JSON.parse(text.replaceAll(/https?:\/\/[^/"\s]+|<platform-url>/gi, base))
}

/**
 * A loopback IdP serving the document at the well-known URL of `issuerPath` (by default
 * its own issuer's) and answering tokens; `grants` records each grant_type.
 */
async function serve(documentFor, issuerPath) {
  const state = { document: undefined, grants: [], paths: [] }
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => {
      body += chunk
    })
    req.on('end', () => {
      state.paths.push(`${req.method} ${req.url}`)
      const at = issuerPath ?? new URL(state.document.issuer).pathname.replace(/\/$/, '')
      const reply = (status, value) => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(value))
      }
      if (req.method === 'GET' && req.url === `${at}/.well-known/openid-configuration`) return reply(200, state.document)
      if (req.method === 'POST' && state.document.token_endpoint && req.url === new URL(state.document.token_endpoint).pathname) {
        state.grants.push(new URLSearchParams(body).get('grant_type'))
        return reply(200, { access_token: `at-${state.grants.length}`, token_type: 'Bearer', expires_in: 3600 })
      }
      reply(404, { error: 'not_found' })
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  state.document = documentFor(base)
  const close = () => {
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeAllConnections() // the service's pooled connections would hold it open
    return closed
  }
  return { state, base, close }
}

function service(issuer, options = {}) {
  return new OboTokenService({ issuer, clientId: 'middle-tier', clientSecret: 'middle-secret', maxRetries: 0, ...options })
}

describe('the discovery corpus', () => {
  const picked = new Map()

  for (const entry of CORPUS) {
    describe(entry.provider, () => {
      let idp
      before(async () => {
        idp = await serve((base) => rewritten(entry.file, base))
      })
      after(() => idp.close())

      it('exchanges with grantType unset and with auto, and auto picks what the table says', async () => {
        const issuer = idp.state.document.issuer
        const unset = await service(issuer).exchangeOboToken({ openidId: 'alice' }, ASSERTION, SCOPES)
        assert.equal(unset.access_token, 'at-1')
        const auto = service(issuer, { grantType: 'auto' })
        const plan = await planOf(auto)
        const token = await auto.exchangeOboToken({ openidId: 'alice' }, ASSERTION, SCOPES)
        assert.equal(token.access_token, 'at-2')
        assert.deepEqual(idp.state.grants, [JWT_BEARER, plan.grantUrn])
        assert.equal(plan.grant, entry.auto)
        assert.match(plan.grantReason, /^auto: /)
        assert.ok(!plan.grantReason.includes('[]'))
        picked.set(entry.provider, plan.grant)
      })
    })
  }

  describe('Amazon Cognito (a user pool without a domain: no token_endpoint)', () => {
    let idp
    before(async () => {
      idp = await serve((base) => rewritten('cognito.json', base))
    })
    after(() => idp.close())

    it('is read without the members it lacks, and says which one an exchange needs', async () => {
      const issuer = idp.state.document.issuer
      await assert.rejects(planOf(service(issuer, { grantType: 'auto' })), {
        name: 'OboExchangeError',
        code: 'ERR_IDP_DISCOVERY',
        retryable: false,
        message: /OpenID discovery failed for .*: the discovery document has no token_endpoint$/,
      })
      const tokenEndpoint = `${new URL(issuer).origin}/oauth2/token`
      const configured = service(issuer, { tokenEndpoint })
      const plan = await planOf(configured)
      assert.equal(plan.tokenEndpoint, tokenEndpoint)
      assert.equal(plan.discoveryDocument, undefined, 'nothing to discover')
    })
  })

  describe("Entra's multi-tenant documents served from another host", () => {
    for (const file of ['entra-common-v2.json', 'entra-organizations-v2.json', 'entra-common-v1.json']) {
      it(`${file}: the {tenantid} issuer is another issuer anywhere but at login.microsoftonline.com`, async () => {
        const tenantPath = file.startsWith('entra-organizations') ? '/organizations' : '/common'
        const issuerPath = `${tenantPath}${file.endsWith('v2.json') ? '/v2.0' : ''}`
        const idp = await serve((base) => rewritten(file, base), issuerPath)
        try {
          const issuer = `${idp.base}${issuerPath}`
          const err = await service(issuer, { grantType: 'auto' })
            .exchangeOboToken({ openidId: 'alice' }, ASSERTION, SCOPES)
            .catch((e) => e)
          assert.match(err.message, /the document names another issuer \(http:\/\/127\.0\.0\.1:\d+\/\{tenantid\}/)
          assert.equal(idp.state.grants.length, 0, 'nothing is sent')
        } finally {
          await idp.close()
        }
      })
    }
  })

  after(() => {
    assert.equal(picked.size, CORPUS.length, 'every document was exchanged against')
  })
})
