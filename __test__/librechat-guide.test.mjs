// The integration guide cannot drift from what CI type-checks: docs/librechat.md embeds
// docs/librechat/obo.ts verbatim, and the obo.ts that `npm run typecheck` compiles
// (__test__/librechat/src/mcp/oauth/obo.ts) starts with it verbatim.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'

const read = (path) => readFileSync(new URL(path, import.meta.url), 'utf8')
const block = read('../docs/librechat/obo.ts')

test('the guide embeds docs/librechat/obo.ts verbatim, as a ts block', () => {
  assert.ok(
    read('../docs/librechat.md').includes(`\`\`\`ts\n${block}\`\`\``),
    'docs/librechat.md step 4 must show docs/librechat/obo.ts as it is',
  )
})

test('the type-checked obo.ts starts with docs/librechat/obo.ts verbatim', () => {
  assert.ok(
    read('./librechat/src/mcp/oauth/obo.ts').startsWith(block),
    '__test__/librechat/src/mcp/oauth/obo.ts must begin with docs/librechat/obo.ts',
  )
})

test('the block imports what obo.ts itself builds, rather than only re-exporting it', () => {
  assert.match(block, /^import \{ OboTokenResolutionError, resolveOboToken \} from 'librechat-obo';$/m)
})
