/**
 * A cursor over internal entries (user key ascending, sequence descending) of one source: a
 * memtable, one SSTable, or one level of SSTables. Accessors are valid only while `valid()` and
 * until the next move; `key()`/`value()` may be views into a cached block, so copy before keeping.
 */
export interface InternalIterator {
  valid(): boolean;
  key(): Uint8Array;
  sequence(): number;
  isTombstone(): boolean;
  value(): Uint8Array;
  /** First entry with internal key ≥ (key, sequence); pass SEQUENCE_MAX for "every version of key". */
  seek(key: Uint8Array, sequence: number): void;
  /** Last entry whose user key is < key. */
  seekBefore(key: Uint8Array): void;
  seekToFirst(): void;
  seekToLast(): void;
  next(): void;
  prev(): void;
}

/** What a point read found in one source. */
export type PointResult = { readonly kind: 'absent' } | { readonly kind: 'deleted' } | { readonly kind: 'value'; readonly value: Uint8Array };

export const ABSENT: PointResult = { kind: 'absent' };
export const DELETED: PointResult = { kind: 'deleted' };
