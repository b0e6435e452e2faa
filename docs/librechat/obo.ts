/**
 * OBO token resolution comes from librechat-obo (Rust: the exchange, its cache, single-flight,
 * retry, and `resolveOboToken`'s rules). Imported, not only re-exported: this file still builds
 * `OboTokenResolutionError` itself (`createLazyOboUpstreamTokenProvider`), and other files import
 * both from here. The rest of this file (the provider types, the lazy provider, cancellation,
 * `isRetryableOboExchangeError`, the trust policy) stays LibreChat's.
 */
import { OboTokenResolutionError, resolveOboToken } from 'librechat-obo';
import type { OboTokenResolutionReason } from 'librechat-obo';

export { OboTokenResolutionError, resolveOboToken };
export type { OboTokenResolutionReason };
