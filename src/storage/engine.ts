import { PaxosStoreError } from '../errors.js';

/**
 * The one interface both storage engines implement (DESIGN.md §3). Bitcask serves point reads
 * and holds every key's PaxosLog; the LSM adds ordered iteration and snapshots.
 *
 * Keys and values are bytes. Reads are synchronous (they hit the in-memory index and at most one
 * pread); writes return a promise that resolves only once the write is durable (group commit:
 * many writes share one fdatasync). A write that fails validation rejects with a PaxosStoreError
 * before anything is written, so callers have one error path.
 */

/** Keys over 64 KiB are refused (DESIGN: KEY_TOO_LARGE). */
export const KEY_BYTES_MAX = 64 * 1024;
/** Default value limit; engines take `valueBytesMax` to change it. */
export const VALUE_BYTES_MAX_DEFAULT = 16 * 1024 * 1024;

export type WriteOperation =
  | { readonly type: 'put'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'delete'; readonly key: Uint8Array };

/** Counters an engine reports; names end in their unit. */
export type EngineStats = Record<string, number>;

export interface KvEngine {
  /** The live value, or undefined when absent or deleted. Never returns bytes that failed their checksum. */
  get(key: Uint8Array): Uint8Array | undefined;
  /** Resolves when durable. */
  put(key: Uint8Array, value: Uint8Array): Promise<void>;
  /** Resolves when the tombstone is durable. */
  delete(key: Uint8Array): Promise<void>;
  /** All operations become durable together, or (after a crash) none of them does. */
  batch(operations: readonly WriteOperation[]): Promise<void>;
  /** Resolves when every write issued before the call is durable. */
  flush(): Promise<void>;
  /** Flushes, waits for background work, releases files. Further calls reject with CLOSED. */
  close(): Promise<void>;
  stats(): EngineStats;
}

export interface IterateOptions {
  /** Inclusive lower bound. */
  readonly start?: Uint8Array;
  /** Exclusive upper bound. */
  readonly end?: Uint8Array;
  /** Only keys with this prefix (combined with start/end when given). */
  readonly prefix?: Uint8Array;
  readonly reverse?: boolean;
  readonly limit?: number;
}

export interface ReadView {
  get(key: Uint8Array): Uint8Array | undefined;
  /** Entries in key order (bytewise), consistent with this view even while compaction runs. */
  iterate(options?: IterateOptions): IterableIterator<[key: Uint8Array, value: Uint8Array]>;
}

/** A point-in-time view; must be released so the files it pins can be deleted. */
export interface Snapshot extends ReadView {
  release(): void;
}

export interface OrderedKvEngine extends KvEngine, ReadView {
  snapshot(): Snapshot;
}

/** Validates one write at the public boundary; engines call it before writing anything. */
export function validateWrite(operation: WriteOperation, valueBytesMax: number): void {
  if (!(operation.key instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'key must be a Uint8Array');
  if (operation.key.length > KEY_BYTES_MAX) {
    throw new PaxosStoreError('KEY_TOO_LARGE', `key is ${operation.key.length} bytes; the limit is ${KEY_BYTES_MAX}`);
  }
  if (operation.type === 'put') {
    if (!(operation.value instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'value must be a Uint8Array');
    if (operation.value.length > valueBytesMax) {
      throw new PaxosStoreError('VALUE_TOO_LARGE', `value is ${operation.value.length} bytes; the limit is ${valueBytesMax}`);
    }
  } else if (operation.type !== 'delete') {
    throw new PaxosStoreError('INVALID_ARGUMENT', `unknown write operation type ${String((operation as { type: unknown }).type)}`);
  }
}

/** Bytewise comparison, the key order of the LSM and of every ordered structure. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = a[i] - b[i];
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}
