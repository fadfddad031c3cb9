import { crc32c } from '../crc32c.js';
import { KEY_BYTES_MAX } from '../engine.js';

/**
 * Hint file: the keydir entries of one sealed data file, so open does not reread the values.
 * Written when a data file is sealed (after its last bytes are durable) and by merge.
 *
 *   header (16 bytes)
 *   +-------------+-------------+-------------+------------------+
 *   | magic BKH1  | version = 1 | entry count | data file length |   u32 each, little endian
 *   +-------------+-------------+-------------+------------------+
 *   entries, in data-file order (replaying them in order rebuilds the file's keydir effect)
 *   +--------+--------------+------------+-------+-----------+
 *   | offset | record bytes | key length | flags | key bytes |   u32, u32, u32, u8
 *   +--------+--------------+------------+-------+-----------+
 *   trailer
 *   +------------------------------------------+
 *   | crc32c of everything before it (u32)     |
 *   +------------------------------------------+
 *
 * flags: 1 = tombstone. A hint that fails its checksum, or whose data file length differs from
 * the one recorded, is ignored and the data file is scanned instead.
 */

const MAGIC = 0x31484b42; // "BKH1" read as little endian u32
const VERSION = 1;
const HEADER_BYTES = 16;
const ENTRY_FIXED_BYTES = 13;
const TRAILER_BYTES = 4;
const HINT_TOMBSTONE = 1;

/** Accumulates hint entries as records are appended to the active file. */
export class HintBuilder {
  private buffer = new Uint8Array(4096);
  private used = HEADER_BYTES;
  private entries = 0;

  get entryCount(): number {
    return this.entries;
  }

  add(data: Uint8Array, keyStart: number, keyLength: number, offset: number, recordBytes: number, tombstone: boolean): void {
    const needed = ENTRY_FIXED_BYTES + keyLength;
    if (this.used + needed + TRAILER_BYTES > this.buffer.length) {
      const grown = new Uint8Array(Math.max(this.buffer.length * 2, this.used + needed + TRAILER_BYTES));
      grown.set(this.buffer.subarray(0, this.used));
      this.buffer = grown;
    }
    const buffer = this.buffer;
    const at = this.used;
    writeUint32(buffer, at, offset);
    writeUint32(buffer, at + 4, recordBytes);
    writeUint32(buffer, at + 8, keyLength);
    buffer[at + 12] = tombstone ? HINT_TOMBSTONE : 0;
    for (let i = 0; i < keyLength; i++) buffer[at + ENTRY_FIXED_BYTES + i] = data[keyStart + i];
    this.used += needed;
    this.entries++;
  }

  /** The finished hint file for a data file of `dataFileBytes` bytes. */
  finish(dataFileBytes: number): Uint8Array {
    const out = this.buffer.slice(0, this.used + TRAILER_BYTES);
    const view = new DataView(out.buffer);
    view.setUint32(0, MAGIC, true);
    view.setUint32(4, VERSION, true);
    view.setUint32(8, this.entries, true);
    view.setUint32(12, dataFileBytes, true);
    view.setUint32(this.used, crc32c(out, 0, 0, this.used), true);
    return out;
  }
}

function writeUint32(target: Uint8Array, position: number, value: number): void {
  target[position] = value;
  target[position + 1] = value >>> 8;
  target[position + 2] = value >>> 16;
  target[position + 3] = value >>> 24;
}

/** The entry count in a hint's header (unverified; used only to pre-size the keydir). */
export function hintEntryCount(hint: Uint8Array): number {
  if (hint.length < HEADER_BYTES) return 0;
  return new DataView(hint.buffer, hint.byteOffset, HEADER_BYTES).getUint32(8, true);
}

/** Same shape as ScanVisitor so hints and scans feed the keydir through one function. */
export type HintVisitor = (
  data: Uint8Array,
  keyStart: number,
  keyLength: number,
  offset: number,
  recordBytes: number,
  tombstone: boolean,
) => void;

/**
 * Validates a whole hint file (checksum, header, every entry in bounds) before visiting any
 * entry, so a bad hint leaves no half-applied state. Returns false when the hint is unusable.
 */
export function readHint(hint: Uint8Array, dataFileBytes: number, visit: HintVisitor): boolean {
  if (hint.length < HEADER_BYTES + TRAILER_BYTES) return false;
  const view = new DataView(hint.buffer, hint.byteOffset, hint.length);
  const bodyEnd = hint.length - TRAILER_BYTES;
  if (crc32c(hint, 0, 0, bodyEnd) !== view.getUint32(bodyEnd, true)) return false;
  if (view.getUint32(0, true) !== MAGIC || view.getUint32(4, true) !== VERSION) return false;
  if (view.getUint32(12, true) !== dataFileBytes) return false;
  const entryCount = view.getUint32(8, true);
  let position = HEADER_BYTES;
  for (let entry = 0; entry < entryCount; entry++) {
    if (position + ENTRY_FIXED_BYTES > bodyEnd) return false;
    const offset = view.getUint32(position, true);
    const recordBytes = view.getUint32(position + 4, true);
    const keyLength = view.getUint32(position + 8, true);
    if (keyLength > KEY_BYTES_MAX || position + ENTRY_FIXED_BYTES + keyLength > bodyEnd) return false;
    if (offset + recordBytes > dataFileBytes) return false;
    position += ENTRY_FIXED_BYTES + keyLength;
  }
  if (position !== bodyEnd) return false;
  position = HEADER_BYTES;
  for (let entry = 0; entry < entryCount; entry++) {
    const keyLength = view.getUint32(position + 8, true);
    const tombstone = (hint[position + 12] & HINT_TOMBSTONE) !== 0;
    visit(hint, position + ENTRY_FIXED_BYTES, keyLength, view.getUint32(position, true), view.getUint32(position + 4, true), tombstone);
    position += ENTRY_FIXED_BYTES + keyLength;
  }
  return true;
}
