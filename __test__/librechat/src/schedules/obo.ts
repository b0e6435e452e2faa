// The calls LibreChat's schedules/obo.ts makes (stand-in code): its own errors with
// `missing_upstream_provider` and `session_refresh_failed`, `isRetryableOboExchangeError`, and a
// provider that answers with a downstream token tagged `scheduledObo: true`.
import type { UpstreamTokenProvider } from '../mcp/oauth/obo'
import { isRetryableOboExchangeError, OboTokenResolutionError } from '../mcp/oauth/obo'

export function missingGrant(): OboTokenResolutionError {
  return new OboTokenResolutionError(
    'missing_upstream_provider',
    'Authorize this OBO server separately for this schedule before unattended use.',
  )
}

export function scheduledProvider(
  read: (forceRefresh: boolean) => Promise<{ access_token: string; expires_at: number }>,
): UpstreamTokenProvider {
  return async ({ forceRefresh, forceDownstreamRefresh } = {}) => {
    try {
      const result = await read(Boolean(forceRefresh || forceDownstreamRefresh))
      return { scheduledObo: true, access_token: result.access_token, expires_at: Math.floor(result.expires_at / 1000) }
    } catch (error) {
      if (error instanceof OboTokenResolutionError) throw error
      throw new OboTokenResolutionError(
        'session_refresh_failed',
        'Temporary OBO grant refresh failure.',
        isRetryableOboExchangeError(error),
        error,
      )
    }
  }
}
