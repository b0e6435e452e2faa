/**
 * OBO token resolution comes from librechat-obo (Rust: the exchange, its cache, single-flight,
 * retry, and `resolveOboToken`'s rules). Imported, not only re-exported: this file still builds
 * `OboTokenResolutionError` itself (`createLazyOboUpstreamTokenProvider`), and other files import
 * both from here. The rest of this file (the provider types, the lazy provider, cancellation,
 * `isRetryableOboExchangeError`, the trust policy) stays LibreChat's.
 */
import { OboTokenResolutionError, resolveOboToken } from 'librechat-obo';
import type { OboTokenResolutionReason } from 'librechat-obo';

export { OboTokenResolutionError, resolveOboToken };
export type { OboTokenResolutionReason };

// ---------------------------------------------------------------------------------------------
// Everything below stands in for the rest of LibreChat's obo.ts, which the guide leaves as it is:
// the same exports with the same signatures, and the same uses of the package's types as
// LibreChat's bodies (written here, not copied).

import { logger } from '@librechat/data-schemas'
import { Permissions, PermissionTypes } from 'librechat-data-provider'
import type { IUser, OIDCTokens } from '@librechat/data-schemas'
import type { TRole } from 'librechat-data-provider'
import type { AuthIdentityContext } from '~/utils/identity'
import { detachOnAbort } from '~/utils/promises'
import { isAbortError } from '~/utils/errors'

export interface OboConfig {
  scopes: string
}

export type OboTokenResolver = (
  user: IUser,
  accessToken: string,
  scopes: string,
  fromCache?: boolean,
  identityContext?: AuthIdentityContext,
) => Promise<{ access_token: string; expires_in?: number; expires_at?: number }>

export type OboProviderTokens = OIDCTokens & { readonly scheduledObo?: true }

export type UpstreamTokenProvider = (options?: {
  forceRefresh?: boolean
  forceDownstreamRefresh?: boolean
  signal?: AbortSignal
}) => Promise<OboProviderTokens | null>

export interface UpstreamTokenTarget {
  readonly mcpServer: string
  readonly scopes: string
  readonly url?: string
}

export type UpstreamTokenProviderResolver = (options?: {
  signal?: AbortSignal
  target?: UpstreamTokenTarget
}) => UpstreamTokenProvider | undefined | Promise<UpstreamTokenProvider | undefined>

export function selectMCPUpstreamTokenProvider(sources: {
  upstreamTokenProvider?: UpstreamTokenProvider | null
  upstreamTokenProviderResolver?: UpstreamTokenProviderResolver | null
  createSessionProvider: () => UpstreamTokenProvider
}): UpstreamTokenProvider | null | undefined {
  if (sources.upstreamTokenProviderResolver) return sources.upstreamTokenProvider
  return sources.upstreamTokenProvider ?? sources.createSessionProvider()
}

function asCancellation(error: unknown, signal?: AbortSignal): unknown {
  if (!signal?.aborted || error !== signal.reason || isAbortError(error)) return error
  const cancelled = new Error('The operation was aborted.', { cause: error })
  cancelled.name = 'AbortError'
  return cancelled
}

export async function awaitOboOperation<T>(operation: Promise<T>, signal?: AbortSignal): Promise<T> {
  try {
    return await detachOnAbort(operation, signal)
  } catch (error) {
    throw asCancellation(error, signal)
  }
}

export function createLazyOboUpstreamTokenProvider(
  resolver: UpstreamTokenProviderResolver,
  signal?: AbortSignal,
  target?: UpstreamTokenTarget,
): UpstreamTokenProvider {
  let lookup: Promise<UpstreamTokenProvider | undefined> | undefined
  return async (options) => {
    const current = options?.signal ?? signal
    try {
      current?.throwIfAborted()
      lookup ??= Promise.resolve(resolver({ signal: current, target }))
      const provider = await detachOnAbort(lookup, current)
      if (!provider) {
        lookup = undefined
        throw new OboTokenResolutionError(
          'missing_upstream_provider',
          'No renewable upstream credential provider is available for this MCP server.',
        )
      }
      return await detachOnAbort(provider({ ...options, signal: current }), current)
    } catch (error) {
      throw asCancellation(error, current)
    }
  }
}

const TRANSIENT_STATUSES = [429, 500, 502, 503, 504]

export function isRetryableOboExchangeError(error: unknown): boolean {
  if (!error || typeof error !== 'object') return false
  const fields = error as { retryable?: unknown; status?: unknown; message?: unknown }
  if (typeof fields.retryable === 'boolean') return fields.retryable
  if (typeof fields.status === 'number' && TRANSIENT_STATUSES.includes(fields.status)) return true
  return /timed? ?out|service unavailable/i.test(String(fields.message ?? ''))
}

export type GetUserRoleByAuthorId = (authorId: string) => Promise<string | null | undefined>
export type GetRolePermissions = (roleName: string) => Promise<Partial<TRole['permissions']> | null | undefined>
export type OboTrustChecker = (config: { source?: string; author?: string; dbId?: string }) => Promise<boolean>

export async function isOboConfigStillTrusted(input: {
  authorId: string | undefined
  getUserRoleByAuthorId: GetUserRoleByAuthorId
  getRolePermissions: GetRolePermissions
}): Promise<boolean> {
  if (!input.authorId) return false
  try {
    const role = await input.getUserRoleByAuthorId(input.authorId)
    const permissions = role ? await input.getRolePermissions(role) : null
    return permissions?.[PermissionTypes.MCP_SERVERS]?.[Permissions.CONFIGURE_OBO] === true
  } catch (error) {
    logger.warn('[OBO] trust check failed', error)
    return false
  }
}
