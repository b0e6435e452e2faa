// The native exchanges settle through one function per service (lib/calls.js), which is
// weak; the wrapper keeps Node alive while any exchange is pending, and only then. Run in
// a child process, killed by its timeout if it hangs.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { useIdp, FILES } from './helpers.mjs'
import { CLIENTS } from './idp/index.mjs'

const ctx = useIdp()
const INDEX = fileURLToPath(new URL('../index.js', import.meta.url))

/** Two exchanges one after the other, nothing else to keep the child's event loop alive. */
const CHILD = `
const { OboTokenService } = require(process.env.INDEX)
const [issuer, clientId, clientSecret, scope, first, second] = JSON.parse(process.env.ARGS)
const service = new OboTokenService({ issuer, clientId, clientSecret })
const alice = { openidId: 'alice', tenantId: 'tenant' }
service.exchangeOboToken(alice, first, scope).then(() => {
  process.stdout.write('first ')
  return service.exchangeOboToken(alice, second, scope)
}).then(() => process.stdout.write('second'))
`

test('a pending exchange keeps Node alive, each time, and an idle service lets it exit', async () => {
  // Two user tokens of alice's: two cache keys, two exchanges.
  const tokens = [await ctx.idp.mintUserToken('alice'), await ctx.idp.mintUserToken('alice')]
  assert.notEqual(tokens[0], tokens[1])
  ctx.idp.setOboDelay(150)
  const args = [ctx.idp.issuer, CLIENTS.post.clientId, CLIENTS.post.clientSecret, FILES, ...tokens]
  const { error, stdout } = await new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', CHILD],
      { env: { ...process.env, INDEX, ARGS: JSON.stringify(args) }, encoding: 'utf8', timeout: 20_000 },
      (error, stdout) => resolve({ error, stdout }),
    )
  })
  // No clock: the child's 20 s timeout bounds the wait, and a child killed by it fails here.
  assert.equal(error, null, `the child exited by itself, cleanly: ${error?.message}`)
  assert.equal(stdout, 'first second', 'both exchanges settled before Node exited')
  assert.equal(ctx.idp.counters.obo, 2)
})

/**
 * One call the IdP refuses (a wrong client secret), with a logger and an events subscriber:
 * nothing of them may hold the child once the call settled.
 */
const REFUSED_CHILD = `
const dc = require('node:diagnostics_channel')
const { OboTokenService } = require(process.env.INDEX)
const [issuer, clientId, clientSecret, scope, token] = JSON.parse(process.env.ARGS)
dc.subscribe('librechat-obo:exchange:end', () => {})
const service = new OboTokenService({ issuer, clientId, clientSecret, logger: () => {} })
service.exchangeOboToken({ openidId: 'alice', tenantId: 'tenant' }, token, scope)
  .catch((err) => process.stdout.write(err.oboFailureReason))
`

test('a process whose only call failed exits by itself once it settled', async () => {
  const token = await ctx.idp.mintUserToken('alice')
  const args = [ctx.idp.issuer, CLIENTS.post.clientId, `${CLIENTS.post.clientSecret}-wrong`, FILES, token]
  const { error, stdout } = await new Promise((resolve) => {
    execFile(
      process.execPath,
      ['-e', REFUSED_CHILD],
      { env: { ...process.env, INDEX, ARGS: JSON.stringify(args) }, encoding: 'utf8', timeout: 20_000 },
      (error, stdout) => resolve({ error, stdout }),
    )
  })
  assert.equal(error, null, `the child exited by itself, cleanly: ${error?.message}`)
  assert.equal(stdout, 'exchange_failed', 'the call settled before Node exited')
})
