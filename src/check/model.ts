/**
 * The sequential specification of one key, as the checker sees it: a register
 * `(value, version)` starting at `(null, 0)` and the semantics of src/api/operations.ts applied
 * atomically at the linearization point. Pure and deterministic; the search calls `step`
 * millions of times, so states carry a precomputed hash and `step` returns the very same state
 * object when an operation leaves the register unchanged (the search uses that identity).
 */
import { fitsInt64, type KeyOperation, type KeyResult, parseInteger } from '../api/operations.js';
import { DETERMINATE_ERROR_CODES, type HistoryOperation, type Outcome } from './history.js';

export interface RegisterState {
  /** Null when the key is absent (never written, or deleted: a tombstone). */
  readonly value: Uint8Array | null;
  /** Entry id of the last applied write; 0 for a key never written. */
  readonly version: number;
  /** Hash of (value bytes, version), for the search's cache of visited configurations. */
  readonly hash: number;
}

/** What the specification says an operation does to a state. */
export type Expectation =
  | { readonly type: 'ok'; readonly result: KeyResult; readonly next: RegisterState }
  | { readonly type: 'error'; readonly code: 'WRONG_TYPE' };

export function makeState(value: Uint8Array | null, version: number): RegisterState {
  return { value, version, hash: hashState(value, version) };
}

export const INITIAL_STATE: RegisterState = makeState(null, 0);

/** FNV-1a over the bytes, with the version mixed in; absent and empty values hash differently. */
function hashState(value: Uint8Array | null, version: number): number {
  let hash = value === null ? 0x9dc5811c : 0x811c9dc5;
  if (value !== null) {
    for (let i = 0; i < value.length; i++) hash = Math.imul(hash ^ value[i], 0x01000193);
  }
  hash = Math.imul(hash ^ (version & 0xffff), 0x01000193);
  hash = Math.imul(hash ^ (version >>> 16), 0x01000193);
  return hash >>> 0;
}

export function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === b) return true;
  if (a === null || b === null || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function statesEqual(a: RegisterState, b: RegisterState): boolean {
  return a === b || (a.hash === b.hash && a.version === b.version && bytesEqual(a.value, b.value));
}

const textEncoder = new TextEncoder();

/** The specification: the result and next state of `operation` executed atomically on `state`. */
export function applyOperation(state: RegisterState, operation: KeyOperation): Expectation {
  const unchanged = (): Expectation => ({ type: 'ok', result: { applied: false, version: state.version, value: state.value }, next: state });
  const written = (value: Uint8Array | null, resultValue: Uint8Array | null): Expectation => {
    const version = state.version + 1;
    return { type: 'ok', result: { applied: true, version, value: resultValue }, next: makeState(value, version) };
  };
  switch (operation.kind) {
    case 'get':
      return { type: 'ok', result: { applied: true, version: state.version, value: state.value }, next: state };
    case 'set': {
      if (operation.ifVersion !== undefined && operation.ifVersion !== state.version) return unchanged();
      if (operation.onlyIfAbsent === true && state.value !== null) return unchanged();
      if (operation.onlyIfPresent === true && state.value === null) return unchanged();
      return written(operation.value, state.value);
    }
    case 'delete': {
      if (operation.ifVersion !== undefined && operation.ifVersion !== state.version) return unchanged();
      if (state.value === null) return unchanged();
      return written(null, state.value);
    }
    case 'incr': {
      const current = parseInteger(state.value);
      if (current === undefined) return { type: 'error', code: 'WRONG_TYPE' };
      const sum = current + operation.delta;
      if (!fitsInt64(sum)) return { type: 'error', code: 'WRONG_TYPE' };
      const value = textEncoder.encode(sum.toString());
      return written(value, value);
    }
    case 'append': {
      const previous = state.value ?? new Uint8Array(0);
      const value = new Uint8Array(previous.length + operation.value.length);
      value.set(previous, 0);
      value.set(operation.value, previous.length);
      return written(value, value);
    }
  }
}

/**
 * The outcome the search has to honour, after normalisation; undefined when the operation puts
 * no constraint on the history and is left out of the search:
 * - a get whose outcome is unknown (it had no effect and told nobody anything);
 * - a determinate rejection of the request itself (INVALID_ARGUMENT, VALUE_TOO_LARGE, …).
 * An error with an indeterminate code (TIMEOUT, CONTENTION, …) on a write becomes `unknown`.
 */
export function constrainingOutcome(entry: HistoryOperation): Outcome | undefined {
  const outcome = entry.outcome;
  const isGet = entry.operation.kind === 'get';
  if (outcome.type === 'ok') return outcome;
  if (outcome.type === 'error') {
    if (outcome.code === 'WRONG_TYPE') return outcome;
    if (DETERMINATE_ERROR_CODES.has(outcome.code)) return undefined;
  }
  return isGet ? undefined : { type: 'unknown' };
}

function resultMatches(expected: KeyResult, actual: KeyResult): boolean {
  return expected.applied === actual.applied && expected.version === actual.version && bytesEqual(expected.value, actual.value);
}

/**
 * One step of the search: the state after `operation` took effect on `state` with the observed
 * `outcome`, or undefined when the outcome is impossible there. An `unknown` outcome always
 * succeeds and takes the write's effect (whatever its result would have been).
 */
export function step(state: RegisterState, operation: KeyOperation, outcome: Outcome): RegisterState | undefined {
  if (operation.kind === 'get' && outcome.type === 'ok') {
    // The most frequent case, without allocating an expectation.
    const result = outcome.result;
    return result.applied && result.version === state.version && bytesEqual(result.value, state.value) ? state : undefined;
  }
  const expected = applyOperation(state, operation);
  switch (outcome.type) {
    case 'error':
      if (outcome.code === 'WRONG_TYPE') return expected.type === 'error' ? state : undefined;
      if (DETERMINATE_ERROR_CODES.has(outcome.code)) return state;
      // An indeterminate error code means the same as an unknown outcome.
      return expected.type === 'ok' ? expected.next : state;
    case 'unknown':
      return expected.type === 'ok' ? expected.next : state;
    case 'ok':
      return expected.type === 'ok' && resultMatches(expected.result, outcome.result) ? expected.next : undefined;
  }
}
