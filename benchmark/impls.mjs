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

/** Runs `task(i)` for i in [0, count) with at most `concurrency` in flight. */
export async function pool(count, concurrency, task) {
  let next = 0
  const worker = async () => {
    while (next < count) await task(next++)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker))
}
