// Stand-in for packages/api/src/utils/identity.ts: the request identity of an OBO call.
export interface AuthIdentityContext {
  appUserId?: string
  openidSubject?: string
  tenantId?: string
  openidIssuer?: string
}
