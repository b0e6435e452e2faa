// Installs the package as a user gets it: `npm pack` of the main package and of the
// linux-x64-gnu platform package built in this run, installed from the tarballs into a fresh
// project outside the repository, then `require`d and `import`ed there, with one real
// exchange against the local IdP. The tarballs come from this run; their dependencies (yaml)
// come from the npm cache or the registry (--prefer-offline: a fresh machine's cache is empty).

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFile, execFileSync } from 'node:child_process'
import { promisify } from 'node:util'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startIdp, CLIENTS } from './idp/index.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const platform = 'linux-x64-gnu'
const binary = `librechat-obo.${platform}.node`
const supported = process.platform === 'linux' && process.arch === 'x64' && existsSync(join(root, binary))

const npm = (args, cwd) => JSON.parse(execFileSync('npm', [...args, '--json'], { cwd, encoding: 'utf8', timeout: 120_000 }))

describe('install from tarballs', { skip: !supported && `needs ${binary} built on linux-x64` }, () => {
  let work
  let idp
  let mainFiles
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'librechat-obo-install-'))
    idp = await startIdp()
  })
  after(async () => {
    await idp?.close()
    if (work) rmSync(work, { recursive: true, force: true })
  })

  it('packs only what users need', () => {
    const [main] = npm(['pack', '--pack-destination', work], root)
    mainFiles = main.files.map((f) => f.path).sort()
    assert.deepEqual(mainFiles, [
      'README.md',
      'bin/librechat-obo.js',
      'binding.d.ts',
      'binding.js',
      'index.d.ts',
      'index.js',
      'lib/abort.js',
      'lib/calls.js',
      'lib/doctor-id-jag.js',
      'lib/doctor.js',
      'lib/environment.js',
      'lib/errors.js',
      'lib/events.js',
      'lib/explain.js',
      'lib/fetch.js',
      'lib/front.js',
      'lib/identity.js',
      'lib/memo.js',
      'lib/native.js',
      'lib/options.js',
      'lib/resolve.js',
      'lib/scheduled.js',
      'lib/service.js',
      'lib/shared-cache.js',
      'package.json',
    ])
    assert.ok(main.size < 100_000, `main tarball is ${main.size} bytes`)

    const staged = join(work, 'platform')
    cpSync(join(root, 'npm', platform), staged, { recursive: true })
    cpSync(join(root, binary), join(staged, binary))
    const [plat] = npm(['pack', '--pack-destination', work], staged)
    assert.deepEqual(plat.files.map((f) => f.path).sort(), ['README.md', binary, 'package.json'])
    const manifest = JSON.parse(readFileSync(join(staged, 'package.json'), 'utf8'))
    assert.deepEqual([manifest.os, manifest.cpu, manifest.libc], [['linux'], ['x64'], ['glibc']])
  })

  it('installs from the tarballs into a fresh project, exchanges a token from CommonJS and ESM, and runs the doctor', async (t) => {
    const project = join(work, 'app')
    execFileSync('mkdir', ['-p', project])
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }))
    const tarballs = ['librechat-obo-0.1.0.tgz', `librechat-obo-${platform}-0.1.0.tgz`].map((t) => join(work, t))
    execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs], { cwd: project, timeout: 120_000 })
    // Both packages are the tarballs packed above, never a registry copy of the same name.
    const installed = JSON.parse(readFileSync(join(project, 'package.json'), 'utf8')).dependencies
    assert.deepEqual(Object.keys(installed).sort(), ['librechat-obo', `librechat-obo-${platform}`])
    for (const spec of Object.values(installed)) assert.match(spec, /^file:.*\.tgz$/)

    const { NAPI_RS_NATIVE_LIBRARY_PATH, ...inherited } = process.env
    void NAPI_RS_NATIVE_LIBRARY_PATH
    const env = {
      ...inherited,
      IDP: idp.issuer,
      ASSERTION: await idp.mintUserToken('alice'),
      CLIENT_ID: CLIENTS.post.clientId,
      CLIENT_SECRET: CLIENTS.post.clientSecret,
    }
    const exchange = `
      const started = performance.now()
      const { OboTokenService, resolveOboToken, OboTokenResolutionError } = LOAD
      const loadMs = performance.now() - started
      const service = new OboTokenService({ issuer: process.env.IDP, clientId: process.env.CLIENT_ID, clientSecret: process.env.CLIENT_SECRET })
      const token = await service.exchangeOboToken({ openidId: 'alice' }, process.env.ASSERTION, 'api://mcp-files/files.read')
      const resolved = await resolveOboToken({ openidId: 'alice' }, { scopes: 'api://mcp-files/files.read' }, service, async () => ({ access_token: process.env.ASSERTION }))
      console.log(JSON.stringify({ loadMs, token: token.access_token, same: resolved.access_token === token.access_token,
        errorClass: typeof OboTokenResolutionError, binding: require.resolve('librechat-obo-${platform}') }))
    `
    // Asynchronous: the IdP answers from this process's event loop.
    const run = async (args) =>
      JSON.parse((await promisify(execFile)(process.execPath, args, { cwd: project, env, encoding: 'utf8', timeout: 30_000 })).stdout)
    const cjs = await run(['-e', `(async () => { ${exchange.replace('LOAD', "require('librechat-obo')")} })()`])
    const esm = await run([
      '--input-type=module',
      '-e',
      `import { createRequire } from 'node:module'; const require = createRequire(process.cwd() + '/'); ${exchange.replace('LOAD', "await import('librechat-obo')")}`,
    ])
    for (const result of [cjs, esm]) {
      assert.ok(result.binding.startsWith(project), `binding loaded from ${result.binding}`)
      assert.equal(result.same, true)
      assert.equal(result.errorClass, 'function')
      assert.equal((await idp.verify(result.token, 'api://mcp-files')).sub, 'alice')
    }
    const doctor = await promisify(execFile)(join(project, 'node_modules', '.bin', 'librechat-obo'), ['doctor', '--json'], {
      cwd: project,
      env: {
        ...inherited,
        OPENID_ISSUER: idp.issuer,
        OPENID_CLIENT_ID: CLIENTS.post.clientId,
        OPENID_CLIENT_SECRET: CLIENTS.post.clientSecret,
      },
      timeout: 30_000,
    })
    assert.equal(JSON.parse(doctor.stdout).ok, true, 'the installed doctor runs (npx librechat-obo doctor)')
    const size = statSync(join(project, 'node_modules', `librechat-obo-${platform}`, binary)).size
    t.diagnostic(`${binary}: ${size} bytes; require took ${cjs.loadMs.toFixed(1)} ms, import ${esm.loadMs.toFixed(1)} ms`)
  })
})
