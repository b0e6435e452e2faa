'use strict'

// The service's events on node:diagnostics_channel, under `librechat-obo:`. The native
// side hands each event over (a weak threadsafe function: exchanges, refreshes,
// evictions and the shared tier's breaker changes, never hits); this module publishes it only when its channel has
// subscribers, and builds the published object only then. No event carries a token, an
// assertion, a secret or a raw user id: `identity` and `key` are short SHA-256 digests.

const diagnostics = require('node:diagnostics_channel')

const PREFIX = 'librechat-obo:'
/** Published by the native side through `publish`. */
const NATIVE_CHANNELS = ['exchange:start', 'exchange:end', 'refresh:start', 'refresh:end', 'cache:evict', 'shared:breaker']

/** Channel objects by short name, held here so they live as long as the module. */
const channels = new Map(NATIVE_CHANNELS.map((name) => [name, diagnostics.channel(PREFIX + name)]))

/** Fields copied from a native event when present, in this order. */
const FIELDS = ['grant', 'outcome', 'durationMs', 'reason', 'error', 'errorCodes', 'status', 'cause']

/** The published form of a native event: only the fields it has. */
function shape(name, event) {
  if (name === 'shared:breaker') return { state: event.breaker }
  const message = { identity: event.identity, key: event.key, scopes: event.scopes }
  if (name.startsWith('exchange:')) message.refresh = event.refresh
  for (const field of FIELDS) {
    const value = event[field]
    if (value !== undefined && value !== null) message[field] = value
  }
  return message
}

/**
 * The native side's publisher: `(name, event)`. A subscriber that throws is Node's to
 * report (diagnostics_channel calls subscribers synchronously); it never reaches an
 * exchange.
 */
function publish(name, event) {
  const channel = channels.get(name)
  if (channel === undefined || !channel.hasSubscribers) return
  try {
    channel.publish(shape(name, event))
  } catch {
    // A subscriber's error must not take the process down from a native callback.
  }
}

/**
 * Whether any native channel has a subscriber. The native side builds and sends events only
 * while one has (the wrapper tells it on a change), since each costs a hop to this thread.
 */
function watched() {
  for (const channel of channels.values()) if (channel.hasSubscribers) return true
  return false
}

module.exports = { publish, watched }
