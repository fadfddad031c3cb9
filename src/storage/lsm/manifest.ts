import { PaxosStoreError } from '../../errors.js';
import { crc32c } from '../crc32c.js';
import { ByteReader, ByteWriter } from './codec.js';
import type { TableMetadata } from './sstable.js';

/**
 * The manifest names the tree: which tables are live at which level, which WAL files still have
 * to be replayed, and the counters that must never go backwards. It is rewritten whole with
 * `writeFileAtomic` (temp file, fsync, rename, directory fsync) after every flush or compaction,
 * so a crash leaves either the old or the new manifest, and both describe a complete tree: a
 * table is created and synced before any manifest names it, and deleted only after a manifest
 * that no longer names it is durable.
 *
 *   +------------+------------+------------+----------------------------------------------+
 *   | magic u32  | length u32 | crc32c u32 | body (length bytes; the checksum covers it)  |
 *   +------------+------------+------------+----------------------------------------------+
 *   body:
 *   | format u32 | next table number u64 | next WAL number u64 | oldest WAL to replay u64 |
 *   | last sequence u64 | table count u32 | per table: level u8, number u64, size u64,     |
 *   | entry count u64, smallest key (u32 length + bytes), largest key (u32 length + bytes)  |
 */

export const MANIFEST_FILE_NAME = 'MANIFEST';
const MANIFEST_MAGIC = 0x4c534d4d; // "LSMM"
const FORMAT_VERSION = 1;

export interface ManifestTable {
  readonly level: number;
  readonly table: TableMetadata;
}

export interface ManifestState {
  readonly nextTableNumber: number;
  readonly nextWalNumber: number;
  /** WAL files numbered ≥ this one are replayed on open; older ones are obsolete. */
  readonly walNumberMin: number;
  /** Every sequence ≤ this one is in a table named below (or was superseded). */
  readonly lastSequence: number;
  readonly tables: readonly ManifestTable[];
}

export function encodeManifest(state: ManifestState): Uint8Array {
  const body = new ByteWriter(4096);
  body.uint32(FORMAT_VERSION);
  body.uint64(state.nextTableNumber);
  body.uint64(state.nextWalNumber);
  body.uint64(state.walNumberMin);
  body.uint64(state.lastSequence);
  body.uint32(state.tables.length);
  for (const { level, table } of state.tables) {
    body.uint8(level);
    body.uint64(table.number);
    body.uint64(table.sizeBytes);
    body.uint64(table.entryCount);
    body.lengthPrefixed(table.smallestKey);
    body.lengthPrefixed(table.largestKey);
  }
  const file = new ByteWriter(body.length + 12);
  file.uint32(MANIFEST_MAGIC);
  file.uint32(body.length);
  file.uint32(crc32c(body.bytes, 0, 0, body.length));
  file.raw(body.bytes.subarray(0, body.length));
  return file.finish();
}

export function decodeManifest(data: Uint8Array, what: string): ManifestState {
  const view = new DataView(data.buffer, data.byteOffset, data.length);
  if (data.length < 12 || view.getUint32(0) !== MANIFEST_MAGIC) throw new PaxosStoreError('CORRUPTION', `${what}: not a manifest`);
  const length = view.getUint32(4);
  if (12 + length !== data.length || crc32c(data, 0, 12, data.length) !== view.getUint32(8)) {
    throw new PaxosStoreError('CORRUPTION', `${what}: manifest checksum mismatch`);
  }
  const reader = new ByteReader(data.subarray(12), what);
  const format = reader.uint32();
  if (format !== FORMAT_VERSION) throw new PaxosStoreError('CORRUPTION', `${what}: unknown manifest format ${format}`);
  const nextTableNumber = reader.uint64();
  const nextWalNumber = reader.uint64();
  const walNumberMin = reader.uint64();
  const lastSequence = reader.uint64();
  const count = reader.uint32();
  const tables: ManifestTable[] = [];
  for (let index = 0; index < count; index++) {
    const level = reader.uint8();
    const number = reader.uint64();
    const sizeBytes = reader.uint64();
    const entryCount = reader.uint64();
    const smallestKey = reader.lengthPrefixed();
    const largestKey = reader.lengthPrefixed();
    tables.push({ level, table: { number, sizeBytes, entryCount, smallestKey, largestKey } });
  }
  if (!reader.atEnd()) throw new PaxosStoreError('CORRUPTION', `${what}: trailing bytes in manifest`);
  return { nextTableNumber, nextWalNumber, walNumberMin, lastSequence, tables };
}
