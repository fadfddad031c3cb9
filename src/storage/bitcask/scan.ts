import {
  DECODE_OK,
  FLAG_BATCH,
  FLAG_BATCH_BEGIN,
  FLAG_BATCH_COMMIT,
  FLAG_TOMBSTONE,
  batchCommitCount,
  decodeRecord,
  findNextRecord,
  newRecordView,
} from './record.js';

/**
 * Recovery scan of one data file: walks the records, applies batches only when their commit
 * marker arrives with the right count, skips corrupt regions that are followed by valid records
 * (media damage in the middle) and stops at a damaged tail (a torn write), reporting where the
 * valid data ends so the caller can cut the rest.
 */

/** One key change the scan found, in file order. `data` holds the key at [keyStart, keyStart+keyLength). */
export type ScanVisitor = (
  data: Uint8Array,
  keyStart: number,
  keyLength: number,
  offset: number,
  recordBytes: number,
  tombstone: boolean,
) => void;

export interface ScanResult {
  /** Length of the file once the damaged tail and any unfinished batch at the end are cut. */
  validEndBytes: number;
  /** Records applied (puts and tombstones; batch markers excluded). */
  recordsApplied: number;
  /** Whole records decoded but discarded: members of batches that never committed. */
  recordsDropped: number;
  /** Damaged regions skipped in the middle of the file. */
  corruptRegions: number;
  /** Bytes inside those skipped regions. */
  corruptBytes: number;
}

interface PendingRecord {
  offset: number;
  keyStart: number;
  keyLength: number;
  recordBytes: number;
  tombstone: boolean;
}

export function scanRecords(data: Uint8Array, end: number, valueBytesMax: number, visit: ScanVisitor): ScanResult {
  const view = newRecordView();
  const result: ScanResult = { validEndBytes: 0, recordsApplied: 0, recordsDropped: 0, corruptRegions: 0, corruptBytes: 0 };
  let pending: PendingRecord[] | null = null;
  let position = 0;
  while (position < end) {
    if (decodeRecord(data, position, end, valueBytesMax, view) !== DECODE_OK) {
      const next = findNextRecord(data, position + 1, end, valueBytesMax, view);
      if (next < 0) break;
      result.corruptRegions++;
      result.corruptBytes += next - position;
      position = next;
      continue;
    }
    const offset = position;
    position += view.totalBytes;
    const flags = view.flags;
    if ((flags & FLAG_BATCH_COMMIT) !== 0) {
      if (pending !== null && pending.length === batchCommitCount(data, view)) {
        for (const record of pending) {
          visit(data, record.keyStart, record.keyLength, record.offset, record.recordBytes, record.tombstone);
        }
        result.recordsApplied += pending.length;
      } else if (pending !== null) {
        result.recordsDropped += pending.length;
      }
      pending = null;
      result.validEndBytes = position;
      continue;
    }
    const tombstone = (flags & FLAG_TOMBSTONE) !== 0;
    if ((flags & FLAG_BATCH) !== 0) {
      const record: PendingRecord = { offset, keyStart: view.keyStart, keyLength: view.keyLength, recordBytes: view.totalBytes, tombstone };
      if ((flags & FLAG_BATCH_BEGIN) !== 0) {
        if (pending !== null) result.recordsDropped += pending.length;
        pending = [record];
      } else if (pending !== null) {
        pending.push(record);
      } else {
        result.recordsDropped++;
      }
      continue;
    }
    if (pending !== null) {
      result.recordsDropped += pending.length;
      pending = null;
    }
    visit(data, view.keyStart, view.keyLength, offset, view.totalBytes, tombstone);
    result.recordsApplied++;
    result.validEndBytes = position;
  }
  if (pending !== null) result.recordsDropped += pending.length;
  return result;
}
