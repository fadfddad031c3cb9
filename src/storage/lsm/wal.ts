import { PaxosStoreError } from '../../errors.js';
import { crc32c } from '../crc32c.js';
import { ByteWriter, ENTRY_HEADER_BYTES, type EntryKind, KIND_PUT, KIND_TOMBSTONE, readUint64 } from './codec.js';

/**
 * Write-ahead log. One record per committed write call (a put, a delete or a whole batch), so a
 * batch is atomic on recovery: its record's checksum either verifies or the record is dropped.
 *
 *   +-------------+-------------+--------------------------------------------------------+
 *   | crc32c u32  | length u32  | payload (length bytes)                                 |
 *   +-------------+-------------+--------------------------------------------------------+
 *                  \_____________________ checksummed ___________________________________/
 *   payload:
 *   +-------------+---------+---------+-----+
 *   | count u32   | entry 0 | entry 1 | ... |   entries as in codec.ts (kind, sequence, key, value)
 *   +-------------+---------+---------+-----+
 *
 * Group commit appends the records of many callers with one write and makes them durable with
 * one fdatasync. On open, the log is read up to the first record that is short or fails its
 * checksum: that is a torn or corrupt tail (a crash in the middle of an append); it and
 * everything after it is dropped and reported, never applied.
 */

export const WAL_HEADER_BYTES = 8;

export interface WalEntry {
  readonly kind: EntryKind;
  readonly sequence: number;
  readonly key: Uint8Array;
  readonly value: Uint8Array | null;
}

export function walFileName(number: number): string {
  return `${String(number).padStart(6, '0')}.wal`;
}

/** Encodes one record holding `entries` (already validated by the caller). */
export function encodeWalRecord(entries: readonly WalEntry[]): Uint8Array {
  const writer = new ByteWriter(256);
  writer.uint32(0);
  writer.uint32(0);
  writer.uint32(entries.length);
  for (const entry of entries) writer.entry(entry.kind, entry.sequence, entry.key, entry.value);
  writer.view.setUint32(4, writer.length - WAL_HEADER_BYTES);
  writer.view.setUint32(0, crc32c(writer.bytes, 0, 4, writer.length));
  return writer.finish();
}

export interface WalReadResult {
  readonly records: WalEntry[][];
  /** Bytes of whole, verified records. */
  readonly validBytes: number;
  /** Bytes after the last valid record (a torn or corrupt tail). */
  readonly droppedBytes: number;
}

export function readWal(data: Uint8Array, what: string): WalReadResult {
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  const records: WalEntry[][] = [];
  let position = 0;
  while (position + WAL_HEADER_BYTES <= data.length) {
    const length = view.getUint32(position + 4);
    const end = position + WAL_HEADER_BYTES + length;
    if (end > data.length || crc32c(data, 0, position + 4, end) !== view.getUint32(position)) break;
    records.push(decodePayload(data, view, position + WAL_HEADER_BYTES, end, `${what} at ${position}`));
    position = end;
  }
  return { records, validBytes: position, droppedBytes: data.length - position };
}

/** A payload whose checksum verified but whose structure is wrong is corruption, not a torn tail. */
function decodePayload(data: Uint8Array, view: DataView, start: number, end: number, what: string): WalEntry[] {
  const corrupt = () => new PaxosStoreError('CORRUPTION', `${what}: malformed WAL record`);
  if (start + 4 > end) throw corrupt();
  const count = view.getUint32(start);
  const entries: WalEntry[] = [];
  let position = start + 4;
  for (let index = 0; index < count; index++) {
    if (position + ENTRY_HEADER_BYTES > end) throw corrupt();
    const kind = data[position];
    const sequence = readUint64(view, position + 1);
    const keyLength = view.getUint32(position + 9);
    const valueLength = view.getUint32(position + 13);
    const keyStart = position + ENTRY_HEADER_BYTES;
    const valueStart = keyStart + keyLength;
    position = valueStart + valueLength;
    if (position > end || (kind !== KIND_PUT && kind !== KIND_TOMBSTONE)) throw corrupt();
    entries.push({
      kind,
      sequence,
      key: data.slice(keyStart, valueStart),
      value: kind === KIND_PUT ? data.slice(valueStart, position) : null,
    });
  }
  if (position !== end) throw corrupt();
  return entries;
}
