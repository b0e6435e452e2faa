'use strict'

// `librechat-obo doctor`: checks an OBO set-up the way LibreChat would run it and says,
// in plain words, what is wrong and how to fix it. It reads the same environment as
// `OboTokenService.fromEnv` and, when given, librechat.yaml (`mcpServers.*.obo`). Every
// request goes to the configured IdP; no token is ever printed.

const { readFileSync } = require('node:fs')
const YAML = require('yaml')
const { OboTokenService, planOf } = require('./service.js')
const { optionsFromEnv } = require('./environment.js')
const { explainError, explainUserToken, unverifiedClaims } = require('./explain.js')
const { checkIdJagServer, idJagServer } = require('./doctor-id-jag.js')

const TIMEOUT_MS = 10_000
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access']
/**
 * A user token that no IdP accepts: a JWS (so it passes the local checks) with a wrong
 * signature. The IdP authenticates the client before it looks at the user token, so the
 * answer to it tells whether the client credential works, without needing a user.
 */
const PLACEHOLDER_TOKEN = [
  { alg: 'RS256', typ: 'JWT' },
  { sub: 'librechat-obo-doctor', aud: 'librechat-obo-doctor', exp: 4102444800 },
]
  .map((part) => Buffer.from(JSON.stringify(part)).toString('base64url'))
  .concat(Buffer.from('not a signature').toString('base64url'))
  .join('.')

/** Collects check results: `{ name, status: 'ok'|'warn'|'fail'|'skip', detail, fix? }`. */
class Report {
  checks = []

  add(name, status, detail, fix) {
    this.checks.push(fix ? { name, status, detail, fix } : { name, status, detail })
  }

  /** A failed exchange, explained. */
  failure(name, err, prefix = '') {
    const { what, fix, detail } = explainError(err)
    this.add(name, 'fail', `${prefix}${what} (${detail})`, fix)
  }

  get ok() {
    return this.checks.every((check) => check.status !== 'fail')
  }
}

/**
 * Runs every check. `configPath`: librechat.yaml (optional); `userToken`: a user's access
 * token for live exchanges (optional). Resolves `{ ok, issuer, clientId, checks }`.
 */
async function runDoctor({ env = process.env, configPath, userToken } = {}) {
  const report = new Report()
  const { options, service } = configuration(env, report)
  const listed = configPath ? mcpServers(configPath, report) : []
  const servers = listed.filter((server) => server.profile !== 'id-jag')
  if (!options) return finish(report)
  const plan = await discovery(service, options, report)
  if (plan) grantPlan(plan, options, report)
  const probe = new OboTokenService({ ...options, validateAssertion: undefined, maxRetries: 0, requestTimeoutMs: TIMEOUT_MS })
  await clientCredential(probe, servers[0], report)
  for (const server of servers) scopeShape(server, options, report)
  for (const server of listed.filter((s) => s.profile === 'id-jag')) await checkIdJagServer(server, options, env, report)
  if (userToken !== undefined) await liveExchanges(options, service, userToken, servers, report)
  else if (servers.length > 0)
    report.add(
      'live exchange',
      'skip',
      'not run: give --user-token to exchange a real user token for each server (this also finds unknown resources and missing consent)',
    )
  return finish(report, options)
}

function finish(report, options) {
  return { ok: report.ok, issuer: options?.issuer, clientId: options?.clientId, checks: report.checks }
}

/**
 * The service options `fromEnv` would build, and the service exactly as LibreChat would
 * run it (building it validates every option; the live exchanges use it), or a failed check.
 */
function configuration(env, report) {
  let options
  let service
  try {
    options = optionsFromEnv(env)
    service = new OboTokenService(options)
  } catch (err) {
    report.add(
      'configuration',
      'fail',
      err.message,
      'Set the variable it names (LibreChat reads the same ones), then run the doctor again.',
    )
    return {}
  }
  const method = options.clientAuthMethod ?? 'client_secret_post'
  const grant = options.grantType ?? "jwt_bearer (LibreChat's On-Behalf-Of)"
  const validation = options.validateAssertion ? `, user tokens verified for ${options.validateAssertion.audiences.join(', ')}` : ''
  report.add('configuration', 'ok', `issuer ${options.issuer}, client ${options.clientId}, ${method}, grant ${grant}${validation}`)
  return { options, service }
}

/** `mcpServers.*` of librechat.yaml that carry `obo`. */
function mcpServers(configPath, report) {
  let document
  try {
    document = YAML.parse(readFileSync(configPath, 'utf8'))
  } catch (err) {
    report.add(
      'librechat.yaml',
      'fail',
      `cannot read ${configPath}: ${err.code ?? err.message}`,
      'Give the path of the librechat.yaml LibreChat uses (--config).',
    )
    return []
  }
  const allowedDomains = document?.mcpSettings?.allowedDomains
  const servers = Object.entries(document?.mcpServers ?? {})
    .filter(([, server]) => server && typeof server === 'object' && server.obo)
    .map(([name, server]) =>
      server.obo.profile === 'id-jag'
        ? idJagServer(name, server, allowedDomains)
        : { name, scopes: server.obo.scopes, audience: server.obo.audience, resource: server.obo.resource },
    )
  if (servers.length === 0) {
    report.add(
      'librechat.yaml',
      'warn',
      `no server under mcpServers in ${configPath} has an obo block`,
      'Add obo: { scopes: "api://<mcp-app-id>/<scope>" } to the MCP servers that need the user\'s identity.',
    )
  } else {
    report.add('librechat.yaml', 'ok', `${servers.length} MCP server(s) with obo: ${servers.map((s) => s.name).join(', ')}`)
  }
  return servers
}

/**
 * What the service discovers, as its native side reads it (OpenID or RFC 8414 document,
 * the issuer check with openid-client's Entra exception): the plan of the next exchange.
 */
async function discovery(service, options, report) {
  let plan
  try {
    plan = await planOf(service)
  } catch (err) {
    report.add(
      'discovery',
      'fail',
      err.message,
      'Check OPENID_ISSUER: it must be the issuer URL whose /.well-known/openid-configuration (or RFC 8414 /.well-known/oauth-authorization-server) the IdP serves (Entra: https://login.microsoftonline.com/<tenant-id>/v2.0).',
    )
    return undefined
  }
  const endpoint = options.tokenEndpoint ? `${options.tokenEndpoint} (configured)` : plan.tokenEndpoint
  const read = plan.discoveryDocument ? `; read ${plan.discoveryDocument}, issuer ${plan.discoveredIssuer}` : ''
  report.add('discovery', 'ok', `token endpoint ${endpoint}${read}`)
  return plan
}

/** Which grant the service will send, as its native side chooses it, against what the IdP advertises. */
function grantPlan(plan, options, report) {
  const advertised = plan.grantTypesSupported
  const listed = advertised
    ? `advertised: ${advertised.join(', ')}`
    : options.tokenEndpoint
      ? 'the token endpoint is configured, so grant_types_supported is not read'
      : 'the IdP lists no grant_types_supported'
  if (plan.refused) {
    report.add(
      'grant',
      'fail',
      `the IdP does not advertise ${plan.grantUrn} (${listed})`,
      'Enable the grant at the IdP, or set LIBRECHAT_OBO_GRANT_TYPE to one it advertises.',
    )
  } else if (options.grantType === 'auto') {
    report.add('grant', 'ok', `auto picks ${plan.grant}: ${plan.grantReason.replace(/^auto: /, '')}`)
  } else if (advertised && !advertised.includes(plan.grantUrn)) {
    // Only LibreChat's default is sent without looking at the list.
    report.add(
      'grant',
      'warn',
      `On-Behalf-Of is sent, but the IdP does not advertise jwt-bearer (${listed})`,
      advertised.includes(TOKEN_EXCHANGE)
        ? 'This IdP speaks RFC 8693: set LIBRECHAT_OBO_GRANT_TYPE=token_exchange (or auto).'
        : 'Check that the IdP supports On-Behalf-Of.',
    )
  } else {
    report.add('grant', 'ok', `${plan.grant} (${listed})`)
  }
}

/** Proves the client credential with a request whose only flaw is the placeholder user token. */
async function clientCredential(probe, server, report) {
  const scopes = server?.scopes || 'openid'
  const target = server && (server.audience || server.resource) ? { audience: server.audience, resource: server.resource } : undefined
  try {
    await probe.exchangeOboToken({ openidId: 'librechat-obo-doctor' }, PLACEHOLDER_TOKEN, scopes, false, undefined, target)
    report.add(
      'client credential',
      'fail',
      'the IdP issued a token for a placeholder user token with a wrong signature',
      'The token endpoint does not verify user assertions: do not use it for OBO.',
    )
  } catch (err) {
    const rejectedClient = err.status === 401 || err.error === 'invalid_client' || err.error === 'unauthorized_client'
    if (err.status && err.status < 500 && !rejectedClient) {
      report.add(
        'client credential',
        'ok',
        `accepted (the IdP refused only the doctor's placeholder user token: ${err.error ?? `HTTP ${err.status}`})`,
      )
    } else {
      report.failure('client credential', err)
    }
  }
}

/** What the scope string itself shows, before any exchange. */
function scopeShape(server, options, report) {
  const name = `server ${server.name}`
  if (typeof server.scopes !== 'string' || server.scopes.trim() === '') {
    report.add(
      name,
      'fail',
      'obo.scopes is missing or empty',
      'Set obo.scopes to the scopes the MCP server\'s API expects, e.g. "api://<mcp-app-id>/<scope>".',
    )
    return
  }
  const items = server.scopes.split(/\s+/).filter(Boolean)
  const oidc = items.filter((item) => OIDC_SCOPES.includes(item))
  const api = items.filter((item) => !OIDC_SCOPES.includes(item))
  if (options.grantType === 'token_exchange') {
    report.add(
      name,
      'ok',
      `scopes "${server.scopes}"${server.audience ? `, audience ${server.audience}` : ''}${server.resource ? `, resource ${server.resource}` : ''}`,
    )
    return
  }
  const resourceOf = (item) =>
    item.includes('://') && item.lastIndexOf('/') > item.indexOf('://') + 2 ? item.slice(0, item.lastIndexOf('/')) : undefined
  const resources = [...new Set(api.map((item) => resourceOf(item) ?? 'Microsoft Graph'))]
  const bare = api.filter((item) => !resourceOf(item))
  if (resources.length > 1) {
    report.add(
      name,
      'fail',
      `obo.scopes "${server.scopes}" name ${resources.length} resources (${resources.join(', ')}); Entra issues a token for one resource per request (AADSTS700022)`,
      'Keep the scopes of one API in obo.scopes; give each API its own MCP server.',
    )
  } else if (bare.length > 0) {
    report.add(
      name,
      'warn',
      `${bare.map((b) => `"${b}"`).join(', ')} ha${bare.length > 1 ? 've' : 's'} no resource prefix: Entra reads ${bare.length > 1 ? 'them' : 'it'} as Microsoft Graph scopes`,
      'Write api://<mcp-app-id>/<scope> unless the MCP server really calls Graph.',
    )
  } else if (oidc.length > 0) {
    report.add(
      name,
      'warn',
      `obo.scopes include ${oidc.join(', ')}, which are sign-in scopes, not API scopes`,
      "Leave only the API's scopes in obo.scopes.",
    )
  } else {
    report.add(name, 'ok', `scopes "${server.scopes}" name one resource (${resources[0]})`)
  }
}

/** With a real user token: what it shows on its face, then one forced exchange per server. */
async function liveExchanges(options, service, userToken, servers, report) {
  const problem = explainUserToken(userToken, options.clientId)
  if (problem) {
    report.add('user token', 'fail', problem.what, problem.fix)
    return
  }
  const claims = unverifiedClaims(userToken)
  report.add(
    'user token',
    'ok',
    `a JWT for ${[claims.aud].flat().join(', ')}, subject ${claims.sub ?? 'unknown'}, expires in ${Math.round(claims.exp - Date.now() / 1000)} s`,
  )
  const user = { openidId: String(claims.sub ?? 'librechat-obo-doctor') }
  for (const server of servers.filter((s) => typeof s.scopes === 'string' && s.scopes.trim())) {
    const name = `exchange ${server.name}`
    try {
      const target = server.audience || server.resource ? { audience: server.audience, resource: server.resource } : undefined
      const token = await service.exchangeOboToken(user, userToken, server.scopes, false, undefined, target)
      const issued = unverifiedClaims(token.access_token)
      const facts = issued
        ? `aud ${[issued.aud].flat().join(', ')}, scopes ${issued.scp ?? issued.scope ?? 'none listed'}`
        : 'an opaque token'
      report.add(name, 'ok', `token issued (${facts}, expires in ${token.expires_in} s)`)
    } catch (err) {
      report.failure(name, err)
    }
  }
}

const MARKS = { ok: '[ok]  ', warn: '[warn]', fail: '[FAIL]', skip: '[skip]' }

/** The report as a person reads it. */
function formatReport(result) {
  const lines = [`librechat-obo doctor${result.issuer ? `: issuer ${result.issuer}, client ${result.clientId}` : ''}`, '']
  for (const check of result.checks) {
    lines.push(`${MARKS[check.status]} ${check.name}: ${check.detail}`)
    if (check.fix) lines.push(`       fix: ${check.fix}`)
  }
  const count = (status) => result.checks.filter((c) => c.status === status).length
  const [failures, warnings] = [count('fail'), count('warn')]
  lines.push(
    '',
    failures === 0
      ? `No problems found${warnings ? ` (${warnings} warning${warnings > 1 ? 's' : ''})` : ''}.`
      : `${failures} problem${failures > 1 ? 's' : ''} found${warnings ? `, ${warnings} warning${warnings > 1 ? 's' : ''}` : ''}.`,
  )
  return lines.join('\n')
}

module.exports = { runDoctor, formatReport }
