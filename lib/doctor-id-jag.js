'use strict'

// The doctor's checks of an MCP server whose obo block says `profile: 'id-jag'`: its
// `authorizationServer` block builds a service, the enterprise IdP must offer token exchange
// (ID-JAG's first leg), and the metadata chain from the server's URL (RFC 9728) to its
// authorization server (RFC 8414, with the ID-JAG grant profile) is read exactly as an
// exchange reads it. Nothing is sent to a token endpoint.

const { OboTokenService, planOf, chainOf } = require('./service.js')
const { resourceOf } = require('./fetch.js')

const TIMEOUT_MS = 10_000

const NO_DOCUMENT_FIX =
  'The server publishes no metadata there (RFC 9728 /.well-known/oauth-protected-resource, RFC 8414 /.well-known/oauth-authorization-server): check obo.resource (default: the server url), or publish it.'
const ALLOWED_DOMAINS_FIX =
  "A URL the MCP server named was refused (SSRF policy): if that host is meant, list it in librechat.yaml's mcpSettings.allowedDomains."
/**
 * What to do about a refused chain, by the error's `kind` (what an ERR_ID_JAG_METADATA
 * failure was, see MetadataProblem in src/ground/error/metadata.rs) or else its `code`.
 */
const CHAIN_FIXES = {
  no_id_jag_profile:
    "The MCP server's authorization server does not take ID-JAGs: enable the identity assertion grant (Cross App Access) there, or use the obo profile.",
  no_jwt_bearer: "Enable the jwt-bearer grant (RFC 7523) at the MCP server's authorization server; ID-JAG's second leg uses it.",
  ERR_ID_JAG_AUTH_METHOD:
    "Set obo.authorizationServer.clientAuthMethod to a method the MCP server's authorization server lists (leave it out with a clientSecret to let the server's list decide), and register the client there with it.",
  resource_mismatch:
    "Set obo.resource to exactly the resource the MCP server's metadata names (RFC 9728 requires them to be identical), or fix the server's metadata.",
  issuer_mismatch:
    "The authorization server's metadata names another issuer than the one the MCP server lists; they must match exactly (RFC 8414): fix the MCP server's authorization_servers.",
  server_not_listed: 'Set obo.authorizationServer.issuer to one the MCP server lists, or leave it out to use the first.',
  no_authorization_servers: "The MCP server's protected resource metadata must list its authorization server in authorization_servers.",
  not_found: NO_DOCUMENT_FIX,
  ERR_ID_JAG_NO_RESOURCE_METADATA: NO_DOCUMENT_FIX,
  ERR_URL_NOT_ALLOWED: ALLOWED_DOMAINS_FIX,
  ERR_SSRF_BLOCKED: ALLOWED_DOMAINS_FIX,
  insecure_url: 'Give the MCP server an https url (plain http only on this machine), or set obo.resource to its canonical URL.',
}
const RETRY_FIX = 'The server was unreachable or failing; check it is up, then run the doctor again.'

/** Replaces `${NAME}` with the environment's value, as LibreChat does in librechat.yaml. */
function interpolate(value, env) {
  return typeof value === 'string' ? value.replace(/\$\{(\w+)\}/g, (_, name) => env[name] ?? '') : value
}

/** The `authorizationServer` block with `${VAR}`s filled in, or undefined. */
function authorizationServerOf(block, env) {
  if (!block || typeof block !== 'object') return undefined
  return Object.fromEntries(Object.entries(block).map(([name, value]) => [name, interpolate(value, env)]))
}

/** The server URL as `createOboFetch` derives the resource from it, or undefined. */
function canonical(url) {
  try {
    return resourceOf(url)
  } catch {
    return undefined
  }
}

/** The fields of a librechat.yaml server the ID-JAG checks read, and `mcpSettings.allowedDomains`. */
function idJagServer(name, server, allowedDomains) {
  const { obo } = server
  return {
    name,
    profile: obo.profile,
    url: server.url,
    scopes: obo.scopes,
    audience: obo.audience,
    resource: obo.resource,
    subjectTokenType: obo.subjectTokenType,
    authorizationServer: obo.authorizationServer,
    allowedDomains,
  }
}

/** Every check of one `id-jag` server; `options` are the enterprise IdP's (from the environment). */
async function checkIdJagServer(server, options, env, report) {
  const name = `id-jag ${server.name}`
  const authorizationServer = authorizationServerOf(server.authorizationServer, env)
  if (!authorizationServer) {
    report.add(
      name,
      'fail',
      'obo.authorizationServer is missing',
      `Add obo.authorizationServer: { clientId, clientSecret } (LibreChat's client at the MCP server's authorization server; "\${VAR}" reads the environment).`,
    )
    return
  }
  let service
  try {
    service = new OboTokenService({
      ...options,
      validateAssertion: undefined,
      maxRetries: 0,
      requestTimeoutMs: TIMEOUT_MS,
      grantType: 'id_jag',
      subjectTokenType: server.subjectTokenType,
      authorizationServer,
      allowedDomains: server.allowedDomains,
    })
  } catch (err) {
    report.add(name, 'fail', err.message, 'Fix the obo block option it names.')
    return
  }
  if (!(await leg1Offered(service, name, report))) return
  const resource = server.resource ?? canonical(interpolate(server.url, env))
  if (typeof resource !== 'string' || resource === '') {
    report.add(name, 'fail', 'no resource: the server has no url and obo.resource is not set', "Set the server's url, or obo.resource.")
    return
  }
  try {
    const chain = await chainOf(service, resource, server.audience)
    report.add(
      name,
      'ok',
      `${resource} → authorization server ${chain.issuer} (token endpoint ${chain.tokenEndpoint}), ID-JAG grant profile advertised`,
    )
  } catch (err) {
    const fix = CHAIN_FIXES[err?.kind] ?? CHAIN_FIXES[err?.code] ?? RETRY_FIX
    report.add(name, 'fail', err.message, fix)
  }
}

/** Whether the enterprise IdP offers token exchange (ID-JAG's first leg), as far as it says. */
async function leg1Offered(service, name, report) {
  try {
    const plan = await planOf(service)
    if (!plan.refused) return true
    report.add(
      name,
      'fail',
      `leg 1 is token exchange (${plan.grantUrn}), which the IdP does not advertise (${(plan.grantTypesSupported ?? []).join(', ')})`,
      'Enable token exchange with requested_token_type urn:ietf:params:oauth:token-type:id-jag for the client at the IdP (Okta: Cross App Access).',
    )
  } catch (err) {
    report.add(name, 'fail', err.message, RETRY_FIX)
  }
  return false
}

module.exports = { checkIdJagServer, idJagServer }
