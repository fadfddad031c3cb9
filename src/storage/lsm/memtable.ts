import { compareBytes } from '../engine.js';
import { ByteWriter, compareInternal, entryBytes, KIND_PUT, KIND_TOMBSTONE, SEQUENCE_MAX } from './codec.js';
import { ABSENT, DELETED, type InternalIterator, type PointResult } from './internal-iterator.js';

/**
 * The sorted in-memory table of recent writes: a skip list ordered by internal key (user key
 * ascending, sequence descending). Every write is a new node — a put or a tombstone — so older
 * versions stay readable for snapshots until a flush writes the whole memtable to an L0 table.
 *
 * Insert is O(log n) expected; iteration follows level-0 links. Nodes are never removed, so an
 * iterator stays valid while writes land: newer nodes it meets carry sequences above its
 * snapshot and are skipped by the visibility layer. Reverse steps re-search from the head
 * (O(log n)), which keeps nodes free of back pointers.
 */

const HEIGHT_MAX = 16;
/** Rough per-node bookkeeping cost (node object, tower array), counted toward the size limit. */
const NODE_OVERHEAD_BYTES = 64;

interface Node {
  readonly key: Uint8Array;
  readonly sequence: number;
  readonly tombstone: boolean;
  readonly value: Uint8Array;
  readonly next: (Node | null)[];
}

const EMPTY = new Uint8Array(0);

export class Memtable {
  private readonly head: Node = { key: EMPTY, sequence: SEQUENCE_MAX, tombstone: false, value: EMPTY, next: new Array(HEIGHT_MAX).fill(null) };
  private height = 1;
  /** xorshift32 state for tower heights: structure only, so a fixed seed keeps runs reproducible. */
  private heightRandom = 0x2545f491;
  private readonly previous: Node[] = new Array(HEIGHT_MAX);
  sizeBytes = 0;
  entryCount = 0;
  /** Sequence of the newest entry (0 when empty). */
  lastSequence = 0;

  /** `value === null` records a tombstone. The caller applies writes in increasing sequence order. */
  add(key: Uint8Array, sequence: number, value: Uint8Array | null): void {
    this.descend(key, sequence, true);
    const height = this.randomHeight();
    while (this.height < height) this.previous[this.height++] = this.head;
    const created: Node = { key, sequence, tombstone: value === null, value: value ?? EMPTY, next: new Array(height) };
    for (let level = 0; level < height; level++) {
      created.next[level] = this.previous[level].next[level];
      this.previous[level].next[level] = created;
    }
    this.sizeBytes += entryBytes(key.length, value === null ? 0 : value.length) + NODE_OVERHEAD_BYTES;
    this.entryCount++;
    if (sequence > this.lastSequence) this.lastSequence = sequence;
  }

  private randomHeight(): number {
    let x = this.heightRandom;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.heightRandom = x >>> 0;
    // Each extra level with probability 1/4, as in LevelDB.
    let height = 1;
    let bits = this.heightRandom;
    while (height < HEIGHT_MAX && (bits & 3) === 0) {
      height++;
      bits >>>= 2;
    }
    return height;
  }

  /** The last node (or the head) whose internal key is < (key, sequence); optionally records the path. */
  private descend(key: Uint8Array, sequence: number, recordPath: boolean): Node {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      let next = node.next[level];
      while (next !== null && compareInternal(next.key, next.sequence, key, sequence) < 0) {
        node = next;
        next = node.next[level];
      }
      if (recordPath) this.previous[level] = node;
    }
    return node;
  }

  /** First node with internal key ≥ (key, sequence), or null. */
  findGreaterOrEqual(key: Uint8Array, sequence: number): Node | null {
    return this.descend(key, sequence, false).next[0];
  }

  /** Last node with internal key < (key, sequence), or null. */
  findLessThan(key: Uint8Array, sequence: number): Node | null {
    const node = this.descend(key, sequence, false);
    return node === this.head ? null : node;
  }

  findLast(): Node | null {
    let node = this.head;
    for (let level = this.height - 1; level >= 0; level--) {
      while (node.next[level] !== null) node = node.next[level]!;
    }
    return node === this.head ? null : node;
  }

  first(): Node | null {
    return this.head.next[0];
  }

  get(key: Uint8Array, sequence: number): PointResult {
    const node = this.findGreaterOrEqual(key, sequence);
    if (node === null || compareBytes(node.key, key) !== 0) return ABSENT;
    return node.tombstone ? DELETED : { kind: 'value', value: node.value };
  }

  iterator(): InternalIterator {
    return new MemtableIterator(this);
  }

  /** Every entry in internal-key order, encoded as codec.ts entries: the input of a flush job. */
  pack(): Uint8Array {
    const writer = new ByteWriter(Math.max(1024, this.sizeBytes));
    for (let node = this.first(); node !== null; node = node.next[0]) {
      writer.entry(node.tombstone ? KIND_TOMBSTONE : KIND_PUT, node.sequence, node.key, node.tombstone ? null : node.value);
    }
    return writer.finish();
  }
}

class MemtableIterator implements InternalIterator {
  private node: Node | null = null;

  constructor(private readonly memtable: Memtable) {}

  valid(): boolean {
    return this.node !== null;
  }
  key(): Uint8Array {
    return this.node!.key;
  }
  sequence(): number {
    return this.node!.sequence;
  }
  isTombstone(): boolean {
    return this.node!.tombstone;
  }
  value(): Uint8Array {
    return this.node!.value;
  }
  seek(key: Uint8Array, sequence: number): void {
    this.node = this.memtable.findGreaterOrEqual(key, sequence);
  }
  seekBefore(key: Uint8Array): void {
    this.node = this.memtable.findLessThan(key, SEQUENCE_MAX);
  }
  seekToFirst(): void {
    this.node = this.memtable.first();
  }
  seekToLast(): void {
    this.node = this.memtable.findLast();
  }
  next(): void {
    this.node = this.node!.next[0];
  }
  prev(): void {
    this.node = this.memtable.findLessThan(this.node!.key, this.node!.sequence);
  }
}
