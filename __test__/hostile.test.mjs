// Answers from a broken or hostile server, through the public API against the local IdP and the
// MCP authorization server (ID-JAG leg 2): a body that breaks off after its head, a server that
// echoes the credentials it received, a token that is no bearer token or is too large.

import { describe, it, before, after, beforeEach } from 'node:test'
import assert from 'node:assert/strict'
import { startIdp, USERS, TENANT } from './idp/index.mjs'
import { AS_CLIENTS } from './idp/mcp-as.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'
import { newService, rejection, FILES, OboExchangeError } from './helpers.mjs'
import obo from '../index.js'

const { createOboFetch } = obo
const alice = { openidId: 'alice' }
/** An Entra-style secret: `~`, and what else form encoding changes. */
const SECRET = 'Hz8Q~vX3.a+b/c=d e&f'
const BAD_TOKENS = ['abc\r\nX-Injected: 1', ' ', '\u0000']

/** `value` as `application/x-www-form-urlencoded` sends it. */
const formEncoded = (value) => new URLSearchParams({ v: value }).toString().slice(2)
/** Every form in which a client secret (and the Basic credential) may come back. */
const secretForms = (clientId, secret) => [
  secret,
  formEncoded(secret),
  Buffer.from(`${formEncoded(clientId)}:${formEncoded(secret)}`).toString('base64'),
  Buffer.from(`${clientId}:${secret}`).toString('base64'),
]
/** What a caller can see of an error: its message and every field, at every level of its `cause` chain. */
const visible = (err) => {
  const levels = []
  for (let level = err; level && levels.length < 10; level = level.cause) levels.push({ message: level.message, ...level })
  return JSON.stringify(levels)
}
const tokenAnswer = (accessToken) => ({ status: 200, body: { access_token: accessToken, token_type: 'Bearer', expires_in: 3600 } })

describe('a broken or hostile IdP', { timeout: 60_000 }, () => {
  let idp
  before(async () => {
    idp = await startIdp()
  })
  after(() => idp?.close())
  beforeEach(() => idp.resetCounters())

  it('an answer cut short after its head is ECONNRESET with its status, and a 503 cut short is retried', async () => {
    const { service } = newService(idp, { maxRetries: 0 })
    idp.injectFaults({ cut: 503 })
    const err = await rejection(service.exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES))
    assert.ok(err instanceof OboExchangeError)
    assert.equal(err.code, 'ECONNRESET')
    assert.equal(err.status, 503)
    assert.equal(err.retryable, true)
    idp.injectFaults({ cut: 200 })
    const ok = await rejection(service.exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES))
    assert.equal(ok.code, 'ECONNRESET')
    assert.equal(ok.status, 200)

    const { service: retrying } = newService(idp, { maxRetries: 1 })
    idp.resetCounters()
    idp.injectFaults({ cut: 503 })
    const token = await retrying.exchangeOboToken(alice, await idp.mintUserToken('alice'), FILES)
    assert.ok(token.access_token)
    assert.equal(idp.counters.token, 2)
  })

  for (const method of ['client_secret_post', 'client_secret_basic']) {
    it(`an IdP that echoes what it received shows no form of the secret or assertion (${method})`, async () => {
      const client = { clientId: 'middle tier:1', clientSecret: SECRET, method }
      const { service, logs } = newService(idp, {}, client)
      const assertion = await idp.mintUserToken('alice')
      idp.injectFaults({ echo: true })
      const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
      assert.equal(err.status, 400)
      assert.match(err.error_description, /^Received grant_type=/, 'the echo arrived')
      assert.match(err.error_description, /\[redacted\]/)
      const seen = `${visible(err)} ${JSON.stringify(logs)}`
      for (const form of [...secretForms(client.clientId, SECRET), assertion, formEncoded(assertion)]) {
        assert.ok(!seen.includes(form), `${form} is shown: ${seen}`)
      }
    })
  }

  it('a token that is no bearer token is refused with a code, never shown, and not cached', async () => {
    const { service, logs } = newService(idp)
    const assertion = await idp.mintUserToken('alice')
    for (const bad of BAD_TOKENS) {
      idp.injectFaults(tokenAnswer(bad))
      const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
      assert.equal(err.code, 'ERR_TOKEN_MALFORMED', err.message)
      assert.equal(err.retryable, false)
      assert.ok(!visible(err).includes('Injected') && !JSON.stringify(logs).includes('Injected'))
    }
    const token = await service.exchangeOboToken(alice, assertion, FILES)
    assert.match(token.access_token, /^[\w.~+/-]+=*$/)
    assert.equal(idp.counters.token, BAD_TOKENS.length + 1, 'nothing refused was cached')
  })

  it('createOboFetch rejects with the exchange error, not a TypeError carrying the token', async () => {
    const { service } = newService(idp)
    const upstream = await idp.mintUserToken('alice')
    let sent = 0
    const fetch = createOboFetch({
      user: alice,
      oboConfig: { scopes: FILES },
      resolver: service,
      upstreamTokenProvider: async () => ({ access_token: upstream }),
      fetch: async () => {
        sent += 1
        return new Response('')
      },
    })
    idp.injectFaults(tokenAnswer(BAD_TOKENS[0]))
    const err = await rejection(fetch('http://127.0.0.1:9/mcp'))
    assert.notEqual(err.name, 'TypeError')
    assert.ok(!visible(err).includes('Injected'), visible(err))
    assert.equal(err.cause?.code, 'ERR_TOKEN_MALFORMED')
    assert.equal(sent, 0)
  })

  it('a token over 64 KiB is refused; one of 64 KiB is handed out', async () => {
    const { service } = newService(idp)
    const assertion = await idp.mintUserToken('alice')
    idp.injectFaults(tokenAnswer('a'.repeat(64 * 1024 + 1)))
    const err = await rejection(service.exchangeOboToken(alice, assertion, FILES))
    assert.equal(err.code, 'ERR_TOKEN_TOO_LARGE')
    idp.injectFaults(tokenAnswer('a'.repeat(64 * 1024)))
    const token = await service.exchangeOboToken(alice, assertion, FILES)
    assert.equal(token.access_token.length, 64 * 1024)
  })
})

describe('a broken or hostile MCP authorization server (ID-JAG leg 2)', { timeout: 60_000 }, () => {
  const servers = useIdJagServers()

  /** The MCP server and its authorization server are on 127.0.0.1, which the SSRF policy refuses unless listed. */
  const idJagService = (client, options = {}) => {
    const authorizationServer = { clientId: client.clientId, clientSecret: client.clientSecret, clientAuthMethod: client.method }
    return newService(servers.idp, { grantType: 'id_jag', authorizationServer, allowedDomains: ['127.0.0.1'], ...options })
  }
  const exchange = async (service) =>
    service.exchangeOboToken(
      { openidId: USERS.alice.oid, tenantId: TENANT },
      await servers.idp.mintIdToken('alice'),
      'files.read',
      true,
      undefined,
      {
        resource: servers.mcp.resource,
      },
    )

  for (const method of ['client_secret_post', 'client_secret_basic']) {
    it(`leg 2 echoing what it received shows no form of its client secret or the ID-JAG (${method})`, async () => {
      const client = { clientId: AS_CLIENTS.secret.clientId, clientSecret: SECRET, method }
      const { service, logs } = idJagService(client)
      servers.as.injectFaults({ echo: true })
      const err = await rejection(exchange(service))
      assert.equal(err.idJagStep, 'leg2')
      assert.equal(err.status, 400)
      assert.match(err.error_description, /assertion=\[redacted\]/, 'the ID-JAG, form-encoded')
      assert.match(err.cause.message, /^The MCP server's authorization server rejected .*\[redacted\]/, "leg 2's own error is the cause")
      const seen = `${visible(err)} ${JSON.stringify(logs)}`
      assert.ok(!/eyJ[\w-]+\.eyJ/.test(seen), `a JWT is shown: ${seen}`)
      for (const form of secretForms(client.clientId, SECRET)) assert.ok(!seen.includes(form), `${form} is shown: ${seen}`)
    })
  }

  it('a leg-2 token that is no bearer token is refused with a code and not cached', async () => {
    const { service } = idJagService(AS_CLIENTS.secret)
    servers.as.injectFaults(tokenAnswer(BAD_TOKENS[0]))
    const err = await rejection(exchange(service))
    assert.equal(err.idJagStep, 'leg2')
    assert.equal(err.code, 'ERR_TOKEN_MALFORMED')
    assert.ok(!visible(err).includes('Injected'))
    const token = await exchange(service)
    assert.ok(token.access_token)
    assert.equal(servers.as.counters.token, 2)
  })

  it('a leg-2 answer cut short is ECONNRESET with its status, and retried', async () => {
    servers.as.injectFaults({ cut: 503 })
    const err = await rejection(exchange(idJagService(AS_CLIENTS.secret, { maxRetries: 0 }).service))
    assert.equal(err.idJagStep, 'leg2')
    assert.equal(err.code, 'ECONNRESET')
    assert.equal(err.cause.code, 'ECONNRESET', "leg 2's own failure is the cause, with its code")
    assert.ok(err.cause.cause instanceof Error, "and the HTTP client's error below it")
    assert.ok(err.message.includes(err.cause.cause.message), visible(err))
    assert.equal(err.status, 503)
    assert.equal(err.retryable, true)
    servers.idp.resetCounters()
    servers.as.injectFaults({ cut: 503 })
    const { service } = idJagService(AS_CLIENTS.secret, { maxRetries: 1 })
    const token = await exchange(service)
    assert.ok(token.access_token)
    assert.equal(servers.idp.counters.idJag, 2, 'leg 1 ran again, as after any failed leg 2')
  })
})
