// MCP's own conformance suite (@modelcontextprotocol/conformance, pinned in package.json) against
// this package: every client scenario a token broker can be held to. The suite starts its IdP,
// authorization server and MCP server on localhost, then runs conformance/client.mjs (this
// package under createOboFetch and the MCP SDK's client, on the Node that runs these tests) and
// judges what its servers saw. Every pass/fail check must be SUCCESS; the suite's INFO records
// (its request log) are no checks. No expected-failures file.
//
// The suite needs Node 22 or later (fs.globSync): CONFORMANCE_NODE names that binary (.ci/run
// installs the npm registry's `node` package for it). Without one, on a Node older than 22, the
// file is skipped locally and fails under CI.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const SUITE = join(require.resolve('@modelcontextprotocol/conformance/package.json'), '..', 'dist', 'index.js')
const CLIENT = join(import.meta.dirname, 'conformance', 'client.mjs')
/** The suite's own limit for the client, and ours for the whole scenario (servers included). */
const CLIENT_TIMEOUT_MS = 30_000
const SCENARIO_TIMEOUT_MS = 90_000

/** A Node of at least 22 for the suite, or undefined. */
function suiteNode() {
  const candidate = process.env.CONFORMANCE_NODE || process.execPath
  const version = execFileSync(candidate, ['--version'], { encoding: 'utf8', timeout: 10_000 }).trim()
  return Number(version.replace(/^v/, '').split('.')[0]) >= 22 ? candidate : undefined
}

const node = suiteNode()
const skip = node || process.env.CI ? false : 'needs Node 22+ for the suite: set CONFORMANCE_NODE (see README, Conformance)'

/**
 * Runs `scenario` with this package's client; resolves with the CLI's exit code, the checks and
 * the client's stderr. The CLI and what it spawns share a process group, ended by its id if the
 * scenario outlives SCENARIO_TIMEOUT_MS (or the test ends first).
 */
async function runScenario(scenario, outputDir) {
  assert.ok(node, 'CONFORMANCE_NODE must name a Node 22 or later under CI')
  const command = [process.execPath, CLIENT].map((part) => JSON.stringify(part)).join(' ')
  const args = [SUITE, 'client', '--command', command, '--scenario', scenario, '--timeout', String(CLIENT_TIMEOUT_MS), '-o', outputDir]
  const child = spawn(node, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => {
    output += chunk
  })
  child.stderr.on('data', (chunk) => {
    output += chunk
  })
  const killGroup = () => {
    try {
      process.kill(-child.pid, 'SIGKILL')
    } catch {
      // Already gone.
    }
  }
  const timer = setTimeout(killGroup, SCENARIO_TIMEOUT_MS)
  try {
    const code = await new Promise((resolve, reject) => {
      child.on('error', reject)
      child.on('close', (exitCode, signal) => resolve(exitCode ?? signal))
    })
    const [group, name] = scenario.split('/')
    const runs = readdirSync(join(outputDir, group)).filter((entry) => entry.startsWith(`${name}-`))
    assert.equal(runs.length, 1, `one result directory for ${scenario}:\n${output}`)
    const dir = join(outputDir, group, runs[0])
    return {
      code,
      output,
      checks: JSON.parse(readFileSync(join(dir, 'checks.json'), 'utf8')),
      clientStderr: readFileSync(join(dir, 'stderr.txt'), 'utf8'),
    }
  } finally {
    clearTimeout(timer)
    killGroup()
  }
}

/** The pass/fail checks (not the suite's INFO request log), each as `id: STATUS`. */
const verdicts = (checks) => checks.filter((check) => check.status !== 'INFO').map((check) => `${check.id}: ${check.status}`)

/** Every pass/fail check is SUCCESS, and each of `expected` is among them. */
function assertAllSucceeded(result, expected) {
  const judged = verdicts(result.checks)
  const unsuccessful = result.checks.filter((check) => check.status !== 'INFO' && check.status !== 'SUCCESS')
  assert.deepEqual(unsuccessful, [], `every check SUCCESS:\n${result.output}`)
  for (const id of expected) assert.ok(judged.includes(`${id}: SUCCESS`), `${id} checked and SUCCESS: ${judged.join(', ')}`)
  assert.equal(result.code, 0, `the suite passes the scenario:\n${result.output}`)
}

describe('MCP conformance suite, client scenarios', { skip, timeout: 2 * SCENARIO_TIMEOUT_MS + 10_000 }, () => {
  let outputDir
  before(() => {
    outputDir = mkdtempSync(join(tmpdir(), 'obo-conformance-'))
  })
  after(() => rmSync(outputDir, { recursive: true, force: true }))

  it('auth/cross-app-access-complete-flow: discovery, both ID-JAG legs, and the MCP calls with the token', async (t) => {
    const result = await runScenario('auth/cross-app-access-complete-flow', outputDir)
    t.diagnostic(verdicts(result.checks).join(', '))
    assertAllSucceeded(result, [
      'prm-pathbased-requested',
      'authorization-server-metadata',
      'complete-flow-token-exchange',
      'token-request',
      'complete-flow-jwt-bearer',
      'valid-bearer-token',
    ])
    const tokenChecks = result.checks.filter(
      (check) => check.id === 'complete-flow-token-exchange' || check.id === 'complete-flow-jwt-bearer',
    )
    assert.equal(tokenChecks.length, 2, 'one exchange per leg: the token is cached for every later MCP request')
  })

  it('auth/resource-mismatch: metadata naming another resource stops the client at discovery', async (t) => {
    const result = await runScenario('auth/resource-mismatch', outputDir)
    t.diagnostic(verdicts(result.checks).join(', '))
    assertAllSucceeded(result, ['prm-pathbased-requested', 'resource-mismatch-rejected'])
    // The scenario passes any client that makes no authorization request, which this package
    // never makes: hold it to the reason too, and to having gone no further than that document.
    assert.match(result.clientStderr, /ERR_ID_JAG_METADATA, step discovery/)
    assert.match(result.clientStderr, /names the resource https:\/\/evil\.example\.com\/mcp/)
    const further = result.checks.filter((check) => ['authorization-server-metadata', 'token-request'].includes(check.id))
    assert.deepEqual(further, [], 'neither the authorization server nor any token endpoint was asked')
  })
})
