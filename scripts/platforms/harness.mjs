// Runs one target's smoke test (smoke.mjs) with the servers it needs, on the host's Node:
//   node scripts/platforms/harness.mjs <seconds> <command> [args...]
// starts the local IdP (__test__/idp) and a redis-server on 127.0.0.1, mints the user tokens,
// runs the command with them in OBO_SMOKE (stdin closed: Wine's node wants no terminal there),
// echoes its output and ends with one line `result: pass=<n> fail=<n> require_ms=<ms>` for the
// table. Both servers are stopped, redis-server by its pid, however the run ends (a failure,
// the time bound, SIGINT or SIGTERM from the caller). Exits with the command's status.
// SMOKE_REDIS=off leaves redis-server out (a runner without one: the release workflow's Windows
// job); the smoke test then skips its shared-tier test, and says so.

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { startIdp, CLIENTS } from '../../__test__/idp/index.mjs'
import { startRedis } from '../../__test__/redis.mjs'

const [seconds, command, ...args] = process.argv.slice(2)
if (!(Number(seconds) > 0) || !command) {
  console.error('usage: node scripts/platforms/harness.mjs <seconds> <command> [args...]')
  process.exit(2)
}

let idp
let redis
let child
/** Stops what this started; redis.mjs also kills its servers at exit, as a backstop. */
async function stop() {
  if (child && child.exitCode === null) child.kill('SIGKILL')
  await redis?.stop()
  await idp?.close()
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => stop().finally(() => process.exit(130)))
}

/** Runs the command with the fixtures; resolves with its exit status and what it printed. */
function run(fixtures) {
  return new Promise((resolve) => {
    let output = ''
    child = spawn(command, args, { env: { ...process.env, OBO_SMOKE: JSON.stringify(fixtures) }, stdio: ['ignore', 'pipe', 'pipe'] })
    const timer = setTimeout(() => {
      output += `\nharness: no result after ${seconds} s, stopped\n`
      console.error(`harness: no result after ${seconds} s, stopped`)
      child.kill('SIGKILL')
    }, Number(seconds) * 1000)
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk) => {
        output += chunk
        process.stdout.write(chunk)
      })
    }
    child.on('error', (err) => {
      output += `\nharness: ${err.message}\n`
      console.error(`harness: ${command}: ${err.message}`)
    })
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code: code ?? 1, output })
    })
  })
}

/** The counts node:test printed at the end (tap `# pass 5` or spec `ℹ pass 5`), and the require time. */
function summary(output) {
  const count = (name) => Number(output.match(new RegExp(`^[#ℹ] ${name} (\\d+)`, 'm'))?.[1] ?? 0)
  const ms = output.match(/^# require librechat-obo: ([\d.]+) ms/m)?.[1] ?? '?'
  return `result: pass=${count('pass')} fail=${count('fail')} require_ms=${ms}`
}

let status = 1
try {
  ;[idp, redis] = await Promise.all([startIdp(), process.env.SMOKE_REDIS === 'off' ? undefined : startRedis()])
  const fixtures = {
    issuer: idp.issuer,
    clientId: CLIENTS.post.clientId,
    clientSecret: CLIENTS.post.clientSecret,
    redisUrl: redis?.url,
    sealKey: randomBytes(32).toString('hex'),
    alice: await idp.mintUserToken('alice'),
    // bob's tenant demands MFA; a password-only token is refused with interaction_required.
    bob: await idp.mintUserToken('bob'),
  }
  const { code, output } = await run(fixtures)
  console.log(summary(output))
  status = code
} catch (err) {
  console.error(`harness: ${err.stack ?? err}`)
} finally {
  await stop()
}
process.exit(status)
