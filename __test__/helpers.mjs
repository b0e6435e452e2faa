// Shared set-up for the node:test suites: one local IdP per test file, and services
// pointed at it.

import { before, after, beforeEach } from 'node:test'
import { startIdp, CLIENTS } from './idp/index.mjs'
import obo from '../index.js'

export const { OboTokenService, OboExchangeError } = obo
export const FILES = 'api://mcp-files/files.read'
export const MAIL = 'api://mcp-mail/mail.read'

/** Starts the IdP before the file's tests and stops it after; counters reset per test. */
export function useIdp() {
  const ctx = { idp: undefined }
  before(async () => {
    ctx.idp = await startIdp()
  })
  after(() => ctx.idp.close())
  beforeEach(() => {
    ctx.idp.resetCounters()
    ctx.idp.setExpiresIn(3600)
    ctx.idp.setOboDelay(0)
    ctx.idp.setIdJagDelay(0)
  })
  return ctx
}

/** A service for the IdP, with the `post` client unless told otherwise; logs are collected. */
export function newService(idp, options = {}, client = CLIENTS.post) {
  const logs = []
  const service = new OboTokenService({
    issuer: idp.issuer,
    clientId: client.clientId,
    clientSecret: client.clientSecret,
    clientAuthMethod: client.method,
    retryDelayMs: 20,
    logger: (level, message) => logs.push({ level, message }),
    ...options,
  })
  return { service, logs }
}

/** Settles `promise` and returns its rejection (fails if it resolved). */
export async function rejection(promise) {
  try {
    await promise
  } catch (err) {
    return err
  }
  throw new Error('expected a rejection')
}
