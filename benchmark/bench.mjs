// `npm run bench`: librechat-obo against a JavaScript reference of LibreChat's exchange,
// in one run, against loopback servers started here. Prints ratios (package / reference)
// and writes benchmark/results.json. BENCH_SCALE=0.1 shrinks every count for a quick look.
// `--only churn` runs only the churn scenario (churn.mjs; about 4 minutes); `--only shared` only the
// multi-process section (shared.mjs; needs redis-server); `--only hits` only the cache-hit rows and
// `--only cold` only the cold rows at c=1, `--only fanout` only the fan-out rows (seconds each, for
// before/after comparisons).

import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createExchange, fakeAssertion, IMPLS } from './impls.mjs'
import { SCALE, count, getJson, hitsSequential, hitsConcurrent, cold, fanOut } from './measure.mjs'
import { churn } from './churn.mjs'
import { runShared } from './shared.mjs'

const here = (file) => fileURLToPath(new URL(file, import.meta.url))

async function startServers() {
  const child = spawn(process.execPath, [here('./servers.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  return { child, ...JSON.parse(line) }
}

async function memory(kind, issuer) {
  const child = spawn(process.execPath, ['--expose-gc', here('./memory.mjs'), kind, issuer, String(count(100_000))], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  await once(child, 'exit')
  return JSON.parse(line)
}

/** MSAL Node's figures, from a child process that trusts the TLS IdP's certificate. */
async function msal({ tlsIdp, control, caFile }) {
  const child = spawn(process.execPath, [here('./msal.mjs'), tlsIdp, control], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile },
  })
  const [line] = await once(createInterface({ input: child.stdout }), 'line')
  await once(child, 'exit')
  return JSON.parse(line)
}

// `--only <section>` runs that section alone.
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined
/** The quick sections, each with the rows it measures (`sections` in the loop below measures them). */
const QUICK = { hits: /^cache hit/, cold: /^cold.*c=1:/, fanout: /^fan-out/ }
const SECTIONS = ['churn', 'shared', ...Object.keys(QUICK)]
if (only !== undefined && !SECTIONS.includes(only)) throw new Error(`--only takes one of ${SECTIONS.join(', ')}, got '${only}'`)
const quick = Object.hasOwn(QUICK, only)
if (only === 'shared') {
  await runShared()
  process.exit(0)
}
const servers = await startServers()
if (only === 'churn') {
  try {
    await churn(servers)
  } finally {
    servers.child.kill('SIGTERM')
  }
  process.exit(0)
}
const results = {
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model, memGiB: Math.round(totalmem() / 2 ** 30), node: process.version },
  scale: SCALE,
  figures: {},
}
try {
  const cannedCount = () => getJson(`${servers.canned}/__count`).then((c) => c.token)
  const idpCount = () => getJson(`${servers.idp}/__test/counters`).then((c) => c.obo)
  const mint = (n) => getJson(`${servers.control}/mint?n=${n}`)
  const randomAssertions = (n, tag) =>
    Array.from({ length: n }, (_, i) => fakeAssertion(`${tag}-${i}-${Math.random().toString(36).slice(2)}`))

  for (const kind of IMPLS) {
    const f = {}
    const canned = await createExchange(kind, servers.canned)
    const idp = await createExchange(kind, servers.idp)
    /** What each quick section (QUICK) measures; a full run measures them all, and more. */
    const sections = {
      hits: async () => {
        f.hitSequential = await hitsSequential(canned)
        f.hitConcurrent = await hitsConcurrent(canned)
      },
      cold: async () => {
        await cold(canned, randomAssertions(count(500), `warm-${kind}`), 8, 'warm')
        f.coldCanned1 = await cold(canned, randomAssertions(count(2000), `c1-${kind}`), 1, `c1-${kind}`)
        await cold(idp, await mint(5), 1, `warm-idp-${kind}`) // discovery, connections
        f.coldIdp1 = await cold(idp, await mint(count(300)), 1, `i1-${kind}`)
      },
      fanout: async () => {
        await getJson(`${servers.canned}/__config?delayMs=50`)
        f.fanOutCanned = await fanOut(canned, fakeAssertion(`fan-${kind}`), cannedCount)
        await getJson(`${servers.canned}/__config?delayMs=0`)
        f.fanOutIdp = await fanOut(idp, (await mint(1))[0], idpCount)
      },
    }
    if (quick) {
      await sections[only]()
    } else {
      await sections.hits()
      await sections.cold()
      f.coldCanned64 = await cold(canned, randomAssertions(count(10_000), `c64-${kind}`), 64, `c64-${kind}`)
      f.coldIdp64 = await cold(idp, await mint(count(1000)), 64, `i64-${kind}`)
      await sections.fanout()
      f.memory = await memory(kind, servers.canned)
      console.error(`measured ${kind}`)
    }
    results.figures[kind] = f
  }
  if (!quick) {
    results.churn = await churn(servers)
    if (servers.tlsIdp) {
      results.figures.msal = await msal(servers)
      console.error('measured msal')
    } else {
      console.error('MSAL Node column skipped: openssl could not make a certificate for its TLS IdP')
    }
  }
} finally {
  servers.child.kill('SIGTERM')
}

const { native, reference, msal: msalFigures } = results.figures
/** [figure, pick, target ratio, measured for MSAL Node too] */
const rows = [
  ['cache hit, awaited one at a time: median µs', (f) => f.hitSequential.median, 0.5, true],
  ['cache hit, awaited one at a time: p99 µs', (f) => f.hitSequential.p99, 0.5, true],
  ['cache hit, 1,000 concurrent: median µs', (f) => f.hitConcurrent.median, 0.5, true],
  ['cache hit, 1,000 concurrent: p99 µs', (f) => f.hitConcurrent.p99, 0.5, true],
  ['cold, canned endpoint, c=1: CPU µs/exchange', (f) => f.coldCanned1.cpuUsPerExchange, 0.5],
  ['cold, canned endpoint, c=64: CPU µs/exchange', (f) => f.coldCanned64.cpuUsPerExchange, 0.5],
  ['cold, canned endpoint, c=1: exchanges/s', (f) => f.coldCanned1.perSecond],
  ['cold, canned endpoint, c=64: exchanges/s', (f) => f.coldCanned64.perSecond],
  ['cold, local IdP, c=1: CPU µs/exchange', (f) => f.coldIdp1.cpuUsPerExchange, 0.5],
  ['cold, local IdP, c=64: CPU µs/exchange', (f) => f.coldIdp64.cpuUsPerExchange, 0.5],
  ['cold, local IdP, c=1: exchanges/s', (f) => f.coldIdp1.perSecond],
  ['cold, local IdP, c=64: exchanges/s', (f) => f.coldIdp64.perSecond],
  ['fan-out 1,000 calls, canned (50 ms): IdP requests', (f) => f.fanOutCanned.idpRequests],
  ['fan-out 1,000 calls, canned (50 ms): wall ms', (f) => f.fanOutCanned.wallMs],
  ['fan-out 1,000 calls, local IdP: IdP requests', (f) => f.fanOutIdp.idpRequests, undefined, true],
  ['fan-out 1,000 calls, local IdP: wall ms', (f) => f.fanOutIdp.wallMs, undefined, true],
  [`memory per cached entry (${count(100_000)} entries): RSS bytes`, (f) => f.memory.rss, 1],
  ['memory per cached entry: JS heap bytes', (f) => f.memory.heapUsed],
]
/** The rows a quick section measured (all of them without `--only`). */
const measured = (name) => !quick || QUICK[only].test(name)
const fmt = (x) => (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(2))
const shown = rows.filter(([name]) => measured(name))
results.table = shown.map(([name, pick, target, withMsal]) => {
  const ratio = pick(native) / pick(reference)
  const msalValue = withMsal && msalFigures ? pick(msalFigures) : null
  return { figure: name, native: pick(native), reference: pick(reference), ratio, target: target ?? null, msal: msalValue }
})
console.log(
  `librechat-obo benchmark: ${results.machine.cpus} × ${results.machine.cpu}, ${results.machine.memGiB} GiB, node ${results.machine.node}, scale ${SCALE}\n`,
)
console.log('| figure | librechat-obo | JS reference | ratio | target | MSAL Node |')
console.log('|---|---:|---:|---:|---|---:|')
for (const r of results.table) {
  const target = r.target == null ? '' : `≤ ${r.target}${r.ratio <= r.target ? ' ✓' : ' ✗'}`
  console.log(
    `| ${r.figure} | ${fmt(r.native)} | ${fmt(r.reference)} | ${fmt(r.ratio)} | ${target} | ${r.msal == null ? '' : fmt(r.msal)} |`,
  )
}
if (msalFigures) console.log('\nMSAL Node: the local IdP over TLS (its hits use a 0.9 KB IdP-minted token, not the 1.4 KB one).')
if (quick) process.exit(0)
console.log(
  `\nfan-out target: exactly 1 IdP request for 1,000 calls: canned ${native.fanOutCanned.idpRequests}, local IdP ${native.fanOutIdp.idpRequests}`,
)
writeFileSync(here('./results.json'), `${JSON.stringify(results, null, 2)}\n`)

// The multi-process section: several processes on one redis-server (skipped with a line without one).
await runShared()
