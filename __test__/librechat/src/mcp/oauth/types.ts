// Stand-in for packages/api/src/mcp/oauth/types.ts: the tokens an MCP connection holds.
export interface MCPOAuthTokens {
  access_token: string
  token_type: string
  refresh_token?: string
  expires_in?: number
  scope?: string
  obtained_at?: number
  expires_at?: number
  credential_set_id?: string
}
