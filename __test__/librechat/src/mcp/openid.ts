// The calls LibreChat's mcp/openid.ts makes (direct OpenID bearer recovery; stand-in code): the
// provider with `forceRefresh` and a signal, and `isRetryableOboExchangeError` from obo.ts.
import type { UpstreamTokenProvider } from './oauth/obo'
import { isRetryableOboExchangeError } from './oauth/obo'

export async function directBearer(
  provider: UpstreamTokenProvider,
  forceRefresh: boolean,
  signal?: AbortSignal,
): Promise<string | undefined> {
  try {
    const tokens = await provider({ forceRefresh, signal })
    return tokens?.access_token
  } catch (error) {
    if (isRetryableOboExchangeError(error)) return undefined
    throw error
  }
}
