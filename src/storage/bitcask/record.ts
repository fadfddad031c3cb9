import { assert } from '../../util/assert.js';
import { crc32c } from '../crc32c.js';
import { KEY_BYTES_MAX } from '../engine.js';

/**
 * The Bitcask data record, the only thing a data file contains. Records are position
 * independent (no pointer into the file), so merge can copy them byte for byte.
 *
 *   0        4                 12           16             20      21         24
 *   +--------+-----------------+------------+--------------+-------+----------+-----+-------+
 *   | crc32c | timestamp ms    | key length | value length | flags | reserved | key | value |
 *   | u32    | u64 (lo, hi u32)| u32        | u32          | u8    | 3 × 0    |     |       |
 *   +--------+-----------------+------------+--------------+-------+----------+-----+-------+
 *   all integers little endian; the checksum covers bytes [4, end of value).
 *
 * Flags:
 *   TOMBSTONE     the key was deleted (value length 0).
 *   BATCH         the record belongs to an atomic batch; recovery applies it only once the
 *                 batch's COMMIT marker is read and the record count matches.
 *   BATCH_BEGIN   first record of a batch (also BATCH); resets any unfinished batch.
 *   BATCH_COMMIT  the batch's commit marker: key length 0, value = u32 record count.
 *
 * A batch is appended with one write, so after a crash its records are either all there with
 * the marker, or the tail was torn somewhere inside and recovery drops the whole batch.
 */

export const RECORD_HEADER_BYTES = 24;
export const FLAG_TOMBSTONE = 1;
export const FLAG_BATCH = 2;
export const FLAG_BATCH_BEGIN = 4;
export const FLAG_BATCH_COMMIT = 8;
const FLAGS_KNOWN = FLAG_TOMBSTONE | FLAG_BATCH | FLAG_BATCH_BEGIN | FLAG_BATCH_COMMIT;
const TWO_TO_32 = 4294967296;

export function recordBytes(keyLength: number, valueLength: number): number {
  return RECORD_HEADER_BYTES + keyLength + valueLength;
}

/** Writes one record at `position` of `target` (which must have room) and returns its length. */
export function writeRecord(
  target: Uint8Array,
  position: number,
  key: Uint8Array,
  value: Uint8Array | null,
  flags: number,
  timestampMs: number,
): number {
  const valueLength = value === null ? 0 : value.length;
  const total = recordBytes(key.length, valueLength);
  assert(position + total <= target.length, 'record target too small');
  writeUint32(target, position + 4, timestampMs % TWO_TO_32);
  writeUint32(target, position + 8, Math.floor(timestampMs / TWO_TO_32));
  writeUint32(target, position + 12, key.length);
  writeUint32(target, position + 16, valueLength);
  target[position + 20] = flags;
  target[position + 21] = 0;
  target[position + 22] = 0;
  target[position + 23] = 0;
  copyInto(target, position + RECORD_HEADER_BYTES, key);
  if (value !== null) copyInto(target, position + RECORD_HEADER_BYTES + key.length, value);
  writeUint32(target, position, crc32c(target, 0, position + 4, position + total));
  return total;
}

function writeUint32(target: Uint8Array, position: number, value: number): void {
  target[position] = value & 0xff;
  target[position + 1] = (value >>> 8) & 0xff;
  target[position + 2] = (value >>> 16) & 0xff;
  target[position + 3] = (value >>> 24) & 0xff;
}

/** `target.set(source, at)`, but a plain loop for short arrays, where `set`'s fixed cost dominates (keys, small values). */
function copyInto(target: Uint8Array, at: number, source: Uint8Array): void {
  if (source.length > 64) {
    target.set(source, at);
    return;
  }
  for (let i = 0; i < source.length; i++) target[at + i] = source[i];
}

/** Rewrites the flags of a record in place and refreshes its checksum (merge strips batch flags). */
export function rewriteRecordFlags(target: Uint8Array, position: number, total: number, flags: number): void {
  target[position + 20] = flags;
  const view = new DataView(target.buffer, target.byteOffset + position, 4);
  view.setUint32(0, crc32c(target, 0, position + 4, position + total), true);
}

/** What `decodeRecord` found; fields are valid only when the status is OK. */
export interface RecordView {
  keyStart: number;
  keyLength: number;
  valueStart: number;
  valueLength: number;
  flags: number;
  timestampMs: number;
  totalBytes: number;
}

export const DECODE_OK = 0;
/** The header or the body runs past the end of the available bytes (a torn tail, or a bad length). */
export const DECODE_TRUNCATED = 1;
/** Impossible header fields or a checksum mismatch. */
export const DECODE_CORRUPT = 2;
export type DecodeStatus = typeof DECODE_OK | typeof DECODE_TRUNCATED | typeof DECODE_CORRUPT;

export function newRecordView(): RecordView {
  return { keyStart: 0, keyLength: 0, valueStart: 0, valueLength: 0, flags: 0, timestampMs: 0, totalBytes: 0 };
}

function readUint32(data: Uint8Array, position: number): number {
  return (data[position] | (data[position + 1] << 8) | (data[position + 2] << 16) | (data[position + 3] << 24)) >>> 0;
}

/**
 * Parses and verifies the record at `data[position, end)`, filling `out`. Never trusts a length
 * before checking it against the limits and the bytes available, and always checks the CRC.
 */
export function decodeRecord(data: Uint8Array, position: number, end: number, valueBytesMax: number, out: RecordView): DecodeStatus {
  if (end - position < RECORD_HEADER_BYTES) return DECODE_TRUNCATED;
  const keyLength = readUint32(data, position + 12);
  const valueLength = readUint32(data, position + 16);
  const flags = data[position + 20];
  if (keyLength > KEY_BYTES_MAX || valueLength > valueBytesMax || (flags & ~FLAGS_KNOWN) !== 0) return DECODE_CORRUPT;
  if ((data[position + 21] | data[position + 22] | data[position + 23]) !== 0) return DECODE_CORRUPT;
  const total = RECORD_HEADER_BYTES + keyLength + valueLength;
  if (end - position < total) return DECODE_TRUNCATED;
  if (crc32c(data, 0, position + 4, position + total) !== readUint32(data, position)) return DECODE_CORRUPT;
  out.keyStart = position + RECORD_HEADER_BYTES;
  out.keyLength = keyLength;
  out.valueStart = out.keyStart + keyLength;
  out.valueLength = valueLength;
  out.flags = flags;
  out.timestampMs = readUint32(data, position + 4) + readUint32(data, position + 8) * TWO_TO_32;
  out.totalBytes = total;
  return DECODE_OK;
}

/** Reads the u32 count carried by a BATCH_COMMIT marker. */
export function batchCommitCount(data: Uint8Array, view: RecordView): number {
  return view.valueLength === 4 ? readUint32(data, view.valueStart) : -1;
}

/** Encodes the u32 count of a BATCH_COMMIT marker. */
export function encodeBatchCount(count: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, count, true);
  return bytes;
}

/**
 * Finds the next offset in `(from, end)` where a whole record verifies; -1 when none does.
 * Used after a corrupt record: if nothing valid follows, the damage is a torn tail and is cut;
 * if something does, the damage was in the middle (media corruption) and only the bad bytes
 * are skipped, so durable records after it are not thrown away.
 */
export function findNextRecord(data: Uint8Array, from: number, end: number, valueBytesMax: number, out: RecordView): number {
  for (let position = from; position + RECORD_HEADER_BYTES <= end; position++) {
    if (decodeRecord(data, position, end, valueBytesMax, out) === DECODE_OK) return position;
  }
  return -1;
}
