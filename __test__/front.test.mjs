// The front (lib/front.js): what the wrapper keeps beside the native cache. A hit whose
// token string the front no longer remembers is still one lookup and one counted hit;
// invalidate and clear forget what the front kept for the user. The front is tested as
// the service assembles it (the real native service, its settle channel, the front), so
// no test hook lives in lib/service.js; the U+001F test goes through the public service.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { CLIENTS, TENANT } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES, MAIL } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { NativeOboService } = require('../lib/native.js')
const { checkOptions } = require('../lib/options.js')
const { Calls } = require('../lib/calls.js')
const { Front } = require('../lib/front.js')
const { packIdentity } = require('../lib/identity.js')

const ctx = useIdp()
const user = (name) => ({ openidId: name, tenantId: TENANT })
const NAMES = ['u0', 'u1', 'u2', 'u3', 'u4']
/** A user's identity as the service packs it. */
const packed = (name) => packIdentity(user(name))

/**
 * The parts of an OboTokenService: the native service, its settle channel, and a front of
 * `memo` upstream tokens; `exchange` fills the native cache and the front as a miss does
 * (`fromCache: false` forces a new token, `remember: false` keeps it from the front).
 */
function parts(idp, memo) {
  const calls = new Calls()
  const options = { issuer: idp.issuer, clientId: CLIENTS.post.clientId, clientSecret: CLIENTS.post.clientSecret }
  const native = new NativeOboService({ ...checkOptions({ ...options, clientAuthMethod: CLIENTS.post.method }), settle: calls.settle })
  /** Every answer of the native lookup, in order. */
  const answers = []
  const front = new Front(
    {
      cached: (...args) => {
        const found = native.cached(...args)
        answers.push(found)
        return found
      },
    },
    memo,
  )
  const exchange = async (name, assertion, scopes, { fromCache = true, remember = true } = {}) => {
    const { token, tokenId, error } = await calls.start((id) => native.exchange(id, packed(name), assertion, scopes, fromCache))
    assert.equal(error, undefined)
    if (remember) front.remember(assertion, scopes, undefined, tokenId, token)
    return token
  }
  return { native, front, answers, exchange }
}

describe('front', () => {
  it('counts one hit per hit, with right tokens, past the memo size', async () => {
    const { native, front, answers, exchange } = parts(ctx.idp, 2)
    // Five LibreChat users; the IdP's consenting user signs their distinct upstream tokens.
    const assertions = await Promise.all(NAMES.map((name) => ctx.idp.mintUserToken('alice', { extra: { n: name } })))
    const tokens = []
    for (const [i, name] of NAMES.entries()) tokens.push(await exchange(name, assertions[i], FILES))
    assert.equal(front.size, 2, 'the front keeps 2 upstream tokens')
    const before = native.stats()
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of NAMES.entries()) {
        const hit = front.hit(packed(name), assertions[i], FILES)
        assert.equal(hit.access_token, tokens[i].access_token, `${name}'s own token`)
        assert.equal(hit.expires_at, tokens[i].expires_at)
      }
    }
    const after = native.stats()
    assert.equal(after.hits - before.hits, 2 * NAMES.length, 'one hit counted per hit')
    assert.equal(after.misses, before.misses)
    assert.equal(ctx.idp.counters.token, NAMES.length)
    // Cycling five upstream tokens through a memo of two forgets each before its next hit:
    // every answer carries the token's strings (position 3 of the fixed layout).
    assert.equal(answers.length, 2 * NAMES.length)
    assert.ok(answers.every((found) => found.length === 4 && typeof found[3]?.[0] === 'string'))
  })

  it('a remembered token crosses as numbers; another token crosses with its strings', async () => {
    const { front, answers, exchange } = parts(ctx.idp, 10)
    const assertion = await ctx.idp.mintUserToken('alice')
    const token = await exchange('alice', assertion, FILES)
    const hit = front.hit(packed('alice'), assertion, FILES)
    assert.equal(hit.access_token, token.access_token)
    assert.deepEqual(
      [answers[0].length, answers[0][2], answers[0][3]],
      [4, token.expires_at, null],
      'the token the front named: numbers only',
    )
    // A forced exchange replaces the native token behind the front's back.
    const replaced = await exchange('alice', assertion, FILES, { fromCache: false, remember: false })
    assert.notEqual(replaced.access_token, token.access_token)
    const next = front.hit(packed('alice'), assertion, FILES)
    assert.equal(next.access_token, replaced.access_token, 'the native answer, not the remembered string')
    assert.deepEqual([answers[1][3][0], answers[1][3][2]], [replaced.access_token, false], 'the new string, no refresh due')
    assert.equal(front.hit(packed('alice'), assertion, FILES).access_token, replaced.access_token)
    assert.equal(answers[2][3], null, 'remembered again: numbers only')
  })

  it('invalidate forgets the user, clear forgets everyone', async () => {
    const { native, front, exchange } = parts(ctx.idp, 10)
    const [alice, bob] = [await ctx.idp.mintUserToken('alice'), await ctx.idp.mintUserToken('alice', { extra: { n: 'bob' } })]
    await exchange('alice', alice, FILES)
    await exchange('alice', alice, MAIL)
    const bobs = await exchange('bob', bob, FILES)
    assert.equal(front.size, 2)
    const mail = native.invalidate(packed('alice'), MAIL)
    assert.equal(mail.length, 1)
    front.forget(mail)
    assert.equal(front.size, 2, "alice's FILES token is still remembered")
    const rest = native.invalidate(packed('alice'), undefined)
    assert.equal(rest.length, 1)
    front.forget(rest)
    assert.equal(front.size, 1, "alice's upstream token is forgotten")
    assert.equal(front.hit(packed('bob'), bob, FILES).access_token, bobs.access_token)
    front.clear()
    assert.equal(front.size, 0)
  })

  it('join shares a flight while it is in flight; once it settled and forgot, a join starts afresh', async () => {
    const { front, exchange } = parts(ctx.idp, 10)
    const assertion = await ctx.idp.mintUserToken('alice')
    let starts = 0
    // As the service starts one: a native exchange that forgets its flight as it settles,
    // before any caller sees the outcome (a forced exchange, so each start reaches the IdP).
    const start = (forget) => {
      starts += 1
      return exchange('alice', assertion, FILES, { fromCache: false }).finally(forget)
    }
    const first = front.join('key', start)
    const second = front.join('key', start)
    assert.equal(second, first, 'a join in flight gets the same promise')
    assert.deepEqual([starts, front.joined], [1, 1], 'one start, one joined')
    const token = await first
    const next = front.join('key', start)
    assert.notEqual(next, first, 'a settled flight is forgotten')
    assert.deepEqual([starts, front.joined], [2, 1], 'the join after it starts again, joining nothing')
    assert.notEqual((await next).access_token, token.access_token)
    assert.equal(ctx.idp.counters.token, 2)
  })

  it('refuses an identity field that contains U+001F, naming it', async () => {
    const { service } = newService(ctx.idp)
    const err = await rejection(service.exchangeOboToken({ openidId: 'a', tenantId: 't\u001fx' }, 'token', FILES))
    assert.equal(err.message, 'user.tenantId must not contain the U+001F character')
    const ctxErr = await rejection(service.exchangeOboToken(user('a'), 'token', FILES, true, { openidIssuer: 'i\u001f' }))
    assert.equal(ctxErr.message, 'identityContext.openidIssuer must not contain the U+001F character')
    const aud = await rejection(service.exchangeOboToken(user('a'), 'token', FILES, true, undefined, { audience: 'a\u001fb' }))
    assert.equal(aud.message, 'options.audience must not contain the U+001F character')
    assert.equal(ctx.idp.counters.token, 0)
  })
})
