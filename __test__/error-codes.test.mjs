// The codes and kinds errors carry are one list: index.d.ts's `OboErrorCode` and
// `OboMetadataProblem` must be exactly what the Rust side (src/ground/error/) and lib/ make, and
// what the doctor and the explainer switch on must be among them. A code added, renamed or
// dropped on one side only fails here.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

const ROOT = new URL('..', import.meta.url).pathname
const read = (path) => readFileSync(join(ROOT, path), 'utf8')

/** Every match of `pattern`'s first group in `text`. */
function all(pattern, text) {
  return new Set([...text.matchAll(pattern)].map((m) => m[1]))
}

/** The members of a union of string literals `export type <name> = | 'a' | 'b'` in index.d.ts. */
function union(name) {
  const declaration = new RegExp(`export type ${name} =([\\s\\S]*?)\\n\\n`).exec(read('index.d.ts'))
  assert.ok(declaration, `index.d.ts declares ${name}`)
  return all(/'([^']+)'/g, declaration[1])
}

/** The Rust files under `dir`, recursively. */
function rustFiles(dir) {
  return readdirSync(join(ROOT, dir), { recursive: true })
    .filter((name) => name.endsWith('.rs'))
    .map((name) => join(dir, name))
}

const CODE = /"(ERR_[A-Z0-9_]+|E[A-Z]{4,})"/g
/** Codes the Rust side makes: the literals of src/ground/error/, where every error type lives. */
const rustCodes = new Set(
  rustFiles('src/ground/error')
    .filter((path) => !path.endsWith('tests.rs'))
    .flatMap((path) => [...all(CODE, read(path))]),
)
/** Codes lib/ makes itself: its own constants and `code: '…'` fields (a warning's is no error's). */
const jsCodes = new Set(
  readdirSync(join(ROOT, 'lib')).flatMap((name) => {
    const text = read(`lib/${name}`)
    const warnings = all(/emitWarning\([^)]*code: '([A-Z_]+)'/g, text)
    return [
      ...all(/const [A-Z_]+ = '((?:ERR|LIBRECHAT_OBO)_[A-Z_]+)'/g, text),
      ...[...all(/code: '([A-Z_]+)'/g, text)].filter((code) => !warnings.has(code)),
    ]
  }),
)

describe('error codes', () => {
  it('index.d.ts lists exactly the codes the package makes', () => {
    assert.ok(rustCodes.has('ERR_INVALID_OPTION') && rustCodes.has('ETIMEDOUT'), [...rustCodes].join())
    assert.ok(jsCodes.has('ERR_INVALID_ARG') && jsCodes.has('LIBRECHAT_OBO_NO_BINARY'), [...jsCodes].join())
    assert.deepEqual([...union('OboErrorCode')].sort(), [...new Set([...rustCodes, ...jsCodes])].sort())
  })

  it('no Rust code is written outside the error types', () => {
    // resolve.rs lists the Node codes LibreChat reads as transient on foreign errors: read, not made.
    const READ_ONLY = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EPIPE', 'ECONNABORTED', 'UND_ERR_CONNECT_TIMEOUT'])
    for (const path of rustFiles('src')) {
      for (const code of all(CODE, read(path))) {
        if (!READ_ONLY.has(code)) assert.ok(rustCodes.has(code), `${path} writes ${code}, which src/ground/error/ does not make`)
      }
    }
  })

  it('the doctor and the explainer switch only on codes and kinds that exist', () => {
    const codes = union('OboErrorCode')
    const kinds = union('OboMetadataProblem')
    const rustKinds = all(/Self::\w+ => "([a-z_]+)"/g, read('src/ground/error/metadata.rs'))
    assert.deepEqual([...kinds].sort(), [...rustKinds].sort())
    for (const path of ['lib/doctor-id-jag.js', 'lib/explain.js']) {
      for (const code of all(/\b(ERR_[A-Z0-9_]+|E[A-Z]{4,})\b(?=['"]?[:)\]]| ===|')/g, read(path))) {
        assert.ok(codes.has(code), `${path} reads ${code}, which no error carries`)
      }
    }
    const fixes = /const CHAIN_FIXES = \{([\s\S]*?)\n\}/.exec(read('lib/doctor-id-jag.js'))[1]
    for (const key of all(/^ {2}([a-z_]+):/gm, fixes)) assert.ok(kinds.has(key), `CHAIN_FIXES has a fix for ${key}, no such kind`)
  })
})
