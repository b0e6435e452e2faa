// Options are declared once, in Rust (src/config/options.rs): index.d.ts, the README, the
// wrapper's type checks and fromEnv's variables must all follow those declarations.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createRequire } from 'node:module'
import { regionOf, renderOptionTypes } from '../scripts/option-types.mjs'

const require = createRequire(import.meta.url)
const { optionDeclarations } = require('../lib/native.js')
const { optionsFromEnv } = require('../lib/environment.js')
const { OboTokenService } = require('../index.js')

const DECLARATIONS = optionDeclarations()
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const BASE_ENV = { OPENID_ISSUER: 'https://idp.example', OPENID_CLIENT_ID: 'middle-tier' }

/** Every declaration, blocks' fields after their block. */
const flat = (list) => list.flatMap((d) => [d, ...flat(d.fields ?? [])])

/** The README section that starts with `heading`, up to the next heading. */
function section(heading) {
  const start = README.indexOf(`${heading}\n`)
  assert.notEqual(start, -1, `README has no "${heading}"`)
  const end = README.indexOf('\n#', start + heading.length)
  return README.slice(start, end === -1 ? undefined : end)
}

describe('options are declared once', () => {
  it("index.d.ts's option interfaces are the declarations' (run node scripts/option-types.mjs after changing one)", () => {
    const text = readFileSync(new URL('../index.d.ts', import.meta.url), 'utf8')
    assert.equal(regionOf(text), renderOptionTypes(DECLARATIONS))
  })

  it("the README's options table lists each option once, with its declared default", () => {
    const rows = [...section('### `new OboTokenService(options)`').matchAll(/^\| `(\w+)` \|([^|]*)\|/gm)]
    assert.deepEqual(rows.map(([, name]) => name).sort(), DECLARATIONS.map((d) => d.key).sort())
    for (const [, name, given] of rows) {
      const declared = DECLARATIONS.find((d) => d.key === name)
      if (declared.required) assert.equal(given.trim(), 'required', name)
      if (declared.default != null) assert.equal(given.trim(), String(declared.default), name)
    }
  })

  it('fromEnv reads every variable the README names, each into its declared option', () => {
    const named = new Set(
      section('### `OboTokenService.fromEnv(env = process.env, extra?)`').match(/\b(OPENID|LIBRECHAT_OBO)_[A-Z_]+\b|\bPROXY\b/g),
    )
    const declared = flat(DECLARATIONS).flatMap((d) => d.env.map((variable) => [variable, d]))
    assert.deepEqual([...named].sort(), declared.map(([variable]) => variable).sort())
    const dir = mkdtempSync(join(tmpdir(), 'obo-options-'))
    try {
      const pem = join(dir, 'key.pem')
      writeFileSync(pem, '-----BEGIN PRIVATE KEY-----\n')
      for (const [variable, d] of declared) {
        const [text, value] = d.file
          ? [pem, '-----BEGIN PRIVATE KEY-----\n']
          : ({ integer: ['7', 7], fraction: ['0.5', 0.5], texts: ['a, b', ['a', 'b']] }[d.kind] ?? [' x ', 'x'])
        const options = optionsFromEnv({ ...BASE_ENV, [variable]: text })
        const [option, field] = d.path.split('.')
        assert.deepEqual(field ? options[option]?.[field] : options[option], value, variable)
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('null and undefined leave every declared option unset', () => {
    const base = { issuer: 'https://idp.example', clientId: 'c', clientSecret: 's' }
    for (const d of DECLARATIONS.filter((d) => !(d.key in base))) {
      for (const unset of [null, undefined]) assert.doesNotThrow(() => new OboTokenService({ ...base, [d.key]: unset }), d.key)
    }
    const nested = { sharedCache: { url: 'redis://127.0.0.1:1', encryptionKeys: ['0'.repeat(64)], ca: null, opTimeoutMs: undefined } }
    assert.doesNotThrow(() => new OboTokenService({ ...base, ...nested }))
  })

  it('the wrapper refuses a value of the wrong kind for every declared option, naming it', () => {
    const base = { issuer: 'https://idp.example', clientId: 'c', clientSecret: 's' }
    const wrong = { text: 1, integer: '1', flag: 'yes', texts: [1], fraction: 'soon', block: 'x', logger: 42 }
    for (const d of flat(DECLARATIONS)) {
      const [option, field] = d.path.split('.')
      const given = field ? { [option]: { [field]: wrong[d.kind] } } : { [option]: wrong[d.kind] }
      assert.throws(
        () => new OboTokenService({ ...base, ...given }),
        { name: 'TypeError', message: new RegExp(`^options\\.${d.path} must be `) },
        d.path,
      )
    }
  })
})
