// The front (lib/front.js): what the wrapper keeps beside the native cache. A hit whose
// token string the front no longer remembers is still one lookup and one counted hit;
// invalidate and clear forget what the front kept for the user.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { TENANT } from './idp/index.mjs'
import { useIdp, newService, rejection, FILES, MAIL } from './helpers.mjs'

const require = createRequire(import.meta.url)
const { frontOf, MEMO_LIMIT } = require('../lib/service.js')

const ctx = useIdp()
const user = (name) => ({ openidId: name, tenantId: TENANT })
const NAMES = ['u0', 'u1', 'u2', 'u3', 'u4']

describe('front', () => {
  it('counts one hit per hit, with right tokens, past the memo size', async () => {
    const { service } = newService(ctx.idp, { [MEMO_LIMIT]: 2 })
    // Five LibreChat users; the IdP's consenting user signs their distinct upstream tokens.
    const assertions = await Promise.all(NAMES.map((name) => ctx.idp.mintUserToken('alice', { extra: { n: name } })))
    const tokens = []
    for (const [i, name] of NAMES.entries()) tokens.push(await service.exchangeOboToken(user(name), assertions[i], FILES))
    assert.equal(frontOf(service).size, 2, 'the front keeps 2 upstream tokens')
    const before = service.stats()
    for (let round = 0; round < 2; round++) {
      for (const [i, name] of NAMES.entries()) {
        const hit = await service.exchangeOboToken(user(name), assertions[i], FILES)
        assert.equal(hit.access_token, tokens[i].access_token, `${name}'s own token`)
        assert.equal(hit.expires_at, tokens[i].expires_at)
      }
    }
    const after = service.stats()
    assert.equal(after.hits - before.hits, 2 * NAMES.length, 'one hit counted per hit')
    assert.equal(after.misses, before.misses)
    assert.equal(ctx.idp.counters.token, NAMES.length)
  })

  it('invalidate forgets the user, clear forgets everyone', async () => {
    const { service } = newService(ctx.idp)
    const front = frontOf(service)
    const [alice, bob] = [await ctx.idp.mintUserToken('alice'), await ctx.idp.mintUserToken('alice', { extra: { n: 'bob' } })]
    await service.exchangeOboToken(user('alice'), alice, FILES)
    await service.exchangeOboToken(user('alice'), alice, MAIL)
    const bobs = await service.exchangeOboToken(user('bob'), bob, FILES)
    assert.equal(front.size, 2)
    assert.equal(service.invalidate(user('alice'), MAIL), 1)
    assert.equal(front.size, 2, "alice's FILES token is still remembered")
    assert.equal(service.invalidate({ openidId: 'alice', tenantId: TENANT, email: 'a@example.com' }), 1)
    assert.equal(front.size, 1, "alice's upstream token is forgotten")
    assert.equal((await service.exchangeOboToken(user('bob'), bob, FILES)).access_token, bobs.access_token)
    service.clear()
    assert.equal(front.size, 0)
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
