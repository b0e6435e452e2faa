#!/usr/bin/env node
'use strict'

// The package's command line: `librechat-obo doctor`. Exit status 0 when every check
// passes, 1 when one fails, 2 for a usage error.

const { readFileSync } = require('node:fs')
const { parseArgs, parseEnv } = require('node:util')
const { runDoctor, formatReport } = require('../lib/doctor.js')

const USAGE = `Usage: librechat-obo doctor [--config librechat.yaml] [--env-file .env]
                            [--user-token <token> | --user-token -] [--json]

Checks the OBO set-up LibreChat would run with: the environment (OPENID_ISSUER,
OPENID_CLIENT_ID, OPENID_CLIENT_SECRET, LIBRECHAT_OBO_*), discovery, the grant, the
client credential, each MCP server's obo.scopes in librechat.yaml and, with a user's
access token, a real exchange for each server. '--user-token -' reads the token from
standard input (a token on the command line is visible to other local users).`

/** The environment: the process's, with an --env-file's values for unset variables. */
function environment(envFile) {
  if (!envFile) return process.env
  return { ...parseEnv(readFileSync(envFile, 'utf8')), ...process.env }
}

function userTokenFrom(value) {
  if (value === undefined) return undefined
  const token = value === '-' ? readFileSync(0, 'utf8') : value
  return token.trim()
}

async function main(argv) {
  let parsed
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        config: { type: 'string' },
        'env-file': { type: 'string' },
        'user-token': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    })
  } catch (err) {
    console.error(`${err.message}\n\n${USAGE}`)
    return 2
  }
  const { values, positionals } = parsed
  if (values.help || positionals[0] !== 'doctor' || positionals.length > 1) {
    console.error(USAGE)
    return values.help ? 0 : 2
  }
  let result
  try {
    result = await runDoctor({
      env: environment(values['env-file']),
      configPath: values.config,
      userToken: userTokenFrom(values['user-token']),
    })
  } catch (err) {
    console.error(`librechat-obo doctor: ${err.message}`)
    return 2
  }
  console.log(values.json ? JSON.stringify(result, null, 2) : formatReport(result))
  return result.ok ? 0 : 1
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status
})
