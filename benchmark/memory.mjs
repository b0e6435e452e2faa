// Child process: memory per cached entry for one implementation.
// node --expose-gc benchmark/memory.mjs <native|reference> <cannedIssuer> <entries>

import { createExchange, fakeAssertion, pool } from './impls.mjs'

const [kind, issuer, entriesArg] = process.argv.slice(2)
const entries = Number(entriesArg)
const exchange = await createExchange(kind, issuer)
const scopes = 'api://mcp-files/files.read'
const fill = (from, count) =>
  pool(count, 64, (i) => exchange({ openidId: `user-${from + i}`, tenantId: 'tenant' }, fakeAssertion(`upstream-${from + i}`), scopes))

const settle = () => {
  for (let i = 0; i < 3; i++) globalThis.gc()
  return process.memoryUsage()
}
await fill(0, 1000) // warm up connection pools, code paths and the allocator
const before = settle()
await fill(1000, entries)
const after = settle()
const per = (field) => (after[field] - before[field]) / entries
console.log(JSON.stringify({ kind, entries, rss: per('rss'), heapUsed: per('heapUsed'), external: per('external') }))
