// Child process of the benchmark: a canned token endpoint (isolates client cost) and the
// local IdP, on 127.0.0.1. Prints one JSON line with their URLs, then serves until killed.
// Running them outside the measured process keeps their CPU out of the client's figures.

import { createServer } from 'node:http'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { startIdp } from '../__test__/idp/index.mjs'

/** A token of a realistic size (an Entra access token is 1.2-2 KB). */
const TOKEN_BODY = randomBytes(900).toString('base64url')

function startCanned() {
  const state = { token: 0, delayMs: 0 }
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1')
    const json = (status, body) => {
      const text = JSON.stringify(body)
      res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
      res.end(text)
    }
    const base = `http://127.0.0.1:${server.address().port}`
    if (url.pathname === '/.well-known/openid-configuration') {
      return json(200, {
        issuer: base,
        authorization_endpoint: `${base}/authorize`,
        token_endpoint: `${base}/token`,
        jwks_uri: `${base}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        grant_types_supported: ['urn:ietf:params:oauth:grant-type:jwt-bearer'],
      })
    }
    if (url.pathname === '/jwks') return json(200, { keys: [] })
    if (url.pathname === '/__count') return json(200, { token: state.token })
    if (url.pathname === '/__config') {
      state.delayMs = Number(url.searchParams.get('delayMs') ?? 0)
      state.token = 0
      return json(200, state)
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      req.resume()
      req.on('end', async () => {
        state.token += 1
        const n = state.token
        if (state.delayMs) await sleep(state.delayMs)
        json(200, { token_type: 'Bearer', expires_in: 3600, ext_expires_in: 3600, scope: 'api://mcp-files/files.read', access_token: `eyJ0eXAiOiJKV1QifQ.${TOKEN_BODY}.${n}` })
      })
      return
    }
    json(404, { error: 'not_found' })
  })
  server.keepAliveTimeout = 30_000
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)))
}

const canned = await startCanned()
const idp = await startIdp()
// Test-only minting for the benchmark's IdP runs: GET /mint?n=… returns n fresh user tokens.
const control = createServer(async (req, res) => {
  const n = Number(new URL(req.url, 'http://127.0.0.1').searchParams.get('n') ?? 1)
  const tokens = await Promise.all(Array.from({ length: Math.min(n, 10_000) }, () => idp.mintUserToken('alice')))
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(tokens))
})
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve))
console.log(JSON.stringify({ canned, idp: idp.issuer, control: `http://127.0.0.1:${control.address().port}` }))
process.on('SIGTERM', () => process.exit(0))
