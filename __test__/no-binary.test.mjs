// What a user sees when no binary fits: the package installed as `npm install --omit=optional`
// leaves it (the main package, its dependency, no platform package), then `require`d and
// `import`ed in a child Node. The error must name the platform detected and the package to
// install, in one message, without the generated loader's chain of nested causes. The last suite
// has npm itself leave the platform package out: both packed, the main one with the
// optionalDependencies `napi prepublish` gives it, installed with --omit=optional.

import { describe, it, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const { version, files } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

// Worked out here from first principles (the arch, and on Linux whether this Node was built
// against glibc), not by the code under test.
const libc = process.report.getReport().header.glibcVersionRuntime ? 'gnu' : 'musl'
const suffix = { linux: `-${libc}`, win32: '-msvc' }[process.platform] ?? ''
const platform = `${process.platform}-${process.arch}${suffix}`
const pkg = `librechat-obo-${platform}`
// napi's generated loader decides the libc from /usr/bin/ldd; a musl Node on a glibc host (CI's
// musl suite) makes it look for the other package, so a broken package of ours is never tried.
let lddSaysMusl = false
try {
  lddSaysMusl = readFileSync('/usr/bin/ldd', 'utf8').includes('musl')
} catch {}
const loaderAgrees = process.platform !== 'linux' || lddSaysMusl === (libc === 'musl')

/** Runs `code` in a child Node in `cwd`, without the override variable; returns its result. */
function run(cwd, args, env = {}) {
  const { NAPI_RS_NATIVE_LIBRARY_PATH, ...inherited } = process.env
  void NAPI_RS_NATIVE_LIBRARY_PATH
  return spawnSync(process.execPath, args, { cwd, env: { ...inherited, ...env }, encoding: 'utf8', timeout: 30_000 })
}

/** The error's fields as the child saw them, caught around `require`. */
function caught(cwd, env) {
  const child = run(
    cwd,
    [
      '-e',
      `try { require('librechat-obo'); console.log('null') } catch (e) {
        console.log(JSON.stringify({ message: e.message, code: e.code, platform: e.platform, package: e.package, cause: e.cause !== undefined }))
      }`,
    ],
    env,
  )
  assert.equal(child.status, 0, child.stderr)
  return JSON.parse(child.stdout)
}

describe('no binary for this platform', () => {
  let project
  before(() => {
    project = mkdtempSync(join(tmpdir(), 'librechat-obo-nobinary-'))
    const installed = join(project, 'node_modules', 'librechat-obo')
    // What the package publishes (its `files` and package.json), never a built .node.
    for (const file of [...files, 'package.json']) cpSync(join(root, file), join(installed, file), { recursive: true })
    cpSync(join(root, 'node_modules', 'yaml'), join(project, 'node_modules', 'yaml'), { recursive: true })
    writeFileSync(join(project, 'package.json'), '{"name":"app","private":true}')
  })
  after(() => {
    if (project) rmSync(project, { recursive: true, force: true })
  })

  it('require names the platform and the package to install, with no causes', () => {
    const error = caught(project)
    assert.equal(error.code, 'LIBRECHAT_OBO_NO_BINARY')
    assert.equal(error.platform, platform)
    assert.equal(error.package, pkg)
    assert.equal(error.cause, false)
    assert.ok(error.message.includes(`for ${platform}.`), error.message)
    assert.ok(error.message.includes(`${pkg} is not installed`), error.message)
    assert.ok(error.message.includes('--omit=optional'), error.message)
    assert.ok(error.message.includes(`npm install ${pkg}@${version}`), error.message)
  })

  it('an uncaught load error prints one message, not a wall of nested causes', () => {
    for (const args of [
      ['-e', "require('librechat-obo')"],
      ['--input-type=module', '-e', "await import('librechat-obo')"],
    ]) {
      const child = run(project, args)
      assert.equal(child.status, 1)
      assert.ok(child.stderr.includes(`npm install ${pkg}@${version}`), child.stderr)
      assert.doesNotMatch(child.stderr, /\[cause\]|Cannot find module|Cannot find native binding/)
      // The message, the stack (node:internal frames included) and Node's version line.
      assert.ok(child.stderr.split('\n').length < 40, child.stderr)
    }
  })

  it('a package that is there but does not load: says so, with the reason', {
    skip: !loaderAgrees && 'the host /usr/bin/ldd names another libc than this Node',
  }, () => {
    const dir = join(project, 'node_modules', pkg)
    const binary = `librechat-obo.${platform}.node`
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: pkg, version, main: binary }))
    writeFileSync(join(dir, binary), 'not a shared object\n')
    try {
      const error = caught(project)
      assert.equal(error.package, pkg)
      assert.equal(error.cause, false)
      assert.ok(error.message.includes(`${pkg} is installed (${dir})`), error.message)
      assert.ok(error.message.includes(binary), `the dlopen reason names the file: ${error.message}`)
      assert.ok(!error.message.includes('not installed'), error.message)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('an override that does not load names the variable and the path', () => {
    const missing = join(project, 'nowhere.node')
    const error = caught(project, { NAPI_RS_NATIVE_LIBRARY_PATH: missing })
    assert.equal(error.cause, false)
    assert.ok(error.message.includes(`NAPI_RS_NATIVE_LIBRARY_PATH=${missing} did not load`), error.message)
  })
})

describe('npm install --omit=optional leaves the platform package out', {
  skip: !existsSync(join(root, 'npm', platform)) && `no npm/${platform}`,
}, () => {
  let work
  before(() => {
    work = mkdtempSync(join(tmpdir(), 'librechat-obo-omit-'))
  })
  after(() => {
    if (work) rmSync(work, { recursive: true, force: true })
  })

  /** Packs directory `dir` into the work directory; returns the tarball's path. */
  const pack = (dir) => {
    const [packed] = JSON.parse(
      execFileSync('npm', ['pack', '--json', '--pack-destination', work], { cwd: dir, encoding: 'utf8', timeout: 120_000 }),
    )
    return join(work, packed.filename)
  }

  it('require then names the platform and the package npm left out, with no causes', () => {
    // The platform package as napi lays it out; no binary, since npm must not install it anyway.
    const platformTarball = pack(join(root, 'npm', platform))
    // The main package as `napi prepublish` publishes it: its optionalDependencies name every
    // platform package (this one as the tarball above, so no registry is asked).
    const staged = join(work, 'main')
    for (const file of files) cpSync(join(root, file), join(staged, file), { recursive: true })
    const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
    manifest.optionalDependencies = { [pkg]: `file:${platformTarball}` }
    writeFileSync(join(staged, 'package.json'), JSON.stringify(manifest))
    const mainTarball = pack(staged)

    const project = join(work, 'app')
    mkdirSync(project)
    writeFileSync(join(project, 'package.json'), '{"name":"app","private":true}')
    execFileSync('npm', ['install', '--omit=optional', '--prefer-offline', '--no-audit', '--no-fund', mainTarball], {
      cwd: project,
      timeout: 120_000,
    })
    const lock = JSON.parse(readFileSync(join(project, 'package-lock.json'), 'utf8'))
    assert.equal(lock.packages[`node_modules/${pkg}`]?.optional, true, 'npm knows the platform package')
    assert.ok(!existsSync(join(project, 'node_modules', pkg)), 'and left it out')

    const error = caught(project)
    assert.deepEqual([error.code, error.platform, error.package, error.cause], ['LIBRECHAT_OBO_NO_BINARY', platform, pkg, false])
    assert.ok(error.message.includes(`for ${platform}. The package ${pkg} is not installed`), error.message)
    assert.ok(error.message.includes(`--omit=optional`), error.message)
    assert.ok(error.message.endsWith(`Install it: npm install ${pkg}@${version}`), error.message)
  })
})
