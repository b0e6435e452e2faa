// The wrapper's bounded memo: oldest out first, exact keys, cleared on demand.

import { describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)
const { Memo } = require('../lib/memo.js')
const { assertionDigest } = require('../lib/native.js')

describe('Memo', () => {
  it('forgets the oldest entry beyond its limit, and everything on clear', () => {
    const memo = new Memo(2)
    for (const key of ['a', 'b', 'c']) memo.set(key, key.toUpperCase())
    assert.deepEqual(
      ['a', 'b', 'c'].map((k) => memo.get(k)),
      [undefined, 'B', 'C'],
    )
    memo.set('b', 'B2')
    assert.equal(memo.get('c'), 'C', 'updating a key evicts nothing')
    memo.clear()
    assert.equal(memo.get('b'), undefined)
  })

  it('finds an equal copy of a string key, never a different string', () => {
    const memo = new Memo()
    const token = 'header.payload.signature'
    memo.set(token, assertionDigest(token))
    assert.equal(memo.get(Buffer.from(token).toString()), assertionDigest(token))
    assert.equal(memo.get(`${token}x`), undefined)
    assert.equal(assertionDigest('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })
})
