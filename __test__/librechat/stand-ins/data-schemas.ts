// Stand-in for the parts of @librechat/data-schemas that obo.ts and its callers use. `IUser` and
// `OIDCTokens` are interfaces, as LibreChat's are (the token fields as data-schemas declares
// them): an index signature in the package's types would refuse them.

export interface OIDCTokens {
  access_token?: string
  id_token?: string
  refresh_token?: string
  expires_at?: number
}

export interface IUser {
  id: string
  email: string
  name?: string
  username?: string
  provider: string
  role?: string
  openidId?: string
  openidIssuer?: string
  tenantId?: string
  federatedTokens?: OIDCTokens
  openidTokens?: OIDCTokens
}

export const logger = {
  info: (message: string, ...meta: unknown[]): void => console.info(message, ...meta),
  warn: (message: string, ...meta: unknown[]): void => console.warn(message, ...meta),
  error: (message: string, ...meta: unknown[]): void => console.error(message, ...meta),
}
