/**
 * An in-memory Router for front-end tests: one process-local map of `(value, version)` per key,
 * evaluated with exactly the semantics of src/api/operations.ts. It is the reference the RESP,
 * HTTP and WebSocket front ends are tested against before the real router (main thread → shard
 * workers over SharedArrayBuffer rings) exists, so it must be strict where the real one is:
 * key and value limits, WRONG_TYPE for INCR on a non-integer, deduplication of a retried write
 * with the same request id, CLOSED after close().
 *
 * Knobs for tests that need the messy parts of a real router:
 * - `random` + `delayMsMax`: every call waits a random 0..delayMsMax ms before it takes effect,
 *   so concurrent calls complete (and apply) out of order, as they do across shards.
 * - `injectFailures(code, count, {applied})`: the next calls reject with an indeterminate error;
 *   with `applied: true` the write takes effect first (a chosen value whose reply was lost).
 */
import { fitsInt64, type KeyOperation, type KeyResult, parseInteger, type RequestId } from '../../src/api/operations.js';
import { type ErrorCode, PaxosStoreError } from '../../src/errors.js';
import type { Router, RouterInfo } from '../../src/router/types.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT } from '../../src/storage/engine.js';
import type { Random } from '../../src/util/random.js';

export interface MemoryRouterOptions {
  readonly replicaId?: number;
  readonly replicaCount?: number;
  readonly shardCount?: number;
  readonly valueBytesMax?: number;
  /** With `delayMsMax`, makes each call wait a random 0..delayMsMax ms before taking effect. */
  readonly random?: Random;
  readonly delayMsMax?: number;
  /** How many write results are remembered for deduplicating retries (oldest forgotten first). */
  readonly dedupEntriesMax?: number;
  /** Milliseconds clock for uptime; defaults to Date.now. */
  readonly clock?: () => number;
}

export interface KeyState {
  readonly value: Uint8Array | null;
  readonly version: number;
}

interface InjectedFailure {
  readonly code: ErrorCode;
  readonly applied: boolean;
}

const ABSENT: KeyState = { value: null, version: 0 };
const DEDUP_ENTRIES_MAX_DEFAULT = 100_000;

export class MemoryRouter implements Router {
  private readonly keys = new Map<string, KeyState>();
  /** `clientId \0 sequence` → the key and the result of the write first executed with that id. */
  private readonly completedWrites = new Map<string, { readonly key: string; readonly result: KeyResult }>();
  /** Dedup keys in insertion order, a ring of dedupEntriesMax slots; dedupNext is the oldest. */
  private readonly dedupOrder: (string | undefined)[] = [];
  private dedupNext = 0;
  private readonly failures: InjectedFailure[] = [];
  private readonly valueBytesMax: number;
  private readonly dedupEntriesMax: number;
  private readonly clock: () => number;
  private readonly startedMs: number;
  private closed = false;
  private readonly counters = {
    requests: 0,
    reads: 0,
    writes: 0,
    writesApplied: 0,
    writesDeduplicated: 0,
    errors: 0,
    inFlight: 0,
  };

  constructor(private readonly options: MemoryRouterOptions = {}) {
    this.valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    this.dedupEntriesMax = options.dedupEntriesMax ?? DEDUP_ENTRIES_MAX_DEFAULT;
    this.clock = options.clock ?? Date.now;
    this.startedMs = this.clock();
  }

  async execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    this.counters.requests++;
    this.counters.inFlight++;
    try {
      if (this.closed) throw new PaxosStoreError('CLOSED', 'router is closed');
      validateRequest(key, operation, requestId);
      const delayMs = this.options.random !== undefined ? this.options.random.int((this.options.delayMsMax ?? 0) + 1) : 0;
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      if (this.closed) throw new PaxosStoreError('CLOSED', 'router is closed');
      const failure = this.failures.shift();
      if (failure !== undefined) {
        if (failure.applied) this.applyOnce(key, operation, requestId);
        throw new PaxosStoreError(failure.code, `injected ${failure.code}`);
      }
      return this.applyOnce(key, operation, requestId);
    } catch (error) {
      this.counters.errors++;
      throw error;
    } finally {
      this.counters.inFlight--;
    }
  }

  info(): RouterInfo {
    return {
      replicaId: this.options.replicaId ?? 1,
      replicaCount: this.options.replicaCount ?? 1,
      shardCount: this.options.shardCount ?? 1,
      uptimeSeconds: Math.floor((this.clock() - this.startedMs) / 1000),
      counters: { ...this.counters, keys: this.keys.size },
    };
  }

  /** The next `count` calls reject with `code`; with `applied`, a write takes effect first. */
  injectFailures(code: ErrorCode, count = 1, options: { applied?: boolean } = {}): void {
    for (let i = 0; i < count; i++) this.failures.push({ code, applied: options.applied ?? false });
  }

  /** The key's current state, read directly (no request, no counters). */
  peek(key: Uint8Array | string): KeyState {
    return this.keys.get(keyName(typeof key === 'string' ? Buffer.from(key) : key)) ?? ABSENT;
  }

  /** Every later call rejects with CLOSED, including calls still waiting out their delay. */
  close(): void {
    this.closed = true;
  }

  private applyOnce(key: Uint8Array, operation: KeyOperation, requestId: RequestId): KeyResult {
    const name = keyName(key);
    if (operation.kind === 'get') {
      this.counters.reads++;
      const state = this.keys.get(name) ?? ABSENT;
      return { applied: true, version: state.version, value: state.value };
    }
    this.counters.writes++;
    const dedupKey = `${requestId.clientId}\u0000${requestId.sequence}`;
    const earlier = this.completedWrites.get(dedupKey);
    if (earlier !== undefined) {
      if (earlier.key !== name) {
        throw new PaxosStoreError('INVALID_ARGUMENT', 'request id reused for a different key', { requestId });
      }
      this.counters.writesDeduplicated++;
      return earlier.result;
    }
    const state = this.keys.get(name) ?? ABSENT;
    const { result, next } = applyWrite(state, operation, this.valueBytesMax);
    if (next !== state) this.keys.set(name, next);
    if (result.applied) this.counters.writesApplied++;
    this.completedWrites.set(dedupKey, { key: name, result });
    // Forget the oldest entry through a ring of insertion order: O(1), where deleting a Map's first
    // key is O(holes) in V8 once many entries have been deleted from its front.
    const evicted = this.dedupOrder[this.dedupNext];
    if (evicted !== undefined) this.completedWrites.delete(evicted);
    this.dedupOrder[this.dedupNext] = dedupKey;
    this.dedupNext = (this.dedupNext + 1) % this.dedupEntriesMax;
    return result;
  }
}

/** Latin-1 maps every byte to one UTF-16 unit, so this is a bijection from byte strings to map keys. */
function keyName(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

function validateRequest(key: Uint8Array, operation: KeyOperation, requestId: RequestId): void {
  if (!(key instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'key must be a Uint8Array');
  if (key.length > KEY_BYTES_MAX) {
    throw new PaxosStoreError('KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${KEY_BYTES_MAX}`);
  }
  if (typeof requestId?.clientId !== 'string' || !Number.isSafeInteger(requestId.sequence)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'request id needs a string clientId and an integer sequence');
  }
  if (operation.kind === 'incr' && typeof operation.delta !== 'bigint') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'incr delta must be a bigint');
  }
}

/** One write against one key's state, exactly as src/api/operations.ts specifies. */
function applyWrite(
  state: KeyState,
  operation: Exclude<KeyOperation, { kind: 'get' }>,
  valueBytesMax: number,
): { result: KeyResult; next: KeyState } {
  const unchanged = { result: { applied: false, version: state.version, value: state.value }, next: state };
  const write = (value: Uint8Array | null, resultValue: Uint8Array | null) => {
    const next = { value, version: state.version + 1 };
    return { result: { applied: true, version: next.version, value: resultValue }, next };
  };
  switch (operation.kind) {
    case 'set': {
      checkValueSize(operation.value.length, valueBytesMax);
      if (operation.ifVersion !== undefined && operation.ifVersion !== state.version) return unchanged;
      if (operation.onlyIfAbsent === true && state.value !== null) return unchanged;
      if (operation.onlyIfPresent === true && state.value === null) return unchanged;
      // Buffer.from copies; small values share Node's pool instead of one ArrayBuffer each.
      return write(Buffer.from(operation.value), state.value);
    }
    case 'delete': {
      if (operation.ifVersion !== undefined && operation.ifVersion !== state.version) return unchanged;
      if (state.value === null) return unchanged;
      return write(null, state.value);
    }
    case 'incr': {
      const current = parseInteger(state.value);
      if (current === undefined) throw new PaxosStoreError('WRONG_TYPE', 'value is not an integer or out of range');
      const sum = current + operation.delta;
      if (!fitsInt64(sum)) throw new PaxosStoreError('WRONG_TYPE', 'increment or decrement would overflow');
      const value = new TextEncoder().encode(sum.toString());
      return write(value, value);
    }
    case 'append': {
      const previous = state.value ?? new Uint8Array(0);
      checkValueSize(previous.length + operation.value.length, valueBytesMax);
      const value = new Uint8Array(previous.length + operation.value.length);
      value.set(previous, 0);
      value.set(operation.value, previous.length);
      return write(value, value);
    }
  }
}

function checkValueSize(length: number, valueBytesMax: number): void {
  if (length > valueBytesMax) {
    throw new PaxosStoreError('VALUE_TOO_LARGE', `value is ${length} bytes; the limit is ${valueBytesMax}`);
  }
}
