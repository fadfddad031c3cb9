import { PaxosStoreError } from '../../errors.js';
import { assert } from '../../util/assert.js';
import { crc32c } from '../crc32c.js';
import type { FileHandle, FileSystem } from '../file-system.js';
import { Block, BlockBuilder, decodeStoredBlock, encodeStoredBlock } from './block.js';
import { BlockCache } from './block-cache.js';
import { bloomMayContain, buildBloomFilter, hash32 } from './bloom.js';
import { ByteReader, ByteWriter, compareInternal, type EntryKind, equalBytes, KIND_TOMBSTONE, readUint64, writeUint64 } from './codec.js';
import { ABSENT, DELETED, type InternalIterator, type PointResult } from './internal-iterator.js';

/**
 * SSTable: an immutable sorted file of entries.
 *
 *   +--------------+-----+--------------+--------------+-------------+-----------------+
 *   | data block 0 | ... | data block n | filter block | index block | footer (40 B)   |
 *   +--------------+-----+--------------+--------------+-------------+-----------------+
 *
 * Every block is a stored block (block.ts: payload, compression byte, CRC32C).
 * Filter payload: the bloom filter over the table's user keys (bloom.ts).
 * Index payload:
 *
 *   +-------------+-----------------------------------------------------------------------+
 *   | count (u32) | per data block: last key (u32 length + bytes), last sequence (u64),   |
 *   |             |                 offset (u64), stored length (u32)                     |
 *   +-------------+-----------------------------------------------------------------------+
 *   | first key of the table (u32 length + bytes)                                         |
 *   +-------------------------------------------------------------------------------------+
 *
 * Footer (fixed 40 bytes at the end of the file):
 *
 *   +-----------+-----------+-----------+-----------+-------------+--------+---------------+
 *   | filter    | filter    | index     | index     | entry count | magic  | crc32c of the |
 *   | offset u64| length u32| offset u64| length u32| u64         | u32    | previous 36 B |
 *   +-----------+-----------+-----------+-----------+-------------+--------+---------------+
 *
 * Index entries carry the block's last internal key (user key + sequence) so a seek to
 * (key, sequence) lands in the right block even when one key's versions span two blocks.
 * A table never splits a user key across two files (the compactor cuts between keys), so the
 * tables of one level are disjoint by user key.
 */

export const FOOTER_BYTES = 40;
const TABLE_MAGIC = 0x4c534d54; // "LSMT"
const WRITE_BUFFER_BYTES = 256 * 1024;
const BLOCKS_PER_TABLE_MAX = 1048576;

export interface TableWriterOptions {
  readonly blockBytes: number;
  readonly bloomBitsPerKey: number;
  readonly compress: boolean;
}

/** What the manifest records about a finished table. */
export interface TableMetadata {
  readonly number: number;
  readonly sizeBytes: number;
  readonly entryCount: number;
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
}

export function tableFileName(number: number): string {
  return `${String(number).padStart(6, '0')}.sst`;
}

/** Streams entries (in internal-key order) into a new table file. */
export class TableWriter {
  private readonly handle: FileHandle;
  private readonly block = new BlockBuilder();
  private readonly buffer = new ByteWriter(16384);
  private readonly index = new ByteWriter(4096);
  private hashes = new Uint32Array(1024);
  private hashCount = 0;
  private fileOffset = 0;
  private blockCount = 0;
  private entryCount = 0;
  private firstKey: Uint8Array | null = null;
  private lastKey: Uint8Array | null = null;
  private lastSequence = 0;

  constructor(
    fileSystem: FileSystem,
    readonly path: string,
    readonly number: number,
    private readonly options: TableWriterOptions,
  ) {
    this.handle = fileSystem.open(path, 'create');
  }

  get sizeBytes(): number {
    return this.fileOffset + this.buffer.length + this.block.sizeBytes;
  }

  get entries(): number {
    return this.entryCount;
  }

  add(kind: EntryKind, sequence: number, key: Uint8Array, value: Uint8Array | null): void {
    const previousKey = this.lastKey;
    if (previousKey !== null) {
      assert(compareInternal(previousKey, this.lastSequence, key, sequence) < 0, 'table entries must arrive in internal-key order');
    }
    const newUserKey = previousKey === null || !equalBytes(previousKey, key);
    if (newUserKey) {
      if (this.hashCount === this.hashes.length) {
        const grown = new Uint32Array(this.hashes.length * 2);
        grown.set(this.hashes);
        this.hashes = grown;
      }
      this.hashes[this.hashCount++] = hash32(key);
      this.lastKey = key.slice();
      if (this.firstKey === null) this.firstKey = this.lastKey;
    }
    this.lastSequence = sequence;
    this.block.add(kind, sequence, key, kind === KIND_TOMBSTONE ? null : value);
    this.entryCount++;
    if (this.block.sizeBytes >= this.options.blockBytes) this.finishBlock();
  }

  private finishBlock(): void {
    if (this.block.entryCount === 0) return;
    const stored = encodeStoredBlock(this.block.finish(), this.options.compress);
    const offset = this.appendStored(stored);
    this.index.lengthPrefixed(this.lastKey!);
    this.index.uint64(this.lastSequence);
    this.index.uint64(offset);
    this.index.uint32(stored.length);
    this.blockCount++;
    assert(this.blockCount < BLOCKS_PER_TABLE_MAX, 'table has too many blocks for the block cache key');
  }

  private appendStored(stored: Uint8Array): number {
    const offset = this.fileOffset + this.buffer.length;
    this.buffer.raw(stored);
    if (this.buffer.length >= WRITE_BUFFER_BYTES) this.drain();
    return offset;
  }

  private drain(): void {
    if (this.buffer.length === 0) return;
    this.handle.append(this.buffer.bytes.subarray(0, this.buffer.length));
    this.fileOffset += this.buffer.length;
    this.buffer.reset();
  }

  /** Writes filter, index and footer, syncs the file and closes it. */
  async finish(): Promise<TableMetadata> {
    assert(this.entryCount > 0 && this.firstKey !== null, 'an empty table is never written');
    try {
      this.finishBlock();
      const filter = encodeStoredBlock(buildBloomFilter(this.hashes, this.hashCount, this.options.bloomBitsPerKey), false);
      const filterOffset = this.appendStored(filter);
      const indexPayload = new ByteWriter(this.index.length + 8 + this.firstKey.length);
      indexPayload.uint32(this.blockCount);
      indexPayload.raw(this.index.bytes.subarray(0, this.index.length));
      indexPayload.lengthPrefixed(this.firstKey);
      const index = encodeStoredBlock(indexPayload.finish(), false);
      const indexOffset = this.appendStored(index);
      const footer = new Uint8Array(FOOTER_BYTES);
      const view = new DataView(footer.buffer);
      writeUint64(view, 0, filterOffset);
      view.setUint32(8, filter.length);
      writeUint64(view, 12, indexOffset);
      view.setUint32(20, index.length);
      writeUint64(view, 24, this.entryCount);
      view.setUint32(32, TABLE_MAGIC);
      view.setUint32(36, crc32c(footer, 0, 0, 36));
      this.buffer.raw(footer);
      this.drain();
      await this.handle.sync();
    } finally {
      this.handle.close();
    }
    return {
      number: this.number,
      sizeBytes: this.fileOffset,
      entryCount: this.entryCount,
      smallestKey: this.firstKey,
      largestKey: this.lastKey!,
    };
  }

  /** Gives up on the table (the caller removes the file). */
  abandon(): void {
    this.handle.close();
  }
}

/** An open, verified table: footer, index and filter are in memory; data blocks are read on demand. */
export class Table {
  readonly blockCount: number;
  readonly entryCount: number;
  readonly smallestKey: Uint8Array;
  readonly largestKey: Uint8Array;
  readonly sizeBytes: number;
  private readonly lastKeys: Uint8Array[] = [];
  private readonly lastSequences: number[] = [];
  private readonly offsets: number[] = [];
  private readonly lengths: number[] = [];
  private readonly filter: Uint8Array;
  /** Versions (and through them snapshots and iterators) that still use this table. */
  references = 0;

  private constructor(
    private readonly handle: FileHandle,
    readonly path: string,
    readonly number: number,
    private readonly cache: BlockCache | null,
  ) {
    const what = `table ${path}`;
    this.sizeBytes = handle.size();
    if (this.sizeBytes < FOOTER_BYTES) throw new PaxosStoreError('CORRUPTION', `${what}: shorter than its footer`);
    const footer = this.readExactly(this.sizeBytes - FOOTER_BYTES, FOOTER_BYTES);
    const view = new DataView(footer.buffer, footer.byteOffset, FOOTER_BYTES);
    if (view.getUint32(32) !== TABLE_MAGIC || crc32c(footer, 0, 0, 36) !== view.getUint32(36)) {
      throw new PaxosStoreError('CORRUPTION', `${what}: bad footer`);
    }
    const filterOffset = readUint64(view, 0);
    const indexOffset = readUint64(view, 12);
    this.entryCount = readUint64(view, 24);
    const filterLength = view.getUint32(8);
    const indexLength = view.getUint32(20);
    if (filterOffset + filterLength > indexOffset || indexOffset + indexLength > this.sizeBytes - FOOTER_BYTES) {
      throw new PaxosStoreError('CORRUPTION', `${what}: footer points outside the file`);
    }
    this.filter = decodeStoredBlock(this.readExactly(filterOffset, filterLength), `${what} filter`);
    const index = new ByteReader(decodeStoredBlock(this.readExactly(indexOffset, indexLength), `${what} index`), `${what} index`);
    this.blockCount = index.uint32();
    for (let block = 0; block < this.blockCount; block++) {
      this.lastKeys.push(index.lengthPrefixed());
      this.lastSequences.push(index.uint64());
      const offset = index.uint64();
      const length = index.uint32();
      if (offset + length > filterOffset) throw new PaxosStoreError('CORRUPTION', `${what}: index points past the data`);
      this.offsets.push(offset);
      this.lengths.push(length);
    }
    this.smallestKey = index.lengthPrefixed();
    if (!index.atEnd() || this.blockCount === 0) throw new PaxosStoreError('CORRUPTION', `${what}: malformed index`);
    this.largestKey = this.lastKeys[this.blockCount - 1];
  }

  static open(fileSystem: FileSystem, path: string, number: number, cache: BlockCache | null): Table {
    const handle = fileSystem.open(path, 'read');
    try {
      return new Table(handle, path, number, cache);
    } catch (error) {
      handle.close();
      throw error;
    }
  }

  private readExactly(position: number, length: number): Uint8Array {
    const buffer = new Uint8Array(length);
    if (this.handle.read(buffer, 0, length, position) !== length) {
      throw new PaxosStoreError('CORRUPTION', `table ${this.path}: short read at ${position}`);
    }
    return buffer;
  }

  /** The data block, verified; from the cache when there. */
  readBlock(index: number): Block {
    const cacheKey = BlockCache.keyOf(this.number, index);
    const cached = this.cache?.get(cacheKey);
    if (cached) return cached;
    const what = `table ${this.path} block ${index}`;
    const block = new Block(decodeStoredBlock(this.readExactly(this.offsets[index], this.lengths[index]), what), what);
    this.cache?.insert(cacheKey, block);
    return block;
  }

  /** First block whose last internal key is ≥ (key, sequence); blockCount when none. */
  findBlock(key: Uint8Array, sequence: number): number {
    let low = 0;
    let high = this.blockCount;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (compareInternal(this.lastKeys[middle], this.lastSequences[middle], key, sequence) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** The newest version of `key` with sequence ≤ `sequence`, if this table has one. */
  get(key: Uint8Array, keyHash: number, sequence: number): PointResult {
    if (!bloomMayContain(this.filter, keyHash)) return ABSENT;
    const iterator = new TableIterator(this);
    iterator.seek(key, sequence);
    if (!iterator.valid() || !equalBytes(iterator.key(), key)) return ABSENT;
    return iterator.isTombstone() ? DELETED : { kind: 'value', value: iterator.value() };
  }

  /** Hash used by `get`'s bloom check; computed once per point read and shared by all tables. */
  static hashKey(key: Uint8Array): number {
    return hash32(key);
  }

  close(): void {
    this.handle.close();
  }

  evictFromCache(): void {
    this.cache?.evictTable(this.number, this.blockCount);
  }
}

export class TableIterator implements InternalIterator {
  private blockIndex = -1;
  private block: Block | null = null;
  private entryIndex = 0;

  constructor(private readonly table: Table) {}

  valid(): boolean {
    return this.block !== null;
  }

  key(): Uint8Array {
    return this.block!.key(this.entryIndex);
  }

  sequence(): number {
    return this.block!.sequence(this.entryIndex);
  }

  isTombstone(): boolean {
    return this.block!.isTombstone(this.entryIndex);
  }

  value(): Uint8Array {
    return this.block!.value(this.entryIndex);
  }

  private load(blockIndex: number): boolean {
    if (blockIndex < 0 || blockIndex >= this.table.blockCount) {
      this.block = null;
      return false;
    }
    if (blockIndex !== this.blockIndex || this.block === null) this.block = this.table.readBlock(blockIndex);
    this.blockIndex = blockIndex;
    return true;
  }

  seek(key: Uint8Array, sequence: number): void {
    if (!this.load(this.table.findBlock(key, sequence))) return;
    this.entryIndex = this.block!.seek(key, sequence);
    if (this.entryIndex >= this.block!.count) this.toBlockStart(this.blockIndex + 1);
  }

  seekBefore(key: Uint8Array): void {
    const found = this.table.findBlock(key, Number.MAX_SAFE_INTEGER);
    if (found >= this.table.blockCount) {
      this.seekToLast();
      return;
    }
    this.load(found);
    this.entryIndex = this.block!.seekBefore(key);
    if (this.entryIndex < 0) this.toBlockEnd(found - 1);
  }

  seekToFirst(): void {
    this.toBlockStart(0);
  }

  seekToLast(): void {
    this.toBlockEnd(this.table.blockCount - 1);
  }

  next(): void {
    if (++this.entryIndex >= this.block!.count) this.toBlockStart(this.blockIndex + 1);
  }

  prev(): void {
    if (--this.entryIndex < 0) this.toBlockEnd(this.blockIndex - 1);
  }

  private toBlockStart(blockIndex: number): void {
    if (this.load(blockIndex)) this.entryIndex = 0;
  }

  private toBlockEnd(blockIndex: number): void {
    if (this.load(blockIndex)) this.entryIndex = this.block!.count - 1;
  }
}
