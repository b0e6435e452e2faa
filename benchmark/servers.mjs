// Child process of the benchmark: a canned token endpoint (isolates client cost) and the
// local IdP, on 127.0.0.1, and the local IdP again over TLS for MSAL Node when openssl can
// make a certificate. Prints one JSON line with their URLs, then serves until killed.
// Running them outside the measured process keeps their CPU out of the client's figures.

import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
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
        json(200, {
          token_type: 'Bearer',
          expires_in: 3600,
          ext_expires_in: 3600,
          scope: 'api://mcp-files/files.read',
          access_token: `eyJ0eXAiOiJKV1QifQ.${TOKEN_BODY}.${n}`,
        })
      })
      return
    }
    json(404, { error: 'not_found' })
  })
  server.keepAliveTimeout = 30_000
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${server.address().port}`)))
}

/**
 * A self-signed certificate for 127.0.0.1 from the openssl command (MSAL Node wants an
 * https authority), in a temporary directory removed at exit; null without openssl.
 */
function loopbackCertificate() {
  const dir = mkdtempSync(join(tmpdir(), 'librechat-obo-bench-tls-'))
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
  const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')]
  const made = spawnSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore', timeout: 30_000 },
  )
  if (made.status !== 0) return null
  return { key: readFileSync(key), cert: readFileSync(cert), caFile: cert }
}

const canned = await startCanned()
const idp = await startIdp()
const tls = loopbackCertificate()
const tlsIdp = tls && (await startIdp({ tls }))
// Test-only minting for the benchmark's IdP runs: GET /mint?n=…[&tls=1] returns n fresh user tokens;
// GET /idp sets the local IdP's token lifetime and delay (the churn scenario).
const control = createServer(async (req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1')
  const query = url.searchParams
  // GET /idp?expiresIn=…&oboDelayMs=…: the churn scenario's token lifetime and IdP delay.
  if (url.pathname === '/idp') {
    idp.setExpiresIn(Number(query.get('expiresIn') ?? 3600))
    idp.setOboDelay(Number(query.get('oboDelayMs') ?? 0))
    res.writeHead(200, { 'content-type': 'application/json' })
    return res.end('{}')
  }
  const n = Number(query.get('n') ?? 1)
  const from = query.get('tls') && tlsIdp ? tlsIdp : idp
  const tokens = await Promise.all(Array.from({ length: Math.min(n, 10_000) }, () => from.mintUserToken('alice')))
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(tokens))
})
await new Promise((resolve) => control.listen(0, '127.0.0.1', resolve))
console.log(
  JSON.stringify({
    canned,
    idp: idp.issuer,
    control: `http://127.0.0.1:${control.address().port}`,
    tlsIdp: tlsIdp?.issuer ?? null,
    caFile: tls?.caFile ?? null,
  }),
)
process.on('SIGTERM', () => process.exit(0))
