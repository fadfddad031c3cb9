import { crc32c } from '../crc32c.js';

/**
 * File names in a Bitcask directory and the rule that makes merge crash safe.
 *
 *   0000000007.data / .hint             plain data file 7 (ids only grow; the highest is active)
 *   merge-0000000005-000000.data / .hint output 0 of the merge of everything up to plain id 5
 *   merge-0000000005.commit              commit marker of that merge (written atomically, last)
 *
 * The live set is: the outputs of the highest merge M that has a commit marker, in output
 * order, followed by the plain files with id > M in id order. Everything else is garbage left
 * by a crash: plain files ≤ M (already merged), outputs of other merges (older ones were merged
 * again; newer ones never committed), older markers, stray hints and `.tmp` files. A crash at
 * any step of a merge therefore leaves either the old live set or the new one.
 */

const ID_DIGITS = 10;
const OUTPUT_DIGITS = 6;
const PLAIN_PATTERN = /^(\d{10})\.(data|hint)$/;
const MERGE_PATTERN = /^merge-(\d{10})-(\d{6})\.(data|hint)$/;
const MARKER_PATTERN = /^merge-(\d{10})\.commit$/;

export function plainDataName(id: number): string {
  return `${String(id).padStart(ID_DIGITS, '0')}.data`;
}

export function mergeDataName(mergeId: number, output: number): string {
  return `merge-${String(mergeId).padStart(ID_DIGITS, '0')}-${String(output).padStart(OUTPUT_DIGITS, '0')}.data`;
}

export function markerName(mergeId: number): string {
  return `merge-${String(mergeId).padStart(ID_DIGITS, '0')}.commit`;
}

/** The hint file name that goes with a data file name. */
export function hintNameOf(dataName: string): string {
  return `${dataName.slice(0, -'.data'.length)}.hint`;
}

export interface DirectoryListing {
  plainIds: number[];
  /** merge id → output numbers present (data files). */
  mergeOutputs: Map<number, number[]>;
  markerIds: number[];
  hintNames: Set<string>;
  /** Names this engine does not recognise or that are leftovers (`.tmp`); the engine removes `.tmp` only. */
  temporaryNames: string[];
}

export function classifyNames(names: readonly string[]): DirectoryListing {
  const listing: DirectoryListing = { plainIds: [], mergeOutputs: new Map(), markerIds: [], hintNames: new Set(), temporaryNames: [] };
  for (const name of names) {
    let match = PLAIN_PATTERN.exec(name);
    if (match) {
      if (match[2] === 'data') listing.plainIds.push(Number(match[1]));
      else listing.hintNames.add(name);
      continue;
    }
    match = MERGE_PATTERN.exec(name);
    if (match) {
      if (match[3] === 'hint') {
        listing.hintNames.add(name);
        continue;
      }
      const mergeId = Number(match[1]);
      const outputs = listing.mergeOutputs.get(mergeId) ?? [];
      outputs.push(Number(match[2]));
      listing.mergeOutputs.set(mergeId, outputs);
      continue;
    }
    match = MARKER_PATTERN.exec(name);
    if (match) {
      listing.markerIds.push(Number(match[1]));
      continue;
    }
    if (name.endsWith('.tmp')) listing.temporaryNames.push(name);
  }
  listing.plainIds.sort((a, b) => a - b);
  listing.markerIds.sort((a, b) => a - b);
  for (const outputs of listing.mergeOutputs.values()) outputs.sort((a, b) => a - b);
  return listing;
}

/*
 * Commit marker content (16 bytes):
 *   +-------------+----------+--------------+---------------------+
 *   | magic BKM1  | merge id | output count | crc32c of the first 12 |   u32 each, little endian
 *   +-------------+----------+--------------+---------------------+
 */
const MARKER_MAGIC = 0x314d4b42; // "BKM1"
const MARKER_BYTES = 16;

export function encodeMarker(mergeId: number, outputCount: number): Uint8Array {
  const bytes = new Uint8Array(MARKER_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, MARKER_MAGIC, true);
  view.setUint32(4, mergeId, true);
  view.setUint32(8, outputCount, true);
  view.setUint32(12, crc32c(bytes, 0, 0, 12), true);
  return bytes;
}

/** The output count recorded in a marker, or -1 when the marker is damaged or for another merge. */
export function decodeMarker(bytes: Uint8Array, mergeId: number): number {
  if (bytes.length !== MARKER_BYTES) return -1;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (view.getUint32(0, true) !== MARKER_MAGIC || view.getUint32(4, true) !== mergeId) return -1;
  if (crc32c(bytes, 0, 0, 12) !== view.getUint32(12, true)) return -1;
  return view.getUint32(8, true);
}
