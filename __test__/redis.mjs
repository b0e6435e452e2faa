// A throwaway redis-server for the shared-tier tests and the benchmark: started on a free
// loopback port with persistence off, stopped by its pid (also when a test fails, and at
// exit as a backstop), restartable on the same port. Commands go over a raw RESP socket,
// so no client library and no redis-cli are needed. Every wait is bounded.

import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'

/** The server binary: `REDIS_SERVER`, or `redis-server` on the PATH. */
export const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server'
/** Whether the server binary runs here. */
export const HAS_REDIS = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0
/** What to do to run the suites that need it. */
export const HOW_TO_RUN =
  'redis-server is not on the PATH: install it (Debian/Ubuntu: apt-get install redis-server) or set REDIS_SERVER to its path, then run npm test again'

/** Every server this process started, stopped at exit if a test left one behind. */
const running = new Set()
process.on('exit', () => {
  for (const child of running) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

/**
 * `describe(name, fn)` when redis-server is available. Otherwise the suite is skipped with
 * a line that says how to run it, except under CI (`process.env.CI`), where the skip is a
 * failure.
 */
export function redisSuite(name, fn) {
  if (HAS_REDIS) return describe(name, fn)
  if (process.env.CI) {
    return test(`${name} (needs redis-server)`, () => assert.fail(`CI must run the shared-tier tests: ${HOW_TO_RUN}`))
  }
  return describe(name, { skip: HOW_TO_RUN }, () => {})
}

/** A free TCP port on 127.0.0.1 (a small race until the server binds it; startRedis retries). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer()
    probe.on('error', reject)
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/**
 * Starts redis-server on 127.0.0.1 (a free port unless `port` is given), no RDB, no AOF,
 * `extraArgs` appended (e.g. `['--requirepass', pw]`). Resolves when it answers PING.
 */
export async function startRedis({ port, extraArgs = [], password } = {}) {
  for (let attempt = 0; attempt < 5; attempt++) {
    const chosen = port ?? (await freePort())
    const dir = mkdtempSync(join(tmpdir(), 'librechat-obo-redis-'))
    const child = spawn(
      REDIS_SERVER,
      [
        '--port',
        String(chosen),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--loglevel',
        'warning',
        ...extraArgs,
      ],
      { stdio: 'ignore' },
    )
    running.add(child)
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.once('exit', () => {
      running.delete(child)
      rmSync(dir, { recursive: true, force: true })
    })
    if (await answers(chosen, password, exited)) return server(chosen, child, exited, extraArgs, password)
    stopChild(child)
    await Promise.race([exited, sleep(2000)])
    if (port !== undefined && attempt >= 2) break
  }
  throw new Error(`redis-server did not start on 127.0.0.1${port ? `:${port}` : ''}`)
}

/**
 * A three-primary Redis Cluster on 127.0.0.1, made with raw commands (CLUSTER
 * ADDSLOTSRANGE, CLUSTER MEET; no redis-cli). Resolves when every node reports
 * `cluster_state:ok` (bounded); `url` is the comma list of the nodes, `stop()` stops them all.
 */
export async function startRedisCluster() {
  const nodes = []
  try {
    for (let attempt = 0; attempt < 20 && nodes.length < 3; attempt++) {
      const port = await freePort()
      // The cluster bus listens on port + 10000.
      if (port > 55_000) continue
      const dir = mkdtempSync(join(tmpdir(), 'librechat-obo-cluster-'))
      try {
        nodes.push(await startRedis({ port, extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf')] }))
      } catch {}
    }
    if (nodes.length < 3) throw new Error('three cluster nodes did not start')
    const ranges = [
      [0, 5460],
      [5461, 10922],
      [10923, 16383],
    ]
    for (const [i, node] of nodes.entries()) await node.command('CLUSTER', 'ADDSLOTSRANGE', ...ranges[i])
    for (const node of nodes.slice(1)) await nodes[0].command('CLUSTER', 'MEET', '127.0.0.1', node.port)
    const ok = await until(
      async () => {
        const infos = await Promise.all(nodes.map((node) => node.command('CLUSTER', 'INFO')))
        return infos.every((info) => String(info).includes('cluster_state:ok'))
      },
      { timeoutMs: 10_000, everyMs: 50 },
    )
    if (!ok) throw new Error('the cluster did not reach cluster_state:ok within 10 s')
  } catch (err) {
    await Promise.all(nodes.map((node) => node.stop()))
    throw err
  }
  return {
    nodes,
    url: nodes.map((node) => node.url).join(','),
    stop: () => Promise.all(nodes.map((node) => node.stop())),
  }
}

/** Waits (at most 5 s) for PING to answer, unless the process exits first. */
async function answers(port, password, exited) {
  let gone = false
  exited.then(() => {
    gone = true
  })
  for (let i = 0; i < 100 && !gone; i++) {
    try {
      const pong = await command(port, ['PING'], { password, timeoutMs: 500 })
      if (String(pong) === 'PONG') return true
    } catch {}
    await sleep(50)
  }
  return false
}

function stopChild(child, signal = 'SIGTERM') {
  try {
    process.kill(child.pid, signal)
  } catch {}
}

function server(port, child, exited, extraArgs, password) {
  let current = { child, exited }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return current.child.pid
    },
    /** Sends one command; resolves to the reply (bulk strings as Buffers). */
    command: (...args) => command(port, args, { password }),
    /** Kills the server by its pid with `signal` and waits (at most 5 s) for it to exit. */
    async kill(signal = 'SIGKILL') {
      stopChild(current.child, signal)
      await Promise.race([current.exited, sleep(5000)])
    },
    /** Starts it again on the same port. */
    async restart() {
      const again = await startRedis({ port, extraArgs, password })
      current = again._current
    },
    async stop() {
      await this.kill('SIGTERM')
    },
    get _current() {
      return current
    },
  }
}

// ---------------------------------------------------------------------------------------
// RESP over a raw socket

function encode(args) {
  const parts = [Buffer.from(`*${args.length}\r\n`)]
  for (const arg of args) {
    const bytes = Buffer.isBuffer(arg) ? arg : Buffer.from(String(arg))
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'))
  }
  return Buffer.concat(parts)
}

/** One RESP2 value at `offset`: `[value, next]`, or undefined when the buffer ends first. */
function parse(buf, offset = 0) {
  const end = buf.indexOf('\r\n', offset)
  if (end < 0) return undefined
  const type = String.fromCharCode(buf[offset])
  const line = buf.toString('utf8', offset + 1, end)
  const next = end + 2
  switch (type) {
    case '+':
      return [line, next]
    case '-':
      return [new Error(line), next]
    case ':':
      return [Number(line), next]
    case '$': {
      const length = Number(line)
      if (length < 0) return [null, next]
      if (buf.length < next + length + 2) return undefined
      return [buf.subarray(next, next + length), next + length + 2]
    }
    case '*': {
      const length = Number(line)
      if (length < 0) return [null, next]
      const items = []
      let at = next
      for (let i = 0; i < length; i++) {
        const item = parse(buf, at)
        if (!item) return undefined
        items.push(item[0])
        at = item[1]
      }
      return [items, at]
    }
    default:
      throw new Error(`unexpected RESP type byte ${buf[offset]}`)
  }
}

/** Sends `args` (after AUTH when `password`) on a new connection and resolves to the last reply. */
export function command(port, args, { password, timeoutMs = 2000 } = {}) {
  const commands = password ? [['AUTH', password], args] : [args]
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let buf = Buffer.alloc(0)
    const replies = []
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`redis on port ${port}: no answer within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (let parsed = parse(buf); parsed; parsed = parse(buf)) {
        replies.push(parsed[0])
        buf = buf.subarray(parsed[1])
      }
      if (replies.length === commands.length) {
        clearTimeout(timer)
        socket.end()
        const last = replies[replies.length - 1]
        if (last instanceof Error) reject(last)
        else resolve(last)
      }
    })
    socket.write(Buffer.concat(commands.map(encode)))
  })
}

/** Every key of the server with its type and content (strings as Buffers, sets as Buffer arrays), by SCAN (bounded). */
export async function dump(redis) {
  const entries = []
  let cursor = '0'
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.command('SCAN', cursor, 'COUNT', 1000)
    for (const key of keys) {
      const type = String(await redis.command('TYPE', key))
      let value = null
      if (type === 'string') value = [await redis.command('GET', key)]
      else if (type === 'set') value = await redis.command('SMEMBERS', key)
      entries.push({ key: key.toString('latin1'), type, values: (value ?? []).filter(Boolean) })
    }
    cursor = String(next)
    if (cursor === '0') break
  }
  return entries
}

/** The names of keys matching a glob pattern (bounded SCAN). */
export async function keysMatching(redis, pattern) {
  const found = []
  let cursor = '0'
  for (let i = 0; i < 10_000; i++) {
    const [next, keys] = await redis.command('SCAN', cursor, 'MATCH', pattern, 'COUNT', 1000)
    found.push(...keys.map((k) => k.toString('latin1')))
    cursor = String(next)
    if (cursor === '0') break
  }
  return found
}

/**
 * Subscribes to `channel` on its own connection; `messages` collects the payloads
 * (Buffers). `close()` ends it.
 */
export function subscribe(port, channel) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    const messages = []
    let buf = Buffer.alloc(0)
    let subscribed = false
    socket.on('error', reject)
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk])
      for (let parsed = parse(buf); parsed; parsed = parse(buf)) {
        buf = buf.subarray(parsed[1])
        const [kind, , payload] = parsed[0]
        if (String(kind) === 'message') messages.push(payload)
        if (String(kind) === 'subscribe' && !subscribed) {
          subscribed = true
          resolve({ messages, close: () => socket.destroy() })
        }
      }
    })
    socket.write(encode(['SUBSCRIBE', channel]))
    setTimeout(() => subscribed || reject(new Error('SUBSCRIBE got no answer within 2 s')), 2000).unref()
  })
}

/** Polls `check()` every `everyMs` until it returns a truthy value or `timeoutMs` passes; resolves to that value or undefined. */
export async function until(check, { timeoutMs = 5000, everyMs = 25 } = {}) {
  const deadline = Date.now() + timeoutMs
  for (let i = 0; i < 100_000; i++) {
    const value = await check()
    if (value) return value
    if (Date.now() >= deadline) return undefined
    await sleep(everyMs)
  }
  return undefined
}
