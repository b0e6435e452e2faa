// Child processes running shared-worker.mjs ("instances"), for the shared-tier tests and
// the benchmark. Every call is bounded by a timeout; `stop` kills each child by its pid.

import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const WORKER = fileURLToPath(new URL('./shared-worker.mjs', import.meta.url))

/** Every worker this process forked, killed at exit if one was left behind. */
const alive = new Set()
process.on('exit', () => {
  for (const child of alive) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

/** Forks one worker and creates its service from `options`; resolves when it is ready. */
export async function startWorker(options, { timeoutMs = 20_000 } = {}) {
  const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  alive.add(child)
  child.once('exit', () => alive.delete(child))
  const pending = new Map()
  let nextId = 1
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  exited.then(({ code, signal }) => {
    for (const { reject } of pending.values()) reject(new Error(`worker ${child.pid} exited (${signal ?? code})`))
    pending.clear()
  })
  const ready = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('worker not ready within the timeout')), timeoutMs)
    child.on('message', (message) => {
      if (message.ready) {
        clearTimeout(timer)
        resolve()
        return
      }
      const waiting = pending.get(message.id)
      if (!waiting) return
      pending.delete(message.id)
      clearTimeout(waiting.timer)
      if (message.ok) waiting.resolve(message)
      else waiting.reject(new Error(`worker: ${message.error}`))
    })
  })
  const call = (op, args = {}, callTimeoutMs = timeoutMs) =>
    new Promise((resolve, reject) => {
      const id = nextId++
      const timer = setTimeout(() => {
        pending.delete(id)
        reject(new Error(`worker ${child.pid}: ${op} did not answer within ${callTimeoutMs} ms`))
      }, callTimeoutMs)
      pending.set(id, { resolve, reject, timer })
      child.send({ id, op, ...args })
    })
  const worker = {
    pid: child.pid,
    call,
    exited,
    /** Kills the worker by its pid and waits (at most 5 s) for it to go. */
    async kill(signal = 'SIGKILL') {
      try {
        process.kill(child.pid, signal)
      } catch {}
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())])
    },
  }
  try {
    await ready
    await call('start', { options })
  } catch (err) {
    await worker.kill()
    throw err
  }
  return worker
}

/** `n` workers with the same options. */
export async function startWorkers(n, options) {
  const started = await Promise.allSettled(Array.from({ length: n }, () => startWorker(options)))
  const workers = started.filter((s) => s.status === 'fulfilled').map((s) => s.value)
  const failed = started.find((s) => s.status === 'rejected')
  if (failed) {
    await stopWorkers(workers)
    throw failed.reason
  }
  return workers
}

/** Kills every worker by its pid. */
export async function stopWorkers(workers) {
  await Promise.all(workers.map((w) => w.kill()))
}
