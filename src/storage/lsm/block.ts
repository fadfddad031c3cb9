import { compressSync, uncompressSync } from 'lz4-napi';
import { PaxosStoreError } from '../../errors.js';
import { crc32c } from '../crc32c.js';
import { ByteWriter, ENTRY_HEADER_BYTES, type EntryKind, KIND_TOMBSTONE, readUint64 } from './codec.js';

/**
 * Data block: a run of entries (codec.ts) in internal-key order, followed by the offset of each
 * entry so a reader can binary-search without decoding the block:
 *
 *   +---------+---------+-----+---------+------------------------------+-------------+
 *   | entry 0 | entry 1 | ... | entry n | offset of entry 0..n (u32 ×) | count (u32) |
 *   +---------+---------+-----+---------+------------------------------+-------------+
 *
 * Stored block (every block of an SSTable — data, filter, index — is stored this way):
 *
 *   +------------------------------+-----------------+--------------------------------+
 *   | payload (raw or lz4 block)   | compression u8  | crc32c u32 of payload + byte   |
 *   +------------------------------+-----------------+--------------------------------+
 *    compression 0 = raw, 1 = lz4 (lz4-napi block format: u32 little-endian raw size, then data)
 *
 * lz4 is kept only when it saves at least 1/4 of the block. Decompressing a 4 KiB block costs
 * about as much as reading and checksumming it from the page cache, so a smaller saving makes
 * reads slower for little space; incompressible data (random values, already-compressed blobs,
 * short compressible keys next to random values) is stored raw.
 */

export const BLOCK_TRAILER_BYTES = 5;
const COMPRESSION_NONE = 0;
const COMPRESSION_LZ4 = 1;

/** Wraps a payload with the stored-block trailer, compressing it when that pays. */
export function encodeStoredBlock(payload: Uint8Array, compress: boolean): Uint8Array {
  let body = payload;
  let compression = COMPRESSION_NONE;
  if (compress && payload.length >= 64) {
    const compressed = compressSync(Buffer.from(payload.buffer, payload.byteOffset, payload.length));
    if (compressed.length <= payload.length - (payload.length >>> 2)) {
      body = compressed;
      compression = COMPRESSION_LZ4;
    }
  }
  const stored = new Uint8Array(body.length + BLOCK_TRAILER_BYTES);
  stored.set(body, 0);
  stored[body.length] = compression;
  new DataView(stored.buffer).setUint32(body.length + 1, crc32c(stored, 0, 0, body.length + 1));
  return stored;
}

/** Verifies the checksum and returns the payload (decompressed). Never returns unverified bytes. */
export function decodeStoredBlock(stored: Uint8Array, what: string): Uint8Array {
  if (stored.length < BLOCK_TRAILER_BYTES) throw new PaxosStoreError('CORRUPTION', `${what}: block shorter than its trailer`);
  const bodyLength = stored.length - BLOCK_TRAILER_BYTES;
  const view = new DataView(stored.buffer, stored.byteOffset, stored.length);
  if (crc32c(stored, 0, 0, bodyLength + 1) !== view.getUint32(bodyLength + 1)) {
    throw new PaxosStoreError('CORRUPTION', `${what}: block checksum mismatch`);
  }
  const compression = stored[bodyLength];
  if (compression === COMPRESSION_NONE) return stored.subarray(0, bodyLength);
  if (compression === COMPRESSION_LZ4) {
    try {
      const payload = uncompressSync(stored.subarray(0, bodyLength));
      // A plain view, not the Buffer: Buffer#subarray is several times slower on the read path.
      return new Uint8Array(payload.buffer, payload.byteOffset, payload.length);
    } catch (error) {
      throw new PaxosStoreError('CORRUPTION', `${what}: lz4 payload does not decompress`, undefined, { cause: error });
    }
  }
  throw new PaxosStoreError('CORRUPTION', `${what}: unknown compression ${compression}`);
}

/** Accumulates entries of one data block. */
export class BlockBuilder {
  private readonly writer = new ByteWriter(8192);
  private offsets: number[] = [];

  add(kind: EntryKind, sequence: number, key: Uint8Array, value: Uint8Array | null): void {
    this.offsets.push(this.writer.length);
    this.writer.entry(kind, sequence, key, value);
  }

  get entryCount(): number {
    return this.offsets.length;
  }

  /** Bytes the finished payload would take. */
  get sizeBytes(): number {
    return this.writer.length + 4 * this.offsets.length + 4;
  }

  finish(): Uint8Array {
    for (const offset of this.offsets) this.writer.uint32(offset);
    this.writer.uint32(this.offsets.length);
    const payload = this.writer.finish();
    this.writer.reset();
    this.offsets = [];
    return payload;
  }
}

/**
 * A decoded data block. Accessors read in place; `compareKeyAt` compares without allocating,
 * which keeps seeks cheap. Structural sanity (offsets inside the block, lengths in bounds) is
 * checked once when the block is decoded, so accessors can trust it.
 */
export class Block {
  readonly count: number;
  private readonly view: DataView;
  private readonly offsetsPosition: number;

  constructor(
    readonly bytes: Uint8Array,
    what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const corrupt = (why: string) => new PaxosStoreError('CORRUPTION', `${what}: ${why}`);
    if (bytes.length < 4) throw corrupt('block too short');
    this.count = this.view.getUint32(bytes.length - 4);
    this.offsetsPosition = bytes.length - 4 - 4 * this.count;
    if (this.offsetsPosition < 0) throw corrupt('entry count exceeds block');
    let expected = 0;
    for (let index = 0; index < this.count; index++) {
      const offset = this.view.getUint32(this.offsetsPosition + 4 * index);
      if (offset !== expected || offset + ENTRY_HEADER_BYTES > this.offsetsPosition) throw corrupt('bad entry offset');
      expected = offset + ENTRY_HEADER_BYTES + this.view.getUint32(offset + 9) + this.view.getUint32(offset + 13);
      if (expected > this.offsetsPosition) throw corrupt('entry overruns block');
    }
    if (expected !== this.offsetsPosition) throw corrupt('entries do not fill block');
  }

  offsetOf(index: number): number {
    return this.view.getUint32(this.offsetsPosition + 4 * index);
  }

  isTombstone(index: number): boolean {
    return this.bytes[this.offsetOf(index)] === KIND_TOMBSTONE;
  }

  sequence(index: number): number {
    return readUint64(this.view, this.offsetOf(index) + 1);
  }

  key(index: number): Uint8Array {
    const offset = this.offsetOf(index);
    const start = offset + ENTRY_HEADER_BYTES;
    return this.bytes.subarray(start, start + this.view.getUint32(offset + 9));
  }

  value(index: number): Uint8Array {
    const offset = this.offsetOf(index);
    const start = offset + ENTRY_HEADER_BYTES + this.view.getUint32(offset + 9);
    return this.bytes.subarray(start, start + this.view.getUint32(offset + 13));
  }

  /** Bytewise comparison of entry `index`'s user key with `key`, without allocating. */
  compareKeyAt(index: number, key: Uint8Array): number {
    const offset = this.offsetOf(index);
    const keyLength = this.view.getUint32(offset + 9);
    const start = offset + ENTRY_HEADER_BYTES;
    const bytes = this.bytes;
    const length = Math.min(keyLength , key.length);
    for (let i = 0; i < length; i++) {
      const difference = bytes[start + i] - key[i];
      if (difference !== 0) return difference;
    }
    return keyLength - key.length;
  }

  /** Index of the first entry whose internal key is ≥ (key, sequence); `count` when none. */
  seek(key: Uint8Array, sequence: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      const order = this.compareKeyAt(middle, key);
      if (order < 0 || (order === 0 && this.sequence(middle) > sequence)) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Index of the last entry whose user key is < key; -1 when none. */
  seekBefore(key: Uint8Array): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.compareKeyAt(middle, key) < 0) low = middle + 1;
      else high = middle;
    }
    return low - 1;
  }
}
