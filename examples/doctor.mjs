// `npm run doctor:demo`: the doctor against the local IdP, with a librechat.yaml that has
// one good MCP server and three common mistakes, and a real user token for alice.
// Prints the doctor's report as an operator would see it (the README's transcript).

import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { startIdp, CLIENTS } from '../__test__/idp/index.mjs'

const cli = fileURLToPath(new URL('../bin/librechat-obo.js', import.meta.url))
const idp = await startIdp()
const dir = mkdtempSync(join(tmpdir(), 'librechat-obo-doctor-'))
try {
  const config = join(dir, 'librechat.yaml')
  writeFileSync(
    config,
    `mcpServers:
  files:
    type: streamable-http
    url: http://127.0.0.1:3001/mcp
    obo:
      scopes: "api://mcp-files/files.read"
  files-and-mail:
    url: http://127.0.0.1:3002/mcp
    obo:
      scopes: "api://mcp-files/files.read api://mcp-mail/mail.read"
  tickets:
    url: http://127.0.0.1:3003/mcp
    obo:
      scopes: "api://mcp-tickets/tickets.read"
  notes:
    url: http://127.0.0.1:3004/mcp
    obo:
      scopes: "notes.read"
`,
  )
  const env = {
    PATH: process.env.PATH,
    OPENID_ISSUER: idp.issuer,
    OPENID_CLIENT_ID: CLIENTS.post.clientId,
    OPENID_CLIENT_SECRET: CLIENTS.post.clientSecret,
  }
  const token = await idp.mintUserToken('alice')
  const args = [cli, 'doctor', '--config', config, '--user-token', token]
  const { stdout } = await promisify(execFile)(process.execPath, args, { env, timeout: 60_000 }).catch((err) => err)
  console.log(`$ npx librechat-obo doctor --config librechat.yaml --user-token "$ALICE_TOKEN"\n`)
  console.log(stdout.replaceAll(idp.issuer, 'http://127.0.0.1:<port>').replaceAll(dir, '.'))
} finally {
  rmSync(dir, { recursive: true, force: true })
  await idp.close()
}
