// Stand-in for packages/api/src/utils/errors.ts: whether a caught value is a cancellation.
export function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError'
}
