// ID-JAG with the shared Redis tier: two instances (each its own local tier and Redis
// connections) behind one redis-server started here on a free loopback port (stopped by its
// pid). One instance's two legs serve the other; a cold key fired at from both costs one
// ID-JAG and one access token; a forced exchange on one reaches the other.

import { before, after, beforeEach, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { CLIENTS, USERS, TENANT } from './idp/index.mjs'
import { AS_CLIENTS } from './idp/mcp-as.mjs'
import { useIdJagServers } from './id-jag-servers.mjs'
import { redisSuite, startRedis, until } from './redis.mjs'
import obo from '../index.js'

const { OboTokenService } = obo
const KEY = randomBytes(32).toString('hex')
const alice = { openidId: USERS.alice.oid, tenantId: TENANT }

redisSuite('ID-JAG with the shared tier', () => {
  let redis
  const servers = useIdJagServers()
  before(async () => {
    redis = await startRedis()
  })
  after(() => redis?.stop())
  beforeEach(async () => {
    await redis.command('FLUSHALL')
    servers.idp.setIdJagDelay(0)
  })

  const instance = () =>
    new OboTokenService({
      issuer: servers.idp.issuer,
      clientId: CLIENTS.post.clientId,
      clientSecret: CLIENTS.post.clientSecret,
      grantType: 'id_jag',
      allowedDomains: ['127.0.0.1'],
      authorizationServer: { clientId: AS_CLIENTS.secret.clientId, clientSecret: AS_CLIENTS.secret.clientSecret },
      retryDelayMs: 20,
      sharedCache: { url: redis.url, keyPrefix: 'id-jag-test', encryptionKeys: [KEY] },
    })
  const exchange = (service, idToken, fromCache = true) =>
    service.exchangeOboToken(alice, idToken, 'files.read', fromCache, undefined, { resource: servers.mcp.resource })

  test('what one instance obtained with both legs, another serves with no request; a forced exchange reaches it', async () => {
    const [a, b] = [instance(), instance()]
    const idToken = await servers.idp.mintIdToken('alice')
    const first = await exchange(a, idToken)
    const served = await exchange(b, idToken)
    assert.equal(served.access_token, first.access_token)
    assert.equal(servers.idp.counters.idJag, 1)
    assert.equal(servers.as.counters.grants, 1)
    assert.equal(b.stats().sharedHits, 1)

    const renewed = await exchange(b, idToken, false)
    assert.notEqual(renewed.access_token, first.access_token)
    const seen = await until(async () => (await exchange(a, idToken)).access_token === renewed.access_token, { timeoutMs: 3000 })
    assert.ok(seen, 'A serves the token B obtained afresh')
    assert.equal(servers.as.counters.grants, 2)
  })

  test('a cold key fired at from two instances costs one ID-JAG and one access token', async () => {
    const [a, b] = [instance(), instance()]
    const idToken = await servers.idp.mintIdToken('alice')
    servers.idp.setIdJagDelay(200) // widen the window in which the other instance must wait
    const calls = [a, b].flatMap((service) => Array.from({ length: 20 }, () => exchange(service, idToken)))
    const tokens = new Set((await Promise.all(calls)).map((token) => token.access_token))
    assert.equal(tokens.size, 1)
    assert.equal(servers.idp.counters.idJag, 1)
    assert.equal(servers.as.counters.grants, 1)
  })
})
