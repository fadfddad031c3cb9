import { PaxosStoreError } from '../../errors.js';
import { compareBytes, type IterateOptions } from '../engine.js';
import { prefixSuccessor, SEQUENCE_MAX } from './codec.js';
import type { InternalIterator } from './internal-iterator.js';
import { type Table, TableIterator } from './sstable.js';

/**
 * Reading many sources as one ordered view at a snapshot sequence S:
 *
 *   memtable ─┐
 *   immutable ┤  each wrapped in a VisibleSource: at most one entry per user key,
 *   L0 table ─┤  the newest version with sequence ≤ S (possibly a tombstone)
 *   L0 table ─┤                      │
 *   level 1 ──┤                      ▼
 *   level 2 ──┘   merge: smallest key first (largest in reverse); when several sources hold
 *                 the key, the highest sequence wins and the others step past it;
 *                 a winning tombstone hides the key.
 *
 * Nothing here allocates per entry except the copies handed to the caller, which keeps scans fast.
 */

/** How many tables of a disjoint, key-ordered level have their `bound` key < key (binary search). */
export function countTablesBefore(tables: readonly Table[], bound: 'smallestKey' | 'largestKey', key: Uint8Array): number {
  let low = 0;
  let high = tables.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (compareBytes(tables[middle][bound], key) < 0) low = middle + 1;
    else high = middle;
  }
  return low;
}

/** Concatenates the disjoint, key-ordered tables of one level ≥ 1. */
export class LevelIterator implements InternalIterator {
  private tableIndex = -1;
  private current: TableIterator | null = null;

  constructor(private readonly tables: readonly Table[]) {}

  valid(): boolean {
    return this.current?.valid() === true;
  }
  key(): Uint8Array {
    return this.current!.key();
  }
  sequence(): number {
    return this.current!.sequence();
  }
  isTombstone(): boolean {
    return this.current!.isTombstone();
  }
  value(): Uint8Array {
    return this.current!.value();
  }

  private open(index: number): TableIterator | null {
    this.tableIndex = index;
    this.current = index >= 0 && index < this.tables.length ? new TableIterator(this.tables[index]) : null;
    return this.current;
  }

  seek(key: Uint8Array, sequence: number): void {
    // Earlier tables hold only smaller keys.
    this.open(countTablesBefore(this.tables, 'largestKey', key))?.seek(key, sequence);
    this.skipForward();
  }

  seekBefore(key: Uint8Array): void {
    // The last table whose smallest key is < key.
    this.open(countTablesBefore(this.tables, 'smallestKey', key) - 1)?.seekBefore(key);
    this.skipBackward();
  }

  seekToFirst(): void {
    this.open(0)?.seekToFirst();
  }
  seekToLast(): void {
    this.open(this.tables.length - 1)?.seekToLast();
  }
  next(): void {
    this.current!.next();
    this.skipForward();
  }
  prev(): void {
    this.current!.prev();
    this.skipBackward();
  }

  private skipForward(): void {
    while (this.current !== null && !this.current.valid()) this.open(this.tableIndex + 1)?.seekToFirst();
  }
  private skipBackward(): void {
    while (this.current !== null && !this.current.valid()) this.open(this.tableIndex - 1)?.seekToLast();
  }
}

const ARENA_BYTES = 16 * 1024;
const EMPTY_ARENA = new Uint8Array(0);

/** One source seen at sequence S: the newest visible version of each key, in key order. */
class VisibleSource {
  has = false;
  key: Uint8Array = new Uint8Array(0);
  sequence = 0;
  tombstone = false;
  value: Uint8Array = this.key;
  /** Reverse walks move the iterator past the captured entry, so they keep a view of its value. */
  private valueCaptured = false;

  constructor(
    readonly iterator: InternalIterator,
    private readonly snapshotSequence: number,
  ) {}

  /** Forward: from the iterator's position, take the first version ≤ S of the next key. */
  settleForward(): void {
    const iterator = this.iterator;
    while (iterator.valid() && iterator.sequence() > this.snapshotSequence) iterator.next();
    this.has = iterator.valid();
    if (this.has) this.capture();
  }

  /** Forward: step past every remaining version of the current key, then settle. */
  advanceForward(): void {
    const iterator = this.iterator;
    const key = this.key;
    do iterator.next();
    while (iterator.valid() && compareBytes(iterator.key(), key) === 0);
    this.settleForward();
  }

  /**
   * Reverse: the iterator sits on the oldest version of a key; walking back meets its versions in
   * increasing sequence, so the last one ≤ S is the visible one. The walk leaves the iterator on
   * the previous key's oldest version, ready for the next call. Keys with no version ≤ S are skipped.
   */
  settleBackward(): void {
    const iterator = this.iterator;
    this.has = false;
    while (iterator.valid() && !this.has) {
      const key = iterator.key();
      do {
        if (iterator.sequence() <= this.snapshotSequence) this.captureWithValue();
        else break;
        iterator.prev();
      } while (iterator.valid() && compareBytes(iterator.key(), key) === 0);
      while (iterator.valid() && compareBytes(iterator.key(), key) === 0) iterator.prev();
    }
  }

  /** Forward capture leaves the iterator on the entry, so the value is read only if it wins. */
  private capture(): void {
    const iterator = this.iterator;
    this.has = true;
    this.key = iterator.key();
    this.sequence = iterator.sequence();
    this.tombstone = iterator.isTombstone();
  }

  private captureWithValue(): void {
    this.capture();
    this.value = this.tombstone ? this.value : this.iterator.value();
    this.valueCaptured = true;
  }

  /** A view of the captured entry's value (valid until the blocks are gone; copy before handing out). */
  valueView(): Uint8Array {
    return this.valueCaptured ? this.value : this.iterator.value();
  }
}

export interface Bounds {
  readonly start: Uint8Array | null;
  readonly end: Uint8Array | null;
  readonly reverse: boolean;
  readonly limit: number;
}

/** Validates iterate options and folds `prefix` into the [start, end) range. */
export function boundsOf(options: IterateOptions | undefined): Bounds {
  const given = options ?? {};
  for (const name of ['start', 'end', 'prefix'] as const) {
    const bound = given[name];
    if (bound !== undefined && !(bound instanceof Uint8Array)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `iterate: ${name} must be a Uint8Array`);
    }
  }
  const limit = given.limit ?? Number.POSITIVE_INFINITY;
  if (typeof limit !== 'number' || Number.isNaN(limit) || limit < 0) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'iterate: limit must be a non-negative number');
  }
  let start = given.start ?? null;
  let end = given.end ?? null;
  if (given.prefix !== undefined) {
    const prefix = given.prefix;
    if (start === null || compareBytes(prefix, start) > 0) start = prefix;
    const successor = prefixSuccessor(prefix);
    if (successor !== null && (end === null || compareBytes(successor, end) < 0)) end = successor;
  }
  return { start, end, reverse: given.reverse === true, limit };
}

/**
 * The merge as an explicit iterator (not a generator: no generator frames per step, and an
 * explicit `return()` that releases what the reader pinned). `onDone` runs exactly once: when
 * the entries run out, the limit is reached, or the caller breaks out early.
 */
export class MergingIterator implements IterableIterator<[Uint8Array, Uint8Array]> {
  private readonly sources: VisibleSource[];
  private readonly reverse: boolean;
  private produced = 0;
  private finished = false;
  private arena = EMPTY_ARENA;
  private arenaUsed = 0;

  constructor(
    iterators: readonly InternalIterator[],
    snapshotSequence: number,
    private readonly bounds: Bounds,
    private readonly onDone: () => void,
  ) {
    this.reverse = bounds.reverse;
    this.sources = iterators.map((iterator) => new VisibleSource(iterator, snapshotSequence));
    const empty = bounds.limit === 0 || (bounds.start !== null && bounds.end !== null && compareBytes(bounds.start, bounds.end) >= 0);
    if (empty) {
      this.finish();
      return;
    }
    for (const source of this.sources) {
      const iterator = source.iterator;
      if (this.reverse) {
        if (bounds.end !== null) iterator.seekBefore(bounds.end);
        else iterator.seekToLast();
        source.settleBackward();
      } else {
        if (bounds.start !== null) iterator.seek(bounds.start, SEQUENCE_MAX);
        else iterator.seekToFirst();
        source.settleForward();
      }
    }
  }

  [Symbol.iterator](): this {
    return this;
  }

  next(): IteratorResult<[Uint8Array, Uint8Array]> {
    try {
      const entry = this.finished ? null : this.step();
      if (entry !== null) return { done: false, value: entry };
    } catch (error) {
      this.finish();
      throw error;
    }
    this.finish();
    return { done: true, value: undefined };
  }

  return(): IteratorResult<[Uint8Array, Uint8Array]> {
    this.finish();
    return { done: true, value: undefined };
  }

  /**
   * Copies into a per-iterator arena: V8 gives every typed array over 64 bytes its own off-heap
   * backing store, so two `slice()` calls per entry cost more than the rest of the scan. The
   * caller owns the views; keeping one keeps its arena (ARENA_BYTES) alive, like Node's Buffer pool.
   */
  private copy(source: Uint8Array): Uint8Array {
    const length = source.length;
    if (this.arenaUsed + length > this.arena.length) {
      this.arena = new Uint8Array(Math.max(ARENA_BYTES, length));
      this.arenaUsed = 0;
    }
    const view = this.arena.subarray(this.arenaUsed, this.arenaUsed + length);
    view.set(source);
    this.arenaUsed += length;
    return view;
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.onDone();
  }

  /** The next visible entry (copied), or null at the end of the range. */
  private step(): [Uint8Array, Uint8Array] | null {
    const bounds = this.bounds;
    const reverse = this.reverse;
    const sources = this.sources;
    for (;;) {
      let winner: VisibleSource | null = null;
      for (const source of sources) {
        if (!source.has) continue;
        if (winner === null) {
          winner = source;
          continue;
        }
        const order = reverse ? compareBytes(winner.key, source.key) : compareBytes(source.key, winner.key);
        if (order < 0 || (order === 0 && source.sequence > winner.sequence)) winner = source;
      }
      if (winner === null) return null;
      const key = winner.key;
      if (reverse ? bounds.start !== null && compareBytes(key, bounds.start) < 0 : bounds.end !== null && compareBytes(key, bounds.end) >= 0) {
        return null;
      }
      // Copy before any source moves: the caller owns what it gets, and blocks stay immutable.
      const entry: [Uint8Array, Uint8Array] | null = winner.tombstone ? null : [this.copy(key), this.copy(winner.valueView())];
      for (const source of sources) {
        if (source.has && compareBytes(source.key, key) === 0) {
          if (reverse) source.settleBackward();
          else source.advanceForward();
        }
      }
      if (entry === null) continue;
      if (++this.produced >= bounds.limit) this.finished = true;
      return entry;
    }
  }
}
