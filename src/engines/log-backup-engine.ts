/**
 * LogBackupEngine: the log is copied to a backup directory, in fixed segments, before it may be
 * trimmed, by whichever replica wins each segment; and a LocalStore can be rebuilt to any position
 * from a snapshot plus the segments after it (point-in-time restore).
 *
 * Coordination through the log itself: a replica proposes a bid for the lowest segment that is
 * fully applied, not backed up, and unowned (or whose bid expired); the first valid bid in log
 * order owns it (so owners are disjoint and every replica agrees). The owner reads the segment
 * from the log, writes it lz4-compressed to the backup FileSystem and proposes completion; the
 * trim prefix passed down never exceeds the end of the contiguous backed-up prefix.
 *
 * Bid expiry, in log positions (the same on every replica, unlike clocks): a bid applied at
 * position p owns the segment until position p + bidExpiryPositions; a bid applied at or after
 * that position takes the segment over. So an owner that dies before `done` delays the backup (and
 * the trim) by at most bidExpiryPositions log entries, bids included: a replica that keeps asking
 * for the segment moves the log forward itself. A `done` is accepted from any replica that
 * uploaded (an expired owner that was only slow writes the same file, atomically).
 *
 *   header backup = { bid: [segmentStart, replicaId] } | { done: segmentStart }
 *   LocalStore keys  E/backup/owner/<start 12 hex> → [replicaId, bidPosition]
 *                    E/backup/seg/<start 12 hex> → [1]  (done, beyond the contiguous prefix)
 *                    E/backup/done → [backedUpTo]     (segments below it: keys deleted)
 *
 *   segment file  <dir>/segment-<start 12 hex>-<end 12 hex>.lz4
 *   ┌──────────────────────────┬──────────────────────────────────────────────────────────┐
 *   │ u32 LE uncompressed size │ lz4 block of msgpackr [[position, entry bytes], …]       │
 *   └──────────────────────────┴──────────────────────────────────────────────────────────┘
 */
import { compressSync, uncompressSync } from 'lz4-napi';
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { LogRecord, VirtualLog } from '../log/virtual-log.js';
import type { OrderedKvEngine, ReadView } from '../storage/engine.js';
import type { FileSystem } from '../storage/file-system.js';
import { decodeEntry } from './base-engine.js';
import { LayeredEngine } from './layered-engine.js';
import { applyOutcome, StoreTransaction } from './transaction.js';
import type { IApplicator, IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'backup';
const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
const DONE_KEY = encoder.encode('E/backup/done');
const CURSOR_KEY = encoder.encode('E/cursor');

/** Where segments live. */
export interface BackupTarget {
  readonly fileSystem: FileSystem;
  readonly directory: string;
  /** Positions per segment. */
  readonly segmentPositions: number;
}

export interface BackupOptions extends BackupTarget {
  /** A bid not completed within this many log positions expires. Same value on every replica. */
  readonly bidExpiryPositions: number;
}

const PACKED_DONE_SEGMENT = packr.pack([1]);

const hex = (position: number): string => position.toString(16).padStart(12, '0');
const ownerKey = (start: number): Uint8Array => encoder.encode(`E/backup/owner/${hex(start)}`);
const segmentKey = (start: number): Uint8Array => encoder.encode(`E/backup/seg/${hex(start)}`);

export function segmentFileName(start: number, end: number): string {
  return `segment-${hex(start)}-${hex(end)}.lz4`;
}

export class LogBackupEngine extends LayeredEngine {
  private backedUpTo = 0;
  private allowedFromAbove = Number.POSITIVE_INFINITY;
  segmentsUploaded = 0;

  constructor(
    lower: IEngine,
    private readonly store: ReadView,
    private readonly replicaId: number,
    private readonly log: VirtualLog,
    private readonly appliedPosition: () => number,
    private readonly target: BackupOptions,
    private readonly deadline: () => number,
  ) {
    super(HEADER, lower, store, true);
    if (!(target.segmentPositions >= 1 && target.bidExpiryPositions >= 1)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', 'segmentPositions and bidExpiryPositions are at least 1');
    }
    const stored = store.get(DONE_KEY);
    if (stored !== undefined) this.backedUpTo = (packr.unpack(stored) as [number])[0];
    target.fileSystem.makeDirectory(target.directory);
    // Before any entry is applied, the layers below must already hold the trim at the backup.
    this.passTrimDown();
  }

  get backedUpPosition(): number {
    return this.backedUpTo;
  }

  override setTrimPrefix(position: number): void {
    this.allowedFromAbove = position;
    this.passTrimDown();
  }

  /**
   * Bids for the lowest complete, unowned segment; if this replica wins, uploads it and proposes
   * completion. Returns the segment start it backed up, or null when there was nothing to win.
   */
  async backUpOneSegment(): Promise<number | null> {
    const start = this.biddableSegment();
    if (start === null) return null;
    const won = await this.lower.propose({ headers: { [HEADER]: { bid: [start, this.replicaId] } }, body: null });
    if (won !== true) return null;
    const size = this.target.segmentPositions;
    const records = await this.log.readNext(start, start + size, this.deadline());
    const raw = packr.pack(records.map((record) => [record.position, record.data]));
    const compressed = compressSync(Buffer.from(raw));
    const file = new Uint8Array(4 + compressed.length);
    new DataView(file.buffer).setUint32(0, raw.length, true);
    file.set(compressed, 4);
    await this.target.fileSystem.writeFileAtomic(`${this.target.directory}/${segmentFileName(start, start + size)}`, file);
    await this.target.fileSystem.syncDirectory(this.target.directory);
    this.segmentsUploaded++;
    await this.lower.propose({ headers: { [HEADER]: { done: start } }, body: null });
    return start;
  }

  /** The lowest applied segment that is not backed up and has no live bid, as seen here now. */
  private biddableSegment(): number | null {
    const size = this.target.segmentPositions;
    const applied = this.appliedPosition();
    for (let start = this.backedUpTo; start + size <= applied; start += size) {
      if (this.store.get(segmentKey(start)) !== undefined) continue;
      const owner = this.store.get(ownerKey(start));
      if (owner === undefined || applied >= bidExpiry(owner, this.target.bidExpiryPositions)) return start;
    }
    return null;
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER] as { bid?: [number, number]; done?: number } | undefined;
    if (header?.bid !== undefined) return this.applyBid(transaction, header.bid, position);
    if (header?.done !== undefined) {
      this.applyDone(transaction, header.done);
      return null;
    }
    return this.applyUpper(transaction, entry, position);
  }

  private applyBid(transaction: Transaction, [start, bidder]: [number, number], position: number): boolean {
    if (start < this.backedUpTo || start % this.target.segmentPositions !== 0) return false;
    if (transaction.get(segmentKey(start)) !== undefined) return false;
    const owner = transaction.get(ownerKey(start));
    if (owner !== undefined && position < bidExpiry(owner, this.target.bidExpiryPositions)) return false;
    transaction.put(ownerKey(start), packr.pack([bidder, position]));
    return true;
  }

  private applyDone(transaction: Transaction, start: number): void {
    if (start < this.backedUpTo || start % this.target.segmentPositions !== 0) return;
    transaction.put(segmentKey(start), PACKED_DONE_SEGMENT);
    let next = this.backedUpTo;
    while (transaction.get(segmentKey(next)) !== undefined) {
      // Inside the contiguous prefix E/backup/done says it all: drop the per-segment keys.
      transaction.delete(segmentKey(next));
      transaction.delete(ownerKey(next));
      next += this.target.segmentPositions;
    }
    if (next !== this.backedUpTo) {
      this.backedUpTo = next;
      transaction.put(DONE_KEY, packr.pack([next]));
    }
  }

  override postApply(entry: StackEntry, position: number): void {
    this.passTrimDown();
    super.postApply(entry, position);
  }

  private passTrimDown(): void {
    this.lower.setTrimPrefix(Math.min(this.allowedFromAbove, this.backedUpTo));
  }
}

/** The first position at which a bid stored as [replicaId, bidPosition] no longer holds. */
function bidExpiry(owner: Uint8Array, bidExpiryPositions: number): number {
  const [, bidPosition] = packr.unpack(owner) as [number, number];
  return bidPosition + bidExpiryPositions;
}

/** Reads one segment file back (CORRUPTION when it is not one this code wrote). */
export function readSegment(fileSystem: FileSystem, path: string): LogRecord[] {
  const file = fileSystem.readFile(path);
  if (file.length < 4) throw new PaxosStoreError('CORRUPTION', `${path}: too short`);
  const size = new DataView(file.buffer, file.byteOffset, file.byteLength).getUint32(0, true);
  const raw = uncompressSync(Buffer.from(file.subarray(4)));
  if (raw.length !== size) throw new PaxosStoreError('CORRUPTION', `${path}: size mismatch`);
  return (packr.unpack(raw) as [number, Uint8Array][]).map(([position, data]) => ({ position, data: new Uint8Array(data) }));
}

/**
 * Point-in-time restore: `store` holds a snapshot of a LocalStore (with its E/cursor); applies
 * every backed-up entry from the cursor up to (not including) `toPosition` through `applicator`
 * (the same stack that produced the snapshot, above the engines whose state is in the store).
 * Returns the position reached; NOT_FOUND when a needed segment is missing from the backup.
 */
export async function restoreToPosition(store: OrderedKvEngine, target: BackupTarget, applicator: IApplicator, toPosition: number): Promise<number> {
  const storedCursor = store.get(CURSOR_KEY);
  let cursor = storedCursor === undefined ? 0 : (packr.unpack(storedCursor) as [number])[0];
  const files = new Map(
    target.fileSystem
      .list(target.directory)
      .filter((name) => name.startsWith('segment-'))
      .map((name) => [Number.parseInt(name.slice(8, 20), 16), name] as const),
  );
  while (cursor < toPosition) {
    const start = cursor - (cursor % target.segmentPositions);
    const name = files.get(start);
    if (name === undefined) throw new PaxosStoreError('NOT_FOUND', `no backup segment holds position ${cursor}`, { position: cursor });
    for (const record of readSegment(target.fileSystem, `${target.directory}/${name}`)) {
      if (record.position < cursor || record.position >= toPosition) continue;
      const transaction = new StoreTransaction(store);
      const entry = decodeEntry(record.data);
      // A deterministic exception rolled back the applicator's writes originally too.
      applyOutcome(transaction, (sub) => applicator.apply(sub, entry, record.position));
      const operations = transaction.operations();
      operations.push({ type: 'put', key: CURSOR_KEY, value: packr.pack([record.position + 1]) });
      await store.batch(operations);
      cursor = record.position + 1;
    }
    cursor = Math.min(toPosition, start + target.segmentPositions);
    await store.put(CURSOR_KEY, packr.pack([cursor]));
  }
  return cursor;
}
