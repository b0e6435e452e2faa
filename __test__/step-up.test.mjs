// createOboFetch's step-up on a 403 `insufficient_scope` (RFC 6750 §3.1), against a
// resource server on 127.0.0.1 that verifies the OBO token with the local IdP's JWKS:
// an allowed step-up (one more exchange, then the wider token is kept), a refused one
// (the 403 comes back with the challenge readable), no loop when the server keeps
// refusing, and a 403 without a scope challenge still re-exchanging once as before.

import { after, before, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import * as jose from 'jose'
import { startIdp, CLIENTS } from './idp/index.mjs'
import obo from '../index.js'

const { OboTokenService, createOboFetch } = obo
const READ = 'api://mcp-files/files.read'
const WRITE = 'api://mcp-files/files.write'
/** A scope the IdP does not know: a step-up to it is never attempted here. */
const ADMIN = 'api://mcp-files/files.admin'
const alice = { openidId: 'alice' }

let idp
let resource
before(async () => {
  idp = await startIdp()
  resource = await startResource(idp.issuer)
})
after(async () => {
  await resource?.close()
  await idp?.close()
})
beforeEach(() => {
  idp.resetCounters()
  resource.log.length = 0
})

/**
 * `/read` needs `files.read` in `scp`, `/write` needs `files.write` (its challenge: read and
 * write); `/never` challenges for read and write but refuses every token; `/admin` challenges
 * for write and admin; `/forbidden` answers 403 with no challenge. `log` has each request's
 * path and status.
 */
async function startResource(issuer) {
  const jwks = jose.createRemoteJWKSet(new URL(`${issuer}/jwks`))
  const log = []
  const needs = { '/read': 'files.read', '/write': 'files.write', '/never': 'files.admin', '/admin': 'files.admin' }
  const challenged = { '/admin': `${WRITE} ${ADMIN}` }
  const server = createServer(async (req, res) => {
    const answer = (status, headers = {}) => {
      log.push({ path: req.url, status })
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify({ status }))
    }
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1]
    let claims
    try {
      ;({ payload: claims } = await jose.jwtVerify(token ?? '', jwks, { issuer, audience: 'api://mcp-files' }))
    } catch {
      return answer(401, { 'www-authenticate': 'Bearer error="invalid_token"' })
    }
    if (req.url === '/forbidden') return answer(403)
    const needed = needs[req.url]
    if (!String(claims.scp).split(' ').includes(needed)) {
      const wanted = challenged[req.url] ?? `${READ} ${WRITE}`
      return answer(403, {
        'www-authenticate': `Bearer error="insufficient_scope", scope="${wanted}", resource_metadata="http://127.0.0.1/prm"`,
      })
    }
    answer(200)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  return {
    log,
    url: (path) => `${base}${path}`,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(resolve))
    },
  }
}

async function oboFetch(oboConfig) {
  const service = new OboTokenService({ issuer: idp.issuer, clientId: CLIENTS.post.clientId, clientSecret: CLIENTS.post.clientSecret })
  const upstream = await idp.mintUserToken('alice')
  return createOboFetch({ user: alice, oboConfig, resolver: service, upstreamTokenProvider: async () => ({ access_token: upstream }) })
}

const statuses = () => resource.log.map((entry) => `${entry.path} ${entry.status}`)

test('an allowed step-up: one more exchange for the union of scopes, and later requests keep it', async () => {
  const fetch = await oboFetch({ scopes: READ, stepUpScopes: [WRITE] })
  assert.equal((await fetch(resource.url('/read'))).status, 200)
  assert.equal((await fetch(resource.url('/write'))).status, 200)
  assert.equal((await fetch(resource.url('/write'))).status, 200)
  assert.deepEqual(statuses(), ['/read 200', '/write 403', '/write 200', '/write 200'])
  assert.equal(idp.counters.obo, 2, 'the read token, then one for read and write')
})

test('a refused step-up: a scope off the allow list returns the 403 with the challenge readable', async () => {
  for (const stepUpScopes of [undefined, 'api://mcp-files/files.other']) {
    idp.resetCounters()
    resource.log.length = 0
    const fetch = await oboFetch({ scopes: READ, stepUpScopes })
    const response = await fetch(resource.url('/write'))
    assert.equal(response.status, 403)
    assert.deepEqual(response.oboChallenge.refusedScopes, [WRITE])
    assert.deepEqual(response.oboChallenge.scopes, [READ, WRITE])
    assert.equal(response.oboChallenge.error, 'insufficient_scope')
    assert.equal(response.oboChallenge.resourceMetadata, 'http://127.0.0.1/prm')
    assert.deepEqual(await response.json(), { status: 403 }, 'the body is left for the caller')
    assert.deepEqual(statuses(), ['/write 403'])
    assert.equal(idp.counters.obo, 1)
  }
  const partly = await oboFetch({ scopes: READ, stepUpScopes: [WRITE] })
  const response = await partly(resource.url('/admin'))
  assert.deepEqual(response.oboChallenge.refusedScopes, [ADMIN], 'every challenged scope must be allowed')
})

test('no loop: a server that refuses the stepped-up token too gets two requests in all', async () => {
  const fetch = await oboFetch({ scopes: READ, stepUpScopes: WRITE })
  const response = await fetch(resource.url('/never'))
  assert.equal(response.status, 403)
  assert.deepEqual(statuses(), ['/never 403', '/never 403'])
  assert.deepEqual(response.oboChallenge.refusedScopes, [])
  assert.equal(idp.counters.obo, 2)
  assert.equal((await fetch(resource.url('/read'))).status, 200, 'the configured scopes are still used')
  assert.equal(idp.counters.obo, 2, 'a cached token for them')
})

test('a 403 without a scope challenge re-exchanges once, as before; stepUpScopes is type-checked', async () => {
  const fetch = await oboFetch({ scopes: READ })
  const response = await fetch(resource.url('/forbidden'))
  assert.equal(response.status, 403)
  assert.equal(response.oboChallenge, undefined)
  assert.deepEqual(statuses(), ['/forbidden 403', '/forbidden 403'])
  assert.equal(idp.counters.obo, 2, 'forceRefresh')
  await assert.rejects(oboFetch({ scopes: READ, stepUpScopes: [1] }), {
    name: 'TypeError',
    message: /oboConfig\.stepUpScopes must be a string or an array of strings/,
  })
})
