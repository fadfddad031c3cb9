import { PaxosStoreError } from '../../errors.js';
import { compareBytes } from '../engine.js';

/**
 * Byte-level helpers shared by every LSM file format (WAL records, data blocks, index, manifest),
 * and the one encoding of an LSM entry, used in the WAL, in data blocks and in the packed
 * memtable handed to a flush job.
 *
 * Entry (all integers big-endian):
 *
 *   +------+---------------------+------------+--------------+-----+-------+
 *   | kind | sequence            | key length | value length | key | value |
 *   | u8   | u64 (u32 hi, u32 lo)| u32        | u32          |     |       |
 *   +------+---------------------+------------+--------------+-----+-------+
 *    kind 1 = put, 2 = tombstone (value length 0)
 *
 * Entries are ordered by their internal key: user key ascending (bytewise), then sequence
 * descending, so the newest version of a key comes first. Sequences are unique per write.
 */

export const ENTRY_HEADER_BYTES = 17;
export const KIND_PUT = 1;
export const KIND_TOMBSTONE = 2;
export type EntryKind = typeof KIND_PUT | typeof KIND_TOMBSTONE;
/** Larger than any sequence ever assigned: "every version". */
export const SEQUENCE_MAX = Number.MAX_SAFE_INTEGER;
const TWO_TO_32 = 4294967296;

export function writeUint64(view: DataView, position: number, value: number): void {
  view.setUint32(position, Math.floor(value / TWO_TO_32));
  view.setUint32(position + 4, value >>> 0);
}

export function readUint64(view: DataView, position: number): number {
  return view.getUint32(position) * TWO_TO_32 + view.getUint32(position + 4);
}

export function entryBytes(keyLength: number, valueLength: number): number {
  return ENTRY_HEADER_BYTES + keyLength + valueLength;
}

/** Writes one entry at `position`; returns the position after it. */
export function writeEntry(
  target: Uint8Array,
  view: DataView,
  position: number,
  kind: EntryKind,
  sequence: number,
  key: Uint8Array,
  value: Uint8Array | null,
): number {
  const valueLength = value === null ? 0 : value.length;
  view.setUint8(position, kind);
  writeUint64(view, position + 1, sequence);
  view.setUint32(position + 9, key.length);
  view.setUint32(position + 13, valueLength);
  target.set(key, position + ENTRY_HEADER_BYTES);
  if (value !== null) target.set(value, position + ENTRY_HEADER_BYTES + key.length);
  return position + ENTRY_HEADER_BYTES + key.length + valueLength;
}

/** Compares internal keys: user key ascending, then sequence descending (newest first). */
export function compareInternal(keyA: Uint8Array, sequenceA: number, keyB: Uint8Array, sequenceB: number): number {
  const order = compareBytes(keyA, keyB);
  if (order !== 0) return order;
  return sequenceB - sequenceA;
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Smallest key greater than every key starting with `prefix`, or null when there is none (all 0xff). */
export function prefixSuccessor(prefix: Uint8Array): Uint8Array | null {
  for (let i = prefix.length - 1; i >= 0; i--) {
    if (prefix[i] !== 0xff) {
      const successor = prefix.slice(0, i + 1);
      successor[i]++;
      return successor;
    }
  }
  return null;
}

/** A growable buffer for building files and records. */
export class ByteWriter {
  bytes: Uint8Array;
  view: DataView;
  length = 0;

  constructor(capacity = 1024) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  reserve(extra: number): void {
    if (this.length + extra <= this.bytes.length) return;
    const grown = new Uint8Array(Math.max(this.bytes.length * 2, this.length + extra));
    grown.set(this.bytes.subarray(0, this.length));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  uint8(value: number): void {
    this.reserve(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
  }

  uint32(value: number): void {
    this.reserve(4);
    this.view.setUint32(this.length, value);
    this.length += 4;
  }

  uint64(value: number): void {
    this.reserve(8);
    writeUint64(this.view, this.length, value);
    this.length += 8;
  }

  raw(data: Uint8Array): void {
    this.reserve(data.length);
    this.bytes.set(data, this.length);
    this.length += data.length;
  }

  /** Length-prefixed (u32) bytes. */
  lengthPrefixed(data: Uint8Array): void {
    this.uint32(data.length);
    this.raw(data);
  }

  entry(kind: EntryKind, sequence: number, key: Uint8Array, value: Uint8Array | null): void {
    this.reserve(entryBytes(key.length, value === null ? 0 : value.length));
    this.length = writeEntry(this.bytes, this.view, this.length, kind, sequence, key, value);
  }

  reset(): void {
    this.length = 0;
  }

  /** A copy of the written bytes. */
  finish(): Uint8Array {
    return this.bytes.slice(0, this.length);
  }
}

/**
 * Bounds-checked reader for bytes that came from disk: every read past the end is CORRUPTION
 * (a checksum already passed, so a short structure means a bug or a forged checksum, never data).
 */
export class ByteReader {
  private readonly view: DataView;
  position = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }

  private need(count: number): void {
    if (this.position + count > this.bytes.length) {
      throw new PaxosStoreError('CORRUPTION', `${this.what}: truncated structure at byte ${this.position}`);
    }
  }

  uint8(): number {
    this.need(1);
    return this.view.getUint8(this.position++);
  }

  uint32(): number {
    this.need(4);
    const value = this.view.getUint32(this.position);
    this.position += 4;
    return value;
  }

  uint64(): number {
    this.need(8);
    const value = readUint64(this.view, this.position);
    this.position += 8;
    return value;
  }

  raw(length: number): Uint8Array {
    this.need(length);
    const data = this.bytes.slice(this.position, this.position + length);
    this.position += length;
    return data;
  }

  lengthPrefixed(): Uint8Array {
    return this.raw(this.uint32());
  }

  atEnd(): boolean {
    return this.position === this.bytes.length;
  }
}
