/**
 * Invariant assertions for the cores. A failed assertion is a bug in this codebase, never bad
 * input (bad input gets a PaxosStoreError). They stay on in production: the cores are cheap to
 * check and silent corruption is far more expensive than a crash.
 */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
