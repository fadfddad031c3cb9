/**
 * Per-key operations: the contract between the front ends (RESP, HTTP, WebSocket), the router,
 * the consensus layer that executes them on one key's PaxosLog, and the linearizability checker
 * that verifies histories of them. One module, so all four agree on the semantics.
 *
 * State of a key: `(value, version)`. `version` is the entry id of the key's last chosen PaxosLog
 * entry: 0 for a key never written, +1 for every write that is applied (a delete writes a
 * tombstone, so it also bumps the version; a deleted key reads as `value: null` with its version).
 *
 * Semantics (evaluated atomically against the latest chosen value, i.e. at the linearization point):
 * - get:     no change. Result value = current value (null if absent).
 * - set:     if `ifVersion` is given and differs from the current version → not applied;
 *            if `onlyIfAbsent` and a value exists → not applied; if `onlyIfPresent` and none → not applied.
 *            Else value ← `value`. Result value = the previous value (for SET … GET / GETSET).
 * - delete:  if `ifVersion` mismatches or the key is absent → not applied (nothing written).
 *            Else tombstone. Result value = the previous value.
 * - incr:    current value must be absent (treated as 0) or a base-10 signed 64-bit integer in ASCII,
 *            else WRONG_TYPE error (nothing written); overflow past int64 → WRONG_TYPE too.
 *            Value ← ASCII of (current + delta). Result value = the new value.
 * - append:  value ← current (or empty) ++ `value`. Result value = the new value.
 * A result that is not applied reports the current version and value (`previous` semantics aside:
 * for a not-applied set/delete, value = current value).
 *
 * Errors (PaxosStoreError codes): WRONG_TYPE (determinate: nothing was written);
 * CONTENTION, NO_QUORUM, TIMEOUT, OVERLOADED, CLOSED are *indeterminate* for writes: the write may
 * or may not be chosen later (an accepted value can be driven to a decision by another replica),
 * and a retry with the same request id is deduplicated.
 */

export type Consistency = 'linearizable' | 'local';

/** Identifies one logical client request across retries (dedup key on the chosen entry). */
export interface RequestId {
  readonly clientId: string;
  /** Client's wall-clock milliseconds when it first issued the request (informational, for expiry). */
  readonly timestampMs: number;
  /** Strictly increasing per client. */
  readonly sequence: number;
}

export type KeyOperation =
  | { readonly kind: 'get'; readonly consistency: Consistency }
  | {
      readonly kind: 'set';
      readonly value: Uint8Array;
      readonly ifVersion?: number;
      readonly onlyIfAbsent?: boolean;
      readonly onlyIfPresent?: boolean;
    }
  | { readonly kind: 'delete'; readonly ifVersion?: number }
  | { readonly kind: 'incr'; readonly delta: bigint }
  | { readonly kind: 'append'; readonly value: Uint8Array };

export type WriteKind = Exclude<KeyOperation['kind'], 'get'>;

export interface KeyResult {
  /** False when a precondition (ifVersion, NX, XX, delete of an absent key) stopped the write; always true for get. */
  readonly applied: boolean;
  /** The key's version after the operation. */
  readonly version: number;
  /** See the semantics above: current value (get), previous value (set/delete), new value (incr/append). */
  readonly value: Uint8Array | null;
}

export function isWrite(operation: KeyOperation): boolean {
  return operation.kind !== 'get';
}

const INT64_MAX = (1n << 63n) - 1n;
const INT64_MIN = -(1n << 63n);

/** Parses a Redis-style integer value; undefined when it is not a canonical base-10 int64. */
export function parseInteger(value: Uint8Array | null): bigint | undefined {
  if (value === null) return 0n;
  if (value.length === 0 || value.length > 20) return undefined;
  const text = new TextDecoder().decode(value);
  if (!/^-?(0|[1-9][0-9]*)$/.test(text) || text === '-0') return undefined;
  const parsed = BigInt(text);
  return parsed > INT64_MAX || parsed < INT64_MIN ? undefined : parsed;
}

/** True when `n` fits a signed 64-bit integer (INCR overflow check). */
export function fitsInt64(n: bigint): boolean {
  return n <= INT64_MAX && n >= INT64_MIN;
}
