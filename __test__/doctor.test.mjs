// `librechat-obo doctor` against the local IdP: a healthy set-up, and each
// misconfiguration it must name (wrong secret, several resources in one scope string, a
// missing resource prefix, an unknown resource, missing consent, MFA, OPENID_SCOPE without
// the app's own API scope, an id_token passed as the assertion, a grant the IdP does not
// advertise, a wrong issuer), through the library and through the command line.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createRequire } from 'node:module'
import { startIdp, CLIENTS } from './idp/index.mjs'

const require = createRequire(import.meta.url)
const { runDoctor } = require('../lib/doctor.js')
const cli = fileURLToPath(new URL('../bin/librechat-obo.js', import.meta.url))

let idp
let entraLike
let dir
before(async () => {
  idp = await startIdp()
  entraLike = await startIdp({ tokenExchange: false })
  dir = mkdtempSync(join(tmpdir(), 'librechat-obo-doctor-test-'))
})
after(async () => {
  await idp.close()
  await entraLike.close()
  rmSync(dir, { recursive: true, force: true })
})

const env = (overrides = {}) => ({
  OPENID_ISSUER: idp.issuer,
  OPENID_CLIENT_ID: CLIENTS.post.clientId,
  OPENID_CLIENT_SECRET: CLIENTS.post.clientSecret,
  ...overrides,
})

/** A librechat.yaml with the given `name: scopes` servers. */
function config(servers) {
  const path = join(dir, `librechat-${Object.keys(servers).join('-')}.yaml`)
  const body = Object.entries(servers)
    .map(([name, scopes]) => `  ${name}:\n    url: http://127.0.0.1:9/mcp\n    obo:\n      scopes: "${scopes}"\n`)
    .join('')
  writeFileSync(path, `mcpServers:\n${body}`)
  return path
}

const FILES_ONLY = () => config({ files: 'api://mcp-files/files.read' })
const check = (result, name) => result.checks.find((c) => c.name === name)

describe('doctor', () => {
  it('passes a healthy set-up, with a live exchange for the user', async () => {
    const result = await runDoctor({ env: env(), configPath: FILES_ONLY(), userToken: await idp.mintUserToken('alice') })
    assert.equal(result.ok, true, JSON.stringify(result.checks, null, 2))
    assert.deepEqual(
      result.checks.map((c) => [c.name, c.status]),
      [
        ['configuration', 'ok'],
        ['librechat.yaml', 'ok'],
        ['discovery', 'ok'],
        ['grant', 'ok'],
        ['client credential', 'ok'],
        ['server files', 'ok'],
        ['user token', 'ok'],
        ['exchange files', 'ok'],
      ],
    )
    assert.match(check(result, 'exchange files').detail, /token issued \(aud api:\/\/mcp-files, scopes files\.read/)
  })

  it('names scope mistakes: several resources, no resource prefix, an unknown resource', async () => {
    const path = config({
      both: 'api://mcp-files/files.read api://mcp-mail/mail.read',
      bare: 'notes.read',
      unknown: 'api://mcp-tickets/tickets.read',
    })
    const result = await runDoctor({ env: env(), configPath: path, userToken: await idp.mintUserToken('alice') })
    assert.equal(result.ok, false)
    assert.equal(check(result, 'server both').status, 'fail')
    assert.match(check(result, 'server both').detail, /name 2 resources \(api:\/\/mcp-files, api:\/\/mcp-mail\)/)
    assert.equal(check(result, 'server bare').status, 'warn')
    assert.match(check(result, 'server bare').detail, /"notes\.read" has no resource prefix/)
    assert.match(
      check(result, 'exchange unknown').detail,
      /^the resource \(API\) in the scopes does not exist in this tenant .*AADSTS500011/,
    )
    assert.match(check(result, 'exchange unknown').fix, /Application ID URI/)
    assert.match(check(result, 'exchange both').detail, /more than one resource/)
  })

  it('recognises Entra refusing obo.resource beside the scopes (AADSTS9010010) and names the setting', async () => {
    const path = join(dir, 'librechat-resource.yaml')
    writeFileSync(
      path,
      'mcpServers:\n  files:\n    url: http://127.0.0.1:9/mcp\n    obo:\n      scopes: "api://mcp-files/files.read"\n      resource: "https://mcp.example/mcp"\n',
    )
    const userToken = await idp.mintUserToken('alice')
    const byDefault = await runDoctor({ env: env(), configPath: path, userToken })
    assert.equal(check(byDefault, 'exchange files').status, 'ok', 'auto: not sent with On-Behalf-Of')
    const sent = await runDoctor({ env: env({ LIBRECHAT_OBO_RESOURCE_INDICATOR: 'send' }), configPath: path, userToken })
    assert.equal(check(sent, 'exchange files').status, 'fail')
    assert.match(check(sent, 'exchange files').detail, /^Entra refused the resource parameter.*AADSTS9010010/)
    assert.match(check(sent, 'exchange files').fix, /LIBRECHAT_OBO_RESOURCE_INDICATOR to auto/)
  })

  it('without a user token, says the live checks were not run', async () => {
    const result = await runDoctor({ env: env(), configPath: FILES_ONLY() })
    assert.equal(result.ok, true)
    assert.match(check(result, 'live exchange').detail, /give --user-token/)
  })

  it('names missing consent and a Conditional Access (MFA) requirement', async () => {
    const consent = await runDoctor({ env: env(), configPath: FILES_ONLY(), userToken: await idp.mintUserToken('carol') })
    assert.match(check(consent, 'exchange files').detail, /^consent is missing/)
    assert.match(check(consent, 'exchange files').fix, /admin consent/)
    const mfa = await runDoctor({ env: env(), configPath: FILES_ONLY(), userToken: await idp.mintUserToken('bob') })
    assert.match(check(mfa, 'exchange files').detail, /^Conditional Access requires multi-factor authentication/)
  })

  it('names a wrong client secret without needing a user', async () => {
    const result = await runDoctor({ env: env({ OPENID_CLIENT_SECRET: 'the-secret-id-not-its-value' }), configPath: FILES_ONLY() })
    assert.equal(result.ok, false)
    assert.match(check(result, 'client credential').detail, /^the client secret is wrong .*AADSTS7000215/)
    assert.match(check(result, 'client credential').fix, /secret's Value/)
    assert.ok(!JSON.stringify(result).includes('the-secret-id-not-its-value'), 'the secret is never shown')
  })

  it('names a user token for Graph (OPENID_SCOPE without the app scope) and an id_token', async () => {
    const graph = await idp.mintUserToken('alice', { aud: '00000003-0000-0000-c000-000000000000' })
    const graphResult = await runDoctor({ env: env(), configPath: FILES_ONLY(), userToken: graph })
    assert.match(check(graphResult, 'user token').detail, /issued for Microsoft Graph, not for this app: OPENID_SCOPE is missing/)
    assert.match(check(graphResult, 'user token').fix, /OPENID_SCOPE/)
    const idToken = await idp.mintUserToken('alice', { aud: CLIENTS.post.clientId, extra: { nonce: 'n-0S6', scp: undefined } })
    const idResult = await runDoctor({ env: env(), configPath: FILES_ONLY(), userToken: idToken })
    assert.match(check(idResult, 'user token').detail, /^this is an id_token/)
    for (const result of [graphResult, idResult]) assert.ok(!JSON.stringify(result).includes(graph.split('.')[2]))
  })

  it('names a grant the IdP does not advertise, and a wrong issuer', async () => {
    const grant = await runDoctor({
      env: env({ OPENID_ISSUER: entraLike.issuer, LIBRECHAT_OBO_GRANT_TYPE: 'token_exchange' }),
      configPath: FILES_ONLY(),
    })
    assert.equal(check(grant, 'grant').status, 'fail')
    assert.match(check(grant, 'grant').detail, /does not advertise urn:ietf:params:oauth:grant-type:token-exchange/)
    assert.match(check(grant, 'client credential').detail, /^the IdP does not offer the grant/)
    const auto = await runDoctor({ env: env({ OPENID_ISSUER: entraLike.issuer, LIBRECHAT_OBO_GRANT_TYPE: 'auto' }) })
    assert.equal(check(auto, 'grant').status, 'ok')
    assert.equal(
      check(auto, 'grant').detail,
      'auto picks jwt_bearer: grant_types_supported does not list token exchange, so On-Behalf-Of (jwt-bearer)',
    )
    assert.equal(
      check(auto, 'discovery').detail,
      `token endpoint ${entraLike.issuer}/token; read ${entraLike.issuer}/.well-known/openid-configuration, issuer ${entraLike.issuer}`,
    )
    const wrong = await runDoctor({ env: env({ OPENID_ISSUER: `${idp.issuer}/tenant-typo` }) })
    assert.equal(check(wrong, 'discovery').status, 'fail')
    assert.match(check(wrong, 'discovery').fix, /OPENID_ISSUER/)
    const missing = await runDoctor({ env: { OPENID_CLIENT_ID: 'x' } })
    assert.deepEqual(
      missing.checks.map((c) => [c.name, c.status]),
      [['configuration', 'fail']],
    )
    assert.match(missing.checks[0].detail, /OPENID_ISSUER is required/)
  })
})

describe('librechat-obo doctor (command line)', () => {
  // The child's environment is only what each test gives it, plus the binary this run loads when
  // it is not the loader's own choice (scripts/musl-suite.sh: a musl Node on a glibc host).
  const { NAPI_RS_NATIVE_LIBRARY_PATH } = process.env
  const binaryOverride = NAPI_RS_NATIVE_LIBRARY_PATH ? { NAPI_RS_NATIVE_LIBRARY_PATH } : {}
  const run = (args, { env: childEnv = env(), input } = {}) =>
    new Promise((resolve) => {
      const child = execFile(
        process.execPath,
        [cli, ...args],
        { env: { PATH: process.env.PATH, ...binaryOverride, ...childEnv }, timeout: 60_000 },
        (err, stdout, stderr) => resolve({ status: err ? err.code : 0, stdout, stderr }),
      )
      child.stdin.end(input ?? '')
    })

  it('exits 0 when healthy and 1 with a problem; --json is machine-readable', async () => {
    const healthy = await run(['doctor', '--config', FILES_ONLY()])
    assert.equal(healthy.status, 0, healthy.stdout + healthy.stderr)
    assert.match(healthy.stdout, /^librechat-obo doctor: issuer http:\/\/127\.0\.0\.1:\d+, client middle-tier\n/)
    assert.match(healthy.stdout, /\[ok\] {3}client credential: accepted/)
    const broken = await run(['doctor', '--json'], { env: env({ OPENID_CLIENT_SECRET: 'wrong' }) })
    assert.equal(broken.status, 1)
    const result = JSON.parse(broken.stdout)
    assert.equal(result.ok, false)
    assert.equal(check(result, 'client credential').status, 'fail')
  })

  it('reads the user token from standard input and variables from --env-file', async () => {
    const envFile = join(dir, '.env')
    writeFileSync(
      envFile,
      `OPENID_ISSUER=${idp.issuer}\nOPENID_CLIENT_ID=${CLIENTS.post.clientId}\nOPENID_CLIENT_SECRET=${CLIENTS.post.clientSecret}\n`,
    )
    const token = await idp.mintUserToken('alice')
    const out = await run(['doctor', '--env-file', envFile, '--config', FILES_ONLY(), '--user-token', '-', '--json'], {
      env: {},
      input: `${token}\n`,
    })
    assert.equal(out.status, 0, out.stdout + out.stderr)
    assert.equal(check(JSON.parse(out.stdout), 'exchange files').status, 'ok')
    assert.ok(!out.stdout.includes(token))
  })

  it('exits 2 with the usage for a wrong command', async () => {
    const out = await run(['diagnose'])
    assert.equal(out.status, 2)
    assert.match(out.stderr, /^Usage: librechat-obo doctor/)
  })
})
