/**
 * Histories: what a client saw of each per-key operation (invoke, return, outcome), the input of
 * the linearizability checker. The simulator records one HistoryOperation per client request.
 *
 *   time ──►   invokeTime              returnTime
 *   client c1     ├──── set k=a ──────────┤ ok {applied, version 3, previous value}
 *   client c2          ├──── get k ──────────────┤ ok {version 3, value a}
 *   client c3       ├──── incr k ─────── … never answered (outcome unknown, returnTime = +∞)
 *
 * Two operations are ordered in real time only when one returned strictly before the other was
 * invoked; an operation invoked at the very tick another returns counts as concurrent with it
 * (the lenient reading, so a simulator that handles several events per tick never gets a false
 * alarm; advance the clock between dependent events to order them).
 */
import type { KeyOperation, KeyResult } from '../api/operations.js';
import { type ErrorCode, PaxosStoreError } from '../errors.js';

export type Outcome =
  /** The client received a result. */
  | { readonly type: 'ok'; readonly result: KeyResult }
  /** A determinate error (WRONG_TYPE): the operation had no effect. */
  | { readonly type: 'error'; readonly code: ErrorCode }
  /**
   * Timed out / CONTENTION / NO_QUORUM / the client crashed: the operation may or may not have
   * taken effect, at any time after its invocation (even after the client gave up), and its
   * result is unknown.
   */
  | { readonly type: 'unknown' };

export interface HistoryOperation {
  readonly clientId: string;
  /** The key as a string (the simulator uses short string keys). */
  readonly key: string;
  readonly operation: KeyOperation;
  /** Simulator ticks; invokeTime < returnTime. */
  readonly invokeTime: number;
  /** Number.POSITIVE_INFINITY when the outcome is 'unknown' and the client never learned it. */
  readonly returnTime: number;
  readonly outcome: Outcome;
}

/**
 * Error codes after which the operation certainly had no effect. WRONG_TYPE depends on the state
 * (incr on a non-integer), the others are rejections of the request itself before it ran. Every
 * other error code (CONTENTION, NO_QUORUM, TIMEOUT, OVERLOADED, CLOSED, IO_ERROR, …) is
 * indeterminate for a write, and the checker treats an `error` outcome carrying one exactly like
 * an `unknown` outcome: assuming less is never a false alarm.
 */
export const DETERMINATE_ERROR_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'WRONG_TYPE',
  'INVALID_ARGUMENT',
  'KEY_TOO_LARGE',
  'VALUE_TOO_LARGE',
  'REQUEST_TOO_LARGE',
]);

/** Throws INVALID_ARGUMENT for a malformed history entry (the checker's public boundary). */
export function validateHistoryOperation(entry: HistoryOperation, index: number): void {
  const fail = (why: string): never => {
    throw new PaxosStoreError('INVALID_ARGUMENT', `history operation ${index}: ${why}`, { index });
  };
  if (typeof entry.key !== 'string') fail('key must be a string');
  if (typeof entry.clientId !== 'string') fail('clientId must be a string');
  if (!Number.isFinite(entry.invokeTime)) fail('invokeTime must be a finite number');
  if (Number.isNaN(entry.returnTime)) fail('returnTime must be a number');
  if (!(entry.invokeTime < entry.returnTime)) fail(`invokeTime ${entry.invokeTime} must be before returnTime ${entry.returnTime}`);
  const kind = entry.operation?.kind;
  if (kind !== 'get' && kind !== 'set' && kind !== 'delete' && kind !== 'incr' && kind !== 'append') fail(`unknown operation kind ${String(kind)}`);
  const operation = entry.operation;
  if ((operation.kind === 'set' || operation.kind === 'append') && !(operation.value instanceof Uint8Array)) fail(`${kind} needs a Uint8Array value`);
  if (operation.kind === 'incr' && typeof operation.delta !== 'bigint') fail('incr needs a bigint delta');
  if ((operation.kind === 'set' || operation.kind === 'delete') && operation.ifVersion !== undefined && !Number.isSafeInteger(operation.ifVersion)) {
    fail('ifVersion must be an integer');
  }
  const outcome = entry.outcome;
  if (outcome?.type === 'ok') {
    const result = outcome.result;
    if (result === null || typeof result !== 'object') fail('ok outcome without a result');
    if (typeof result.applied !== 'boolean') fail('result.applied must be a boolean');
    if (!Number.isSafeInteger(result.version) || result.version < 0) fail('result.version must be a non-negative integer');
    if (result.value !== null && !(result.value instanceof Uint8Array)) fail('result.value must be a Uint8Array or null');
    if (entry.returnTime === Number.POSITIVE_INFINITY) fail('an ok outcome needs a finite returnTime');
  } else if (outcome?.type === 'error') {
    if (typeof outcome.code !== 'string') fail('error outcome without a code');
    if (entry.returnTime === Number.POSITIVE_INFINITY) fail('an error outcome needs a finite returnTime');
  } else if (outcome?.type !== 'unknown') {
    fail(`unknown outcome type ${String((outcome as { type?: unknown } | undefined)?.type)}`);
  }
}
