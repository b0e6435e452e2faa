'use strict'

// The public surface of librechat-obo; lib/ holds one module per concern and the native
// binding (binding.js) does the work.

const { OboTokenService } = require('./lib/service.js')
const { OboExchangeError, OboTokenResolutionError } = require('./lib/errors.js')
const { resolveOboToken } = require('./lib/resolve.js')
const { createOboFetch } = require('./lib/fetch.js')
const { ScheduledOboGrant, scheduledOboGrantKey } = require('./lib/scheduled.js')

module.exports = {
  OboTokenService,
  OboExchangeError,
  OboTokenResolutionError,
  resolveOboToken,
  createOboFetch,
  ScheduledOboGrant,
  scheduledOboGrantKey,
}
