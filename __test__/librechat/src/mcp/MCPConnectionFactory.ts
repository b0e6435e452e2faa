// The calls LibreChat's MCPConnectionFactory / MCPManager make through obo.ts (stand-in code):
// a lazy provider when only a resolver is known, `missing_upstream_provider` when there is none,
// `resolveOboToken` under `awaitOboOperation`, and the reasons it branches on.
import type { IUser } from '@librechat/data-schemas'
import type { AuthIdentityContext } from '~/utils/identity'
import type { MCPOAuthTokens } from './oauth/types'
import type { OboConfig, OboTokenResolver, UpstreamTokenProvider, UpstreamTokenProviderResolver } from './oauth/obo'
import {
  awaitOboOperation,
  createLazyOboUpstreamTokenProvider,
  OboTokenResolutionError,
  resolveOboToken,
  selectMCPUpstreamTokenProvider,
} from './oauth/obo'

export async function getOboTokens(connection: {
  serverName: string
  url?: string
  user: IUser
  obo: OboConfig
  resolver: OboTokenResolver
  provider?: UpstreamTokenProvider
  providerResolver?: UpstreamTokenProviderResolver
  identityContext?: AuthIdentityContext
  signal?: AbortSignal
  forceRefresh?: boolean
}): Promise<MCPOAuthTokens | null> {
  let provider = connection.provider
  if (!provider && connection.providerResolver) {
    provider = createLazyOboUpstreamTokenProvider(connection.providerResolver, connection.signal, {
      mcpServer: connection.serverName,
      scopes: connection.obo.scopes,
      url: connection.url,
    })
  }
  if (!provider) {
    throw new OboTokenResolutionError(
      'missing_upstream_provider',
      'No upstream credential provider is configured for this OBO MCP connection.',
    )
  }
  const tokens: MCPOAuthTokens = await awaitOboOperation(
    resolveOboToken(
      connection.user,
      connection.obo,
      connection.resolver,
      provider,
      connection.identityContext,
      connection.forceRefresh ?? false,
    ),
    connection.signal,
  )
  return tokens
}

export function recoveryHint(error: OboTokenResolutionError): string {
  if (error.retryable) return 'Please retry.'
  if (error.reason === 'exchange_failed') return 'Verify the configured OBO scopes and retry.'
  if (error.reason === 'missing_upstream_provider') return 'Configure a renewable upstream credential provider.'
  return 'Re-authenticate the user and retry.'
}

export function chooseProvider(
  session: () => UpstreamTokenProvider,
  resolver?: UpstreamTokenProviderResolver,
): UpstreamTokenProvider | null | undefined {
  return selectMCPUpstreamTokenProvider({ upstreamTokenProviderResolver: resolver, createSessionProvider: session })
}
