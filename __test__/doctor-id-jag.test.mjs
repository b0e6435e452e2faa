// `librechat-obo doctor` on MCP servers with `obo.profile: 'id-jag'`: the metadata chain from
// the server's URL to its authorization server, checked as an exchange checks it, against the
// local IdP, a second oidc-provider as the MCP authorization server and the protected MCP
// server; each thing that can be missing is named with its fix.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { startIdp, CLIENTS } from './idp/index.mjs'
import { ID_JAG_PROFILE } from './idp/id-jag.mjs'
import { AS_CLIENTS } from './idp/mcp-as.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'

const require = createRequire(import.meta.url)
const { runDoctor } = require('../lib/doctor.js')

describe('doctor: ID-JAG servers', { timeout: 30_000 }, () => {
  // Each test starts with the ID-JAG grant profile advertised and the counters reset (readyIdJag).
  const servers = useIdJagServers()
  /** An IdP without token exchange, as Entra ID is. */
  let entraLike
  let dir
  before(async () => {
    entraLike = await startIdp({ tokenExchange: false })
    dir = mkdtempSync(join(tmpdir(), 'librechat-obo-doctor-id-jag-'))
  })
  after(async () => {
    rmSync(dir, { recursive: true, force: true })
    await entraLike?.close()
  })

  const env = (issuer = servers.idp.issuer) => ({
    OPENID_ISSUER: issuer,
    OPENID_CLIENT_ID: CLIENTS.post.clientId,
    OPENID_CLIENT_SECRET: CLIENTS.post.clientSecret,
    FILES_AS_SECRET: AS_CLIENTS.secret.clientSecret,
  })
  /**
   * A librechat.yaml with one id-jag server `files`; `obo` lines are added to its obo block, and
   * `settings` (mcpSettings: every server here is on 127.0.0.1, which the SSRF policy refuses unless listed).
   */
  let files = 0
  const LOOPBACK = ['mcpSettings:', '  allowedDomains: ["127.0.0.1"]']
  function config(
    obo = ['authorizationServer:', `  clientId: ${AS_CLIENTS.secret.clientId}`, `  clientSecret: "\${FILES_AS_SECRET}"`],
    settings = LOOPBACK,
  ) {
    const path = join(dir, `librechat-${files++}.yaml`)
    const lines = [
      ...settings,
      'mcpServers:',
      '  files:',
      `    url: ${servers.mcp.url}`,
      '    obo:',
      '      profile: id-jag',
      '      scopes: files.read',
    ]
    writeFileSync(path, [...lines, ...obo.map((line) => `      ${line}`)].join('\n'))
    return path
  }
  const idJagCheck = (result) => result.checks.find((c) => c.name === 'id-jag files')

  it("passes a healthy chain: the server's metadata, its authorization server with the grant profile", async () => {
    const result = await runDoctor({ env: env(), configPath: config() })
    const check = idJagCheck(result)
    assert.equal(check.status, 'ok', JSON.stringify(result.checks, null, 2))
    assert.equal(
      check.detail,
      `${servers.mcp.resource} → authorization server ${servers.as.issuer} (token endpoint ${servers.as.tokenEndpoint}), ID-JAG grant profile advertised`,
    )
    assert.equal(result.ok, true)
    assert.equal(servers.as.counters.token, 0, 'nothing was sent to a token endpoint')
    assert.equal(
      result.checks.find((c) => c.name === 'server files'),
      undefined,
      'no Entra scope advice for an id-jag server',
    )
  })

  it("reads mcpSettings.allowedDomains: without it, the loopback authorization server is refused as LibreChat's policy would", async () => {
    const check = idJagCheck(await runDoctor({ env: env(), configPath: config(undefined, []) }))
    assert.equal(check.status, 'fail')
    assert.match(check.detail, /leads to the private or reserved address 127\.0\.0\.1/)
    assert.match(check.fix, /mcpSettings\.allowedDomains/)
    assert.equal(servers.as.counters.metadata, 0, 'nothing was fetched from it')
  })

  it('names a grant profile list without ID-JAG, an auth method not listed, a resource the metadata does not name, and a missing block', async () => {
    servers.as.setGrantProfiles(null)
    let check = idJagCheck(await runDoctor({ env: env(), configPath: config() }))
    assert.equal(check.status, 'ok', 'an absent list says nothing')
    servers.as.setGrantProfiles(['urn:example:other'])
    check = idJagCheck(await runDoctor({ env: env(), configPath: config() }))
    assert.equal(check.status, 'fail')
    assert.match(check.detail, /does not advertise the ID-JAG grant profile/)
    assert.match(check.fix, /does not take ID-JAGs/)

    servers.as.setGrantProfiles([ID_JAG_PROFILE])
    servers.as.setMetadataOverride({ token_endpoint_auth_methods_supported: ['private_key_jwt'] })
    check = idJagCheck(await runDoctor({ env: env(), configPath: config() }))
    servers.as.setMetadataOverride(undefined)
    assert.equal(check.status, 'fail')
    assert.match(check.detail, /token_endpoint_auth_methods_supported \[private_key_jwt\]/)
    assert.match(check.fix, /^Set obo\.authorizationServer\.clientAuthMethod to a method/)

    servers.as.setGrantProfiles([ID_JAG_PROFILE])
    const elsewhere = config([
      `resource: ${servers.mcp.resource}/v2`,
      'authorizationServer:',
      `  clientId: ${AS_CLIENTS.secret.clientId}`,
      `  clientSecret: "\${FILES_AS_SECRET}"`,
    ])
    check = idJagCheck(await runDoctor({ env: env(), configPath: elsewhere }))
    assert.equal(check.status, 'fail')
    assert.match(check.detail, /names the resource http:\/\/127\.0\.0\.1:\d+\/mcp, not http:\/\/127\.0\.0\.1:\d+\/mcp\/v2/)
    assert.match(check.fix, /^Set obo\.resource to exactly the resource the MCP server's metadata names/)

    check = idJagCheck(await runDoctor({ env: env(), configPath: config([]) }))
    assert.equal(check.status, 'fail')
    assert.equal(check.detail, 'obo.authorizationServer is missing')
  })

  it('names an IdP that does not offer token exchange, leg 1 of ID-JAG', async () => {
    const check = idJagCheck(await runDoctor({ env: env(entraLike.issuer), configPath: config() }))
    assert.equal(check.status, 'fail')
    assert.match(check.detail, /leg 1 is token exchange/)
    assert.match(check.fix, /Cross App Access/)
  })
})
