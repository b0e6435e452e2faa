// The two implementations under measurement, behind one call shape:
// exchange(user, accessToken, scopes) → Promise<token>.

import { createReferenceService } from './reference.mjs'
import obo from '../index.js'

export const IMPLS = ['native', 'reference']
export const CREDENTIALS = { clientId: 'middle-tier', clientSecret: 'middle-tier-secret' }

export async function createExchange(kind, issuer) {
  if (kind === 'native') {
    const service = new obo.OboTokenService({ issuer, ...CREDENTIALS })
    return service.exchangeOboToken.bind(service)
  }
  const reference = await createReferenceService({ issuer, ...CREDENTIALS })
  return reference.exchangeOboToken
}

/**
 * A JWS-shaped upstream token for the canned endpoint (which checks nothing): a header,
 * a payload with `tag` and a far `exp`, and a signature-sized tail, about 1.3 KB like a
 * real access token.
 */
export function fakeAssertion(tag) {
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
  const padding = 'x'.repeat(700)
  return `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ sub: tag, exp: 4102444800, padding })}.${'s'.repeat(342)}`
}

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function pool(count, concurrency, task) {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}
