// index.d.ts's option interfaces, written from the option declarations (src/config/options.rs
// and the blocks it names), which the built addon hands over (`optionDeclarations`).
// `node scripts/option-types.mjs` rewrites the region in index.d.ts after an option is added
// or changed; `__test__/options.test.mjs` fails while the file and the declarations differ.

import { readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

const require = createRequire(import.meta.url)
const INDEX_D_TS = fileURLToPath(new URL('../index.d.ts', import.meta.url))
const BEGIN = '// Generated from the option declarations (src/config/options.rs) by scripts/option-types.mjs: edit those, not this.'
const END = '// End of the generated option interfaces.'

/** A doc comment at `indent`: one line as `/** … *\/`, more as a block. */
function comment(lines, indent) {
  const text = lines.map((line) => line.replace(/^ /, ''))
  if (text.length === 0) return []
  if (text.length === 1) return [`${indent}/** ${text[0]} */`]
  return [`${indent}/**`, ...text.map((line) => `${indent} * ${line}`.trimEnd()), `${indent} */`]
}

/** One interface of declared options, then those of its blocks. */
function interfaces(name, header, declarations) {
  const lines = [...comment(header, ''), `export interface ${name} {`]
  const nested = []
  for (const d of declarations) {
    lines.push(...comment(d.doc, '  '), `  ${d.key}${d.required ? '' : '?'}: ${d.tsType}`)
    if (d.kind === 'block') nested.push(d)
  }
  lines.push('}')
  for (const block of nested) {
    lines.push('', ...interfaces(block.tsType, [` \`${block.path}\`: see \`OboServiceOptions.${block.key}\`.`], block.fields))
  }
  return lines
}

/** The generated region, markers included, from the declarations. */
export function renderOptionTypes(declarations) {
  const header = [' The options of `OboTokenService`.']
  return [BEGIN, ...interfaces('OboServiceOptions', header, declarations), END].join('\n')
}

/** The region of `text` between the markers (included), or undefined. */
export function regionOf(text) {
  const start = text.indexOf(BEGIN)
  const end = text.indexOf(END)
  return start === -1 || end === -1 ? undefined : text.slice(start, end + END.length)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { optionDeclarations } = require('../lib/native.js')
  const text = readFileSync(INDEX_D_TS, 'utf8')
  const region = regionOf(text)
  if (!region) throw new Error(`index.d.ts has no region between "${BEGIN}" and "${END}"`)
  writeFileSync(INDEX_D_TS, text.replace(region, renderOptionTypes(optionDeclarations())))
}
