// Stand-in for the parts of librechat-data-provider that obo.ts uses (the trust policy).

export enum PermissionTypes {
  MCP_SERVERS = 'MCP_SERVERS',
}

export enum Permissions {
  USE = 'USE',
  CONFIGURE_OBO = 'CONFIGURE_OBO',
}

export interface TRole {
  name: string
  permissions: {
    [PermissionTypes.MCP_SERVERS]?: Partial<Record<Permissions, boolean>>
  }
}
