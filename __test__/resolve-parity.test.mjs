// LibreChat's newer obo.spec.ts (LibreChat-AI/LibreChat 1845457), behaviour by behaviour, in our
// own words, against the package's resolveOboToken. Resolvers and providers are plain functions
// here, as in that spec; resolve.test.mjs holds the same rules against the local IdP. The
// helpers that stay in LibreChat's obo.ts (the lazy provider, selectMCPUpstreamTokenProvider,
// the trust policy) are LibreChat's to test; docs/librechat-parity.md lists them.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { getEventListeners } from 'node:events'
import { rejection } from './helpers.mjs'
import obo from '../index.js'

const { resolveOboToken, OboTokenResolutionError } = obo
const SCOPES = 'api://mcp-server-id/Mcp.Tools.ReadWrite'
const config = { scopes: SCOPES }
const user = { id: 'user-123', provider: 'openid', openidId: 'oidc-sub-456', email: 'test@example.com' }
const inSeconds = (s) => Math.floor(Date.now() / 1000) + s
const live = () => ({ access_token: 'live-access-token', id_token: 'live-id-token', refresh_token: 'r', expires_at: inSeconds(3600) })

/** A function that records its calls' arguments and answers with `answer(...args)`. */
function recorder(answer) {
  const fn = async (...args) => {
    fn.calls.push(args)
    return answer(...args)
  }
  fn.calls = []
  return fn
}
const exchanged = () => recorder(() => ({ access_token: 'exchanged-mcp-token', expires_in: 3600 }))
const never = () => new Promise(() => {})

async function refused(promise, reason, retryable, message) {
  const err = await rejection(promise)
  assert.ok(err instanceof OboTokenResolutionError, `${err}`)
  assert.deepEqual({ reason: err.reason, retryable: err.retryable }, { reason, retryable })
  if (message !== undefined) assert.equal(err.userMessage, message)
  return err
}

describe('LibreChat obo.spec.ts parity: scheduled grants and provider options', () => {
  it('hands on a scheduledObo token as it is, never as an assertion; forceRefresh asks for { forceDownstreamRefresh: true }', async () => {
    const resolver = exchanged()
    const expiresAt = inSeconds(3600)
    const grant = recorder(() => ({ scheduledObo: true, access_token: 'downstream', expires_at: expiresAt }))
    const before = Date.now()
    const tokens = await resolveOboToken({ id: 'owner' }, { scopes: 'read' }, resolver, grant)
    assert.equal(tokens.access_token, 'downstream')
    assert.equal(tokens.token_type, 'Bearer')
    assert.ok(tokens.obtained_at >= before && tokens.obtained_at <= Date.now())
    assert.equal(tokens.expires_at, expiresAt * 1000 - 30_000, 'seconds become ms, less the 30 s skew')
    assert.deepEqual(grant.calls, [[]], 'a plain call passes the provider nothing')
    await resolveOboToken({ id: 'owner' }, { scopes: 'read' }, resolver, grant, undefined, true)
    assert.deepEqual(grant.calls[1], [{ forceDownstreamRefresh: true }])
    assert.equal(resolver.calls.length, 0)
  })

  it('refuses a scheduledObo token it cannot use as session_refresh_failed, retryable', async () => {
    const message = 'The scheduled OBO grant did not provide a usable downstream token.'
    const answers = [
      { scheduledObo: true, expires_at: inSeconds(3600) },
      { scheduledObo: true, access_token: 'downstream' },
      { scheduledObo: true, access_token: 'downstream', expires_at: inSeconds(-5) },
      { scheduledObo: true, access_token: 'downstream', expires_at: Math.floor(Date.now() / 1000) },
    ]
    for (const answer of answers) {
      const resolver = exchanged()
      await refused(
        resolveOboToken(user, config, resolver, async () => answer),
        'session_refresh_failed',
        true,
        message,
      )
      assert.equal(resolver.calls.length, 0, 'a scheduled grant is never exchanged')
    }
    // Only `scheduledObo: true` counts: anything looser is an upstream token set, exchanged.
    const resolver = exchanged()
    await resolveOboToken(user, config, resolver, async () => ({ ...live(), scheduledObo: 'true' }))
    assert.equal(resolver.calls.length, 1)
  })

  it('a scheduled token inside the skew keeps one second of life, as an exchanged one does', async () => {
    const tokens = await resolveOboToken(user, config, exchanged(), async () => ({
      scheduledObo: true,
      access_token: 'downstream',
      expires_at: inSeconds(20),
    }))
    assert.equal(tokens.expires_at, tokens.obtained_at + 1000)
  })

  it('asks the provider for a downstream refresh, never an upstream one, when the downstream token was rejected', async () => {
    let upstreamRefreshes = 0
    const browser = recorder((options) => {
      if (options?.forceRefresh) upstreamRefreshes += 1
      return live()
    })
    const resolver = exchanged()
    const tokens = await resolveOboToken(user, config, resolver, browser, undefined, true)
    assert.equal(tokens.access_token, 'exchanged-mcp-token')
    assert.equal(upstreamRefreshes, 0)
    assert.deepEqual(browser.calls, [[{ forceDownstreamRefresh: true }]])
    assert.deepEqual(resolver.calls, [[user, 'live-access-token', SCOPES, false, undefined]])
  })

  it('a provider written for the older contract (no argument) still works', async () => {
    let received
    const older = (...args) => {
      received = args
      return live()
    }
    assert.equal((await resolveOboToken(user, config, exchanged(), older)).access_token, 'exchanged-mcp-token')
    assert.deepEqual(received, [], 'called with no argument at all')
  })
})

describe('LibreChat obo.spec.ts parity: cancellation', () => {
  for (const reason of [undefined, new Error('stopped by owner')]) {
    it(`a caller that aborts while the provider is pending gets an AbortError (${reason ? 'own reason' : 'default reason'})`, async () => {
      const controller = new AbortController()
      const resolver = exchanged()
      const result = resolveOboToken(user, config, resolver, never, undefined, false, { signal: controller.signal })
      await Promise.resolve()
      controller.abort(reason)
      const err = await rejection(result)
      assert.equal(err.name, 'AbortError')
      if (reason) assert.equal(err.cause, reason, 'a reason that is not an AbortError becomes its cause')
      else assert.equal(err, controller.signal.reason, 'the signal’s own AbortError, the same object')
      assert.equal(resolver.calls.length, 0)
    })
  }

  it('stops waiting on a provider that ignores the signal', async () => {
    const controller = new AbortController()
    let started
    const retrieving = new Promise((resolve) => {
      started = resolve
    })
    const provider = () => {
      started()
      return never()
    }
    const resolver = exchanged()
    const result = resolveOboToken(user, config, resolver, provider, undefined, false, { signal: controller.signal })
    await retrieving
    controller.abort()
    assert.equal((await rejection(result)).name, 'AbortError')
    assert.equal(resolver.calls.length, 0)
  })

  it('an AbortError from the provider or the resolver comes back as the same object', async () => {
    const abort = new DOMException('Stopped', 'AbortError')
    assert.equal(
      await rejection(
        resolveOboToken(user, config, exchanged(), async () => {
          throw abort
        }),
      ),
      abort,
    )
    const resolver = async () => {
      throw abort
    }
    assert.equal(await rejection(resolveOboToken(user, config, resolver, async () => live())), abort)
    // LibreChat's test for a cancellation also follows `cause` and reads codes and messages.
    const wrapped = new Error('lookup failed', { cause: abort })
    assert.equal(await rejection(resolveOboToken(user, config, exchanged(), () => Promise.reject(wrapped))), wrapped)
    const canceled = Object.assign(new Error('request canceled'), { code: 'ERR_CANCELED' })
    assert.equal(await rejection(resolveOboToken(user, config, exchanged(), () => Promise.reject(canceled))), canceled)
  })

  it('an already-aborted signal rejects at once: no provider call, no exchange', async () => {
    const controller = new AbortController()
    controller.abort()
    const provider = recorder(live)
    const resolver = exchanged()
    const err = await rejection(resolveOboToken(user, config, resolver, provider, undefined, false, { signal: controller.signal }))
    assert.equal(err, controller.signal.reason)
    assert.deepEqual([provider.calls.length, resolver.calls.length], [0, 0])
  })

  it('a long-lived signal collects no listeners from calls that settled', async () => {
    const { signal } = new AbortController()
    for (let i = 0; i < 5; i++) await resolveOboToken(user, config, exchanged(), live, undefined, false, { signal })
    await rejection(resolveOboToken(user, config, () => Promise.reject(new Error('invalid_grant')), live, undefined, false, { signal }))
    assert.equal(getEventListeners(signal, 'abort').length, 0)
  })

  it('passes the caller’s signal to the provider, with forceDownstreamRefresh when forced', async () => {
    const { signal } = new AbortController()
    const provider = recorder(live)
    await resolveOboToken(user, config, exchanged(), provider, undefined, false, { signal })
    await resolveOboToken(user, config, exchanged(), provider, undefined, true, { signal })
    assert.deepEqual(provider.calls, [[{ signal }], [{ forceDownstreamRefresh: true, signal }]])
  })
})

describe('LibreChat obo.spec.ts parity: providers that fail', () => {
  it('a failed credential lookup keeps its retryability; the next call asks again', async () => {
    for (const [status, retryable] of [
      [503, true],
      [401, false],
    ]) {
      const resolver = exchanged()
      const lookupFailure = Object.assign(new Error('credential lookup failed'), { status })
      await refused(
        resolveOboToken(user, config, resolver, () => Promise.reject(lookupFailure)),
        'session_refresh_failed',
        retryable,
      )
      assert.equal(resolver.calls.length, 0)
    }
    let attempts = 0
    const flaky = async () => {
      attempts += 1
      if (attempts === 1) throw Object.assign(new Error('unavailable'), { status: 503 })
      return live()
    }
    await refused(resolveOboToken(user, config, exchanged(), flaky), 'session_refresh_failed', true)
    assert.equal((await resolveOboToken(user, config, exchanged(), flaky)).access_token, 'exchanged-mcp-token')
    assert.equal(attempts, 2)
  })

  it('an OboTokenResolutionError from the provider passes through unchanged, with no snapshot fallback', async () => {
    const missing = new OboTokenResolutionError(
      'missing_upstream_provider',
      'No renewable upstream credential provider is available for this MCP server.',
    )
    const withSnapshot = { ...user, federatedTokens: live() }
    const resolver = exchanged()
    assert.equal(await rejection(resolveOboToken(withSnapshot, config, resolver, () => Promise.reject(missing))), missing)
    assert.equal(resolver.calls.length, 0)
  })

  it('an OboTokenResolutionError from the resolver passes through unchanged', async () => {
    const own = new OboTokenResolutionError('exchange_failed', 'Custom resolver refusal.', true)
    assert.equal(await rejection(resolveOboToken(user, config, () => Promise.reject(own), live)), own)
  })

  it('no provider at all is missing_upstream_provider, not retryable', async () => {
    const resolver = exchanged()
    for (const none of [undefined, null]) {
      await refused(
        resolveOboToken({ ...user, federatedTokens: live() }, config, resolver, none),
        'missing_upstream_provider',
        false,
        'No upstream credential provider is configured for this OBO MCP connection.',
      )
    }
    assert.equal(resolver.calls.length, 0)
  })

  it('reads the provider afresh on every call', async () => {
    const provider = recorder(live)
    await Promise.all([resolveOboToken(user, config, exchanged(), provider), resolveOboToken(user, config, exchanged(), provider)])
    assert.equal(provider.calls.length, 2)
  })

  it('a rejected refresh is session_refresh_failed: permanent asks to sign in again, transient is retryable', async () => {
    const resolver = exchanged()
    const permanent = await refused(
      resolveOboToken(user, config, resolver, () => Promise.reject(new Error('invalid_grant'))),
      'session_refresh_failed',
      false,
    )
    assert.match(permanent.userMessage, /Please sign in again/)
    await refused(
      resolveOboToken(user, config, resolver, () => Promise.reject(Object.assign(new Error('service unavailable'), { status: 503 }))),
      'session_refresh_failed',
      true,
      'Temporary sign-in session refresh failure.',
    )
    assert.equal(resolver.calls.length, 0)
  })
})

describe('LibreChat obo.spec.ts parity: the upstream token', () => {
  it('no live session and no snapshot: missing_upstream_token', async () => {
    const resolver = exchanged()
    await refused(
      resolveOboToken(user, config, resolver, async () => null),
      'missing_upstream_token',
      false,
    )
    assert.equal(resolver.calls.length, 0)
  })

  it('no live session: the user’s federatedTokens are exchanged', async () => {
    const withSnapshot = { ...user, federatedTokens: { access_token: 'federated-access-token', expires_at: inSeconds(3600) } }
    const resolver = exchanged()
    const tokens = await resolveOboToken(withSnapshot, config, resolver, async () => null)
    assert.deepEqual(resolver.calls, [[withSnapshot, 'federated-access-token', SCOPES, true, undefined]])
    assert.equal(tokens.access_token, 'exchanged-mcp-token')
  })

  it('an expired snapshot or live token is missing_upstream_token', async () => {
    const stale = { access_token: 'old', expires_at: inSeconds(10) }
    const resolver = exchanged()
    await refused(
      resolveOboToken({ ...user, federatedTokens: stale }, config, resolver, async () => null),
      'missing_upstream_token',
      false,
    )
    await refused(
      resolveOboToken(user, config, resolver, async () => stale),
      'missing_upstream_token',
      false,
    )
    assert.equal(resolver.calls.length, 0)
  })

  it('a live token set without an access token is missing_upstream_access_token', async () => {
    const provider = async () => ({ access_token: undefined, id_token: 'live-id-token', expires_at: inSeconds(3600) })
    await refused(resolveOboToken(user, config, exchanged(), provider), 'missing_upstream_access_token', false)
  })
})

describe('LibreChat obo.spec.ts parity: the exchange and its stamp', () => {
  it('exchanges the live token and returns MCPOAuthTokens that end 30 s early', async () => {
    const provider = recorder(live)
    const resolver = exchanged()
    const before = Date.now()
    const tokens = await resolveOboToken(user, config, resolver, provider)
    assert.equal(provider.calls.length, 1)
    assert.deepEqual(resolver.calls, [[user, 'live-access-token', SCOPES, true, undefined]])
    assert.equal(tokens.token_type, 'Bearer')
    assert.ok(tokens.obtained_at >= before && tokens.obtained_at <= Date.now())
    assert.equal(tokens.expires_at, tokens.obtained_at + 3570 * 1000)
  })

  it('forceRefresh bypasses the resolver’s cache; scopes and the identity context are passed on', async () => {
    const resolver = exchanged()
    const identityContext = { openidSubject: 'oidc-sub-456', tenantId: 'tenant-a', openidIssuer: 'https://issuer.example.com' }
    await resolveOboToken(user, config, resolver, live, undefined, true)
    await resolveOboToken(user, { scopes: 'api://other-app/Custom.Scope' }, resolver, live, identityContext)
    assert.deepEqual(resolver.calls, [
      [user, 'live-access-token', SCOPES, false, undefined],
      [user, 'live-access-token', 'api://other-app/Custom.Scope', true, identityContext],
    ])
  })

  it('expiry: an hour by default, expires_in less 30 s, an absolute expires_at less 30 s, one second at least', async () => {
    const lifetime = async (answer) => {
      const tokens = await resolveOboToken(user, config, async () => answer, live)
      return tokens.expires_at - tokens.obtained_at
    }
    assert.equal(await lifetime({ access_token: 't' }), 3570 * 1000)
    assert.equal(await lifetime({ access_token: 't', expires_in: 300 }), 270 * 1000)
    assert.equal(await lifetime({ access_token: 't', expires_in: 10 }), 1000)
    const absolute = Date.now() + 120_000
    const tokens = await resolveOboToken(user, config, async () => ({ access_token: 't', expires_in: 3600, expires_at: absolute }), live)
    assert.equal(tokens.expires_at, absolute - 30_000)
  })

  it('a token the IdP declares spent is exchange_failed, retryable', async () => {
    for (const answer of [
      { access_token: 't', expires_in: 0 },
      { access_token: 't', expires_in: -60 },
      { access_token: 't', expires_in: 3600, expires_at: Date.now() - 60_000 },
    ]) {
      await refused(
        resolveOboToken(user, config, async () => answer, live),
        'exchange_failed',
        true,
      )
    }
  })

  it('no access token in the answer, or a resolver that says so, is empty_exchange_response', async () => {
    const message = 'The identity provider returned no access token for the OBO exchange.'
    await refused(
      resolveOboToken(user, config, async () => ({}), live),
      'empty_exchange_response',
      false,
      message,
    )
    const malformed = Object.assign(new Error('The identity provider returned no access token'), {
      oboFailureReason: 'empty_exchange_response',
      retryable: false,
    })
    await refused(
      resolveOboToken(user, config, () => Promise.reject(malformed), live),
      'empty_exchange_response',
      false,
      message,
    )
  })

  it('a failed exchange is exchange_failed: tagged transient is retryable, anything else is not', async () => {
    await refused(
      resolveOboToken(user, config, () => Promise.reject(Object.assign(new Error('temporary timeout'), { retryable: true })), live),
      'exchange_failed',
      true,
      'Temporary OBO token exchange failure.',
    )
    await refused(
      resolveOboToken(user, config, () => Promise.reject(new Error('invalid_grant: assertion invalid')), live),
      'exchange_failed',
      false,
      'The identity provider rejected the OBO token exchange.',
    )
  })
})
