// The wrapper's memo of assertion digests: bounded, oldest out first, exact-match only.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { AssertionDigests } = require('../lib/digests.js')
const { assertionDigest } = require('../lib/native.js')

describe('AssertionDigests', () => {
  it('computes the native SHA-256 hex once per remembered token', () => {
    const calls = []
    const digests = new AssertionDigests((token) => (calls.push(token), assertionDigest(token)), 2)
    assert.equal(digests.of('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    digests.of('abc')
    digests.of(Buffer.from('abc').toString())
    assert.deepEqual(calls, ['abc'])
  })

  it('forgets the oldest token beyond its limit, and everything on clear', () => {
    const calls = []
    const digests = new AssertionDigests((token) => (calls.push(token), assertionDigest(token)), 2)
    for (const token of ['a', 'b', 'c', 'b', 'a']) digests.of(token)
    assert.deepEqual(calls, ['a', 'b', 'c', 'a'], "'a' was forgotten when 'c' came, 'b' was not")
    digests.clear()
    digests.of('b')
    assert.deepEqual(calls, ['a', 'b', 'c', 'a', 'b'])
  })
})
