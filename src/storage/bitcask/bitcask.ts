import { Piscina } from 'piscina';
import { PaxosStoreError, fromSystemError } from '../../errors.js';
import { assert } from '../../util/assert.js';
import { workerFilePath } from '../../util/worker-path.js';
import { type EngineStats, type KvEngine, VALUE_BYTES_MAX_DEFAULT, type WriteOperation, validateWrite } from '../engine.js';
import { type FileHandle, type FileSystem, joinPath } from '../file-system.js';
import { RealFileSystem } from '../real-file-system.js';
import { HintBuilder, hintEntryCount, readHint } from './hint.js';
import { Keydir, type KeydirLocation, hashKey, newLocation } from './keydir.js';
import { type DirectoryListing, classifyNames, decodeMarker, encodeMarker, hintNameOf, markerName, mergeDataName, plainDataName } from './layout.js';
import { type MergeJob, type MergeOutcome, type MergeReply, runMergeReply } from './merge.js';
import {
  DECODE_OK,
  FLAG_BATCH,
  FLAG_BATCH_BEGIN,
  FLAG_BATCH_COMMIT,
  FLAG_TOMBSTONE,
  RECORD_HEADER_BYTES,
  decodeRecord,
  encodeBatchCount,
  newRecordView,
  recordBytes,
  writeRecord,
} from './record.js';
import { scanRecords } from './scan.js';

/**
 * Bitcask (DESIGN.md §3): append-only data files, an in-memory keydir pointing at each key's
 * latest record, hint files for fast restart, background merge, and group commit.
 *
 *   put/delete/batch ──► encode into the pending buffer ──► keydir points at the record
 *                                   │                        (reads see it at once, from the
 *                                   │                         buffer until it is appended)
 *                                   ▼
 *                       commit group: right before the group's fdatasync the whole buffer
 *                       goes to the active file with ONE append; every write of the group
 *                       shares that sync and the callers' promises resolve when it completes.
 *                       At most one sync is in flight; later writes form the next group.
 *
 * Reads-your-writes before durability: a get sees a write as soon as it is encoded, before its
 * promise resolves. That is fine for the engine's one user (the shard's Paxos acceptor, which
 * replies only after the promise resolves); it is documented in docs/bitcask.md.
 *
 * Failures: an append that fails with ENOSPC writes nothing (the file layer cuts a partial
 * write); the keydir changes of the records in that append are undone and exactly their callers
 * get NO_SPACE, and later writes may succeed. A failed fdatasync leaves
 * the page cache in an unknown state (the "fsyncgate" lesson), so the engine stops accepting
 * writes (IO_ERROR), keeps serving reads, and recovers on the next open by checksum.
 */

export interface BitcaskOptions {
  directory: string;
  /** Default: the real disk. */
  fileSystem?: FileSystem;
  /** The active file is sealed and a new one started when a record would pass this. Default 64 MiB. */
  fileSizeBytesMax?: number;
  /** Values above this are refused with VALUE_TOO_LARGE. Default VALUE_BYTES_MAX_DEFAULT (16 MiB). */
  valueBytesMax?: number;
  /** Encoded size limit of one batch (REQUEST_TOO_LARGE above it). Default 64 MiB. */
  batchBytesMax?: number;
  /** Extra wait before a sync starts so more writes join the group. Default 0 (the group is what arrives in the same turn of the event loop). */
  groupCommitDelayUs?: number;
  /** Writes allowed to wait for the next sync; beyond it writes are refused with OVERLOADED. Default 65536. */
  groupCommitWritesMax?: number;
  /** Automatic merge starts when dead bytes / sealed bytes reaches this. Default 0.5; Infinity disables it. */
  mergeTriggerDeadRatio?: number;
  /** …and at least this many sealed bytes are dead. Default: fileSizeBytesMax. */
  mergeTriggerDeadBytesMin?: number;
  /** Where merge runs: a piscina worker thread (default on the real disk) or inline (default otherwise; the simulated disk lives in this thread). */
  mergeExecution?: 'worker' | 'inline';
  /** Record timestamps. Default Date.now. */
  clock?: () => number;
}

/** What open found and repaired. */
export interface BitcaskRecovery {
  dataFilesLoaded: number;
  hintsUsed: number;
  /** Hints present but unusable (bad checksum or length); their data files were scanned. */
  hintsRejected: number;
  filesScanned: number;
  /** Whole records decoded but discarded: members of batches without a valid commit marker. */
  recordsDropped: number;
  /** Damaged regions skipped in the middle of files (their bytes stay; reads of them throw CORRUPTION). */
  corruptRegions: number;
  corruptBytes: number;
  /** Bytes cut from the ends of files (torn tails, unfinished batches). */
  bytesTruncated: number;
  /** Files left by an interrupted merge or rotation and removed. */
  garbageFilesRemoved: number;
}

export interface MergeSummary {
  /** False when there was nothing eligible (no sealed, durable data file since the last merge). */
  merged: boolean;
  inputFiles: number;
  outputFiles: number;
  bytesBefore: number;
  bytesAfter: number;
  recordsCopied: number;
}

const MIB = 1024 * 1024;
const FILE_SIZE_BYTES_MAX_DEFAULT = 64 * MIB;
const FILE_SIZE_BYTES_LIMIT = 2 * 1024 * MIB;
const VALUE_BYTES_LIMIT = 1024 * MIB;
const BATCH_BYTES_MAX_DEFAULT = 64 * MIB;
const GROUP_COMMIT_WRITES_MAX_DEFAULT = 65536;
const MERGE_TRIGGER_DEAD_RATIO_DEFAULT = 0.5;

interface DataFile {
  /** Internal number used in the keydir; never reused within a process. */
  readonly number: number;
  readonly name: string;
  /** Plain file id, or -1 for a merge output. */
  readonly plainId: number;
  handle: FileHandle;
  bytes: number;
  liveBytes: number;
  /** True once every byte is durable (sealed and synced); only such files are merged. */
  durable: boolean;
  /** Entries so far, for the active file only. */
  hint: HintBuilder | null;
}

/** One group commit: the writes appended before its sync started. */
class CommitGroup {
  writes = 0;
  readonly handles = new Set<FileHandle>();
  directorySync = false;
  readonly sealed: { file: DataFile; hint: Uint8Array }[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (error: Error) => void;

  constructor() {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
    // A group may have no caller awaiting it (e.g. a rotation-only group); its rejection is
    // delivered to the callers that do await it and must not crash the process otherwise.
    this.done.catch(() => {});
  }
}

/**
 * The callers whose records were encoded into the pending buffer since its last append. Once
 * the append succeeds they wait for their group's sync; if it fails they are rejected.
 */
class PendingSegment {
  writes = 0;
  readonly done: Promise<void>;
  resolve!: (value: Promise<void>) => void;
  reject!: (error: Error) => void;

  constructor(readonly group: CommitGroup) {
    this.done = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }
}

/** Fields per pending record in the undo log: buffer position, key length, record bytes, tombstone, previous file number (0 = key was absent), previous offset, previous record bytes. */
const UNDO_FIELDS = 7;
const UNDO_LOG_INITIAL_FIELDS = UNDO_FIELDS * 256;
const UNDO_LOG_RETAINED_FIELDS_MAX = UNDO_FIELDS * 8192;
const PENDING_INITIAL_BYTES = 64 * 1024;
/** A pending buffer this large is appended at once instead of waiting for the sync (bounds memory and the size of one write). */
const PENDING_FLUSH_BYTES = 1024 * 1024;
/** After an append, a buffer grown past this (by a large value or batch) is replaced by a small one. */
const PENDING_RETAINED_BYTES_MAX = 4 * 1024 * 1024;
const EMPTY_KEY = new Uint8Array(0);

let sharedMergePool: Piscina | null = null;

function mergePool(): Piscina {
  sharedMergePool ??= new Piscina({
    filename: workerFilePath(import.meta.url, './merge-worker.js'),
    minThreads: 0,
    maxThreads: 1,
    idleTimeout: 1000,
  });
  return sharedMergePool;
}

/** Stops the merge worker thread (tests and shutdown); a later merge starts a new one. */
export async function closeMergePool(): Promise<void> {
  const pool = sharedMergePool;
  sharedMergePool = null;
  if (pool) await pool.destroy();
}

function positiveOption(value: number | undefined, fallback: number, limit: number, name: string): number {
  const resolved = value ?? fallback;
  if (typeof resolved !== 'number' || !Number.isInteger(resolved) || resolved <= 0 || resolved > limit) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `${name} must be an integer in [1, ${limit}], got ${String(value)}`);
  }
  return resolved;
}

export class Bitcask implements KvEngine {
  private readonly fileSystem: FileSystem;
  private readonly directory: string;
  private readonly fileSizeBytesMax: number;
  private readonly valueBytesMax: number;
  private readonly batchBytesMax: number;
  private readonly groupCommitDelayUs: number;
  private readonly groupCommitWritesMax: number;
  private readonly mergeTriggerDeadRatio: number;
  private readonly mergeTriggerDeadBytesMin: number;
  private readonly mergeExecution: 'worker' | 'inline';
  private readonly clock: () => number;

  private readonly keydir = new Keydir(1024);
  private readonly files = new Map<number, DataFile>();
  /** Sealed files in replay order: outputs of the last merge, then plain files by id. */
  private sealed: DataFile[] = [];
  private active!: DataFile;
  private nextFileNumber = 1;
  private nextPlainId = 1;
  /** Id of the last committed merge (0 when none). */
  private mergeId = 0;
  /** A merge whose commit marker write failed; its id must not be reused in this process. */
  private mergeIdAbandoned = 0;

  private forming: CommitGroup | null = null;
  private syncing: CommitGroup | null = null;
  private syncScheduled = false;
  private writeFailure: PaxosStoreError | null = null;
  private closing = false;
  private closed = false;
  private merging: Promise<MergeSummary> | null = null;
  private readonly background = new Set<Promise<void>>();

  /** Encoded records of the active file not yet appended to it (see "the pending append"). */
  private pending = new Uint8Array(PENDING_INITIAL_BYTES);
  private pendingLength = 0;
  private pendingLog = new Float64Array(UNDO_LOG_INITIAL_FIELDS);
  private pendingEntries = 0;
  private segment: PendingSegment | null = null;

  private readBuffer = new Uint8Array(64 * 1024);
  private readonly recordView = newRecordView();
  private readonly previous: KeydirLocation = newLocation();

  readonly recovery: BitcaskRecovery = {
    dataFilesLoaded: 0,
    hintsUsed: 0,
    hintsRejected: 0,
    filesScanned: 0,
    recordsDropped: 0,
    corruptRegions: 0,
    corruptBytes: 0,
    bytesTruncated: 0,
    garbageFilesRemoved: 0,
  };
  private readonly counters = {
    /** Writes accepted (encoded and indexed); `writesWithdrawn` of them were undone when their append failed. */
    writes: 0,
    writesWithdrawn: 0,
    syncs: 0,
    rotations: 0,
    merges: 0,
    mergeFailures: 0,
    mergeBytesReclaimed: 0,
    hintWriteFailures: 0,
  };
  /** The last background merge failure, for operators (stats carry only numbers). */
  lastMergeError: PaxosStoreError | null = null;

  private constructor(options: BitcaskOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new PaxosStoreError('INVALID_ARGUMENT', 'directory must be a non-empty string');
    }
    this.directory = options.directory;
    this.fileSystem = options.fileSystem ?? new RealFileSystem();
    this.fileSizeBytesMax = positiveOption(options.fileSizeBytesMax, FILE_SIZE_BYTES_MAX_DEFAULT, FILE_SIZE_BYTES_LIMIT, 'fileSizeBytesMax');
    this.valueBytesMax = positiveOption(options.valueBytesMax, VALUE_BYTES_MAX_DEFAULT, VALUE_BYTES_LIMIT, 'valueBytesMax');
    this.batchBytesMax = positiveOption(options.batchBytesMax, BATCH_BYTES_MAX_DEFAULT, VALUE_BYTES_LIMIT, 'batchBytesMax');
    this.groupCommitDelayUs = options.groupCommitDelayUs ?? 0;
    if (!(this.groupCommitDelayUs >= 0 && this.groupCommitDelayUs <= 1_000_000)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', 'groupCommitDelayUs must be in [0, 1000000]');
    }
    this.groupCommitWritesMax = positiveOption(options.groupCommitWritesMax, GROUP_COMMIT_WRITES_MAX_DEFAULT, 2 ** 30, 'groupCommitWritesMax');
    this.mergeTriggerDeadRatio = options.mergeTriggerDeadRatio ?? MERGE_TRIGGER_DEAD_RATIO_DEFAULT;
    if (!(this.mergeTriggerDeadRatio > 0)) throw new PaxosStoreError('INVALID_ARGUMENT', 'mergeTriggerDeadRatio must be > 0');
    this.mergeTriggerDeadBytesMin = options.mergeTriggerDeadBytesMin ?? this.fileSizeBytesMax;
    if (!(this.mergeTriggerDeadBytesMin >= 0)) throw new PaxosStoreError('INVALID_ARGUMENT', 'mergeTriggerDeadBytesMin must be ≥ 0');
    this.mergeExecution = options.mergeExecution ?? (this.fileSystem instanceof RealFileSystem ? 'worker' : 'inline');
    if (this.mergeExecution !== 'worker' && this.mergeExecution !== 'inline') {
      throw new PaxosStoreError('INVALID_ARGUMENT', "mergeExecution must be 'worker' or 'inline'");
    }
    // The worker opens the files itself, so it can only see the real disk.
    if (this.mergeExecution === 'worker' && !(this.fileSystem instanceof RealFileSystem)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', "mergeExecution 'worker' needs the real file system");
    }
    this.clock = options.clock ?? Date.now;
  }

  /** Opens (creating if needed) the store in `options.directory`, repairing what a crash left. */
  static async open(options: BitcaskOptions): Promise<Bitcask> {
    const engine = new Bitcask(options);
    try {
      await engine.load();
    } catch (error) {
      await engine.abandon();
      throw fromSystemError(error, `open ${engine.directory}`);
    }
    return engine;
  }

  // ─── reads ────────────────────────────────────────────────────────────────────────────────

  get(key: Uint8Array): Uint8Array | undefined {
    if (this.closed) throw new PaxosStoreError('CLOSED', 'bitcask is closed');
    if (!(key instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'key must be a Uint8Array');
    const slot = this.keydir.find(key);
    if (slot < 0) return undefined;
    const file = this.files.get(this.keydir.fileNumberAt(slot));
    assert(file !== undefined, 'keydir points at an unknown data file');
    const offset = this.keydir.offsetAt(slot);
    const size = this.keydir.recordBytesAt(slot);
    let buffer: Uint8Array;
    let position: number;
    if (file === this.active && offset >= this.pendingStart()) {
      // Not appended yet: the record is in the pending buffer (the same bytes the file will get).
      buffer = this.pending;
      position = offset - this.pendingStart();
    } else {
      if (this.readBuffer.length < size) this.readBuffer = new Uint8Array(Math.max(size, this.readBuffer.length * 2));
      buffer = this.readBuffer;
      position = 0;
      if (file.handle.read(buffer, 0, size, offset) !== size) position = -1;
    }
    const view = this.recordView;
    if (
      position < 0 ||
      decodeRecord(buffer, position, position + size, this.valueBytesMax, view) !== DECODE_OK ||
      view.totalBytes !== size ||
      (view.flags & FLAG_TOMBSTONE) !== 0 ||
      view.keyLength !== key.length ||
      !bytesEqual(buffer, view.keyStart, key)
    ) {
      throw new PaxosStoreError('CORRUPTION', `record at ${file.name}:${offset} fails its checksum`, { file: file.name, offset });
    }
    return buffer.slice(view.valueStart, view.valueStart + view.valueLength);
  }

  /**
   * Unordered iteration over the live keys (for replica rebuild). Takes a copy of the key set
   * when it starts; yields each key that is still live when reached, with its current value.
   * Keys written after the start may be missed. A corrupt record throws CORRUPTION.
   */
  *entries(): IterableIterator<[key: Uint8Array, value: Uint8Array]> {
    const keys = this.snapshotKeys();
    for (let index = 0; index + 1 < keys.bounds.length; index++) {
      const key = keys.bytes.slice(keys.bounds[index], keys.bounds[index + 1]);
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  private snapshotKeys(): { bytes: Uint8Array; bounds: Float64Array } {
    const bounds = new Float64Array(this.keydir.size + 1);
    let bytes = new Uint8Array(Math.max(1024, this.keydir.size * 16));
    let used = 0;
    let index = 0;
    for (let slot = this.keydir.nextSlot(-1); slot >= 0; slot = this.keydir.nextSlot(slot)) {
      const key = this.keydir.keyAt(slot);
      if (used + key.length > bytes.length) {
        const grown = new Uint8Array(Math.max(bytes.length * 2, used + key.length));
        grown.set(bytes.subarray(0, used));
        bytes = grown;
      }
      bytes.set(key, used);
      used += key.length;
      bounds[++index] = used;
    }
    return { bytes, bounds };
  }

  // ─── writes ───────────────────────────────────────────────────────────────────────────────

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.write({ type: 'put', key, value });
  }

  delete(key: Uint8Array): Promise<void> {
    return this.write({ type: 'delete', key });
  }

  private write(operation: WriteOperation): Promise<void> {
    try {
      this.checkWritable();
      validateWrite(operation, this.valueBytesMax);
      const value = operation.type === 'put' ? operation.value : null;
      const flags = value === null ? FLAG_TOMBSTONE : 0;
      const position = this.reservePending(recordBytes(operation.key.length, value === null ? 0 : value.length));
      const written = writeRecord(this.pending, position, operation.key, value, flags, this.clock());
      this.indexPending(position, operation.key.length, written, flags !== 0);
      return this.finishPendingWrite();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  batch(operations: readonly WriteOperation[]): Promise<void> {
    try {
      this.checkWritable();
      if (!Array.isArray(operations)) throw new PaxosStoreError('INVALID_ARGUMENT', 'batch takes an array of operations');
      if (operations.length === 0) return Promise.resolve();
      if (operations.length === 1) return this.write(operations[0]);
      let total = recordBytes(0, 4);
      for (const operation of operations) {
        validateWrite(operation, this.valueBytesMax);
        total += recordBytes(operation.key.length, operation.type === 'put' ? operation.value.length : 0);
      }
      if (total > this.batchBytesMax) {
        throw new PaxosStoreError('REQUEST_TOO_LARGE', `batch encodes to ${total} bytes; the limit is ${this.batchBytesMax}`);
      }
      // Reserved as one piece, so the whole batch lands in one file and in one append.
      let position = this.reservePending(total);
      const timestampMs = this.clock();
      for (let index = 0; index < operations.length; index++) {
        const operation = operations[index];
        const tombstone = operation.type === 'delete';
        const flags = FLAG_BATCH | (index === 0 ? FLAG_BATCH_BEGIN : 0) | (tombstone ? FLAG_TOMBSTONE : 0);
        const written = writeRecord(this.pending, position, operation.key, tombstone ? null : operation.value, flags, timestampMs);
        this.indexPending(position, operation.key.length, written, tombstone);
        position += written;
      }
      writeRecord(this.pending, position, EMPTY_KEY, encodeBatchCount(operations.length), FLAG_BATCH_COMMIT, timestampMs);
      return this.finishPendingWrite();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new PaxosStoreError('CLOSED', 'bitcask is closed'));
    if (this.writeFailure) return Promise.reject(this.writeFailure);
    const group = this.forming ?? this.syncing;
    return group === null ? Promise.resolve() : group.done;
  }

  private checkWritable(): void {
    if (this.closing || this.closed) throw new PaxosStoreError('CLOSED', 'bitcask is closed');
    if (this.writeFailure) {
      throw new PaxosStoreError('IO_ERROR', `bitcask stopped accepting writes after a failed sync (${this.writeFailure.message}); reopen to recover`);
    }
    if (this.forming !== null && this.forming.writes >= this.groupCommitWritesMax) {
      throw new PaxosStoreError('OVERLOADED', `${this.forming.writes} writes already wait for the next sync`);
    }
  }

  // ─── the pending append ───────────────────────────────────────────────────────────────────
  //
  //   active file:  [ written and appended bytes .................. ][ pending buffer ........ ]
  //                 0                                     pendingStart()              active.bytes
  //
  // Writes are encoded straight into `pending` and indexed at once (the keydir may point past
  // the file's written length; `get` reads such records from the buffer). The buffer goes to the
  // file with ONE append right before the group's fdatasync (and before a rotation, before a
  // merge computes its job, and whenever it passes PENDING_FLUSH_BYTES). Each flushed stretch is
  // a PendingSegment whose callers then wait for their group's sync. If the append fails
  // (ENOSPC writes nothing), the segment's keydir changes are undone in reverse order from the
  // undo log and exactly that segment's callers are rejected.

  /** File offset of `pending[0]` in the active file. */
  private pendingStart(): number {
    return this.active.bytes - this.pendingLength;
  }

  /** Makes room for `size` encoded bytes (rotating first if the active file would overflow) and returns where they go in `pending`. */
  private reservePending(size: number): number {
    if (this.active.bytes > 0 && this.active.bytes + size > this.fileSizeBytesMax) this.rotate();
    const position = this.pendingLength;
    if (position + size > this.pending.length) {
      const grown = new Uint8Array(Math.max(this.pending.length * 2, position + size));
      grown.set(this.pending.subarray(0, position));
      this.pending = grown;
    }
    this.pendingLength += size;
    this.active.bytes += size;
    return position;
  }

  /** Points the keydir at a record just encoded at `position` of `pending`, logging how to undo it. */
  private indexPending(position: number, keyLength: number, size: number, tombstone: boolean): void {
    const keyStart = position + RECORD_HEADER_BYTES;
    const existed = this.applyEntry(this.pending, keyStart, keyLength, this.active.number, this.pendingStart() + position, size, tombstone);
    let log = this.pendingLog;
    const base = this.pendingEntries * UNDO_FIELDS;
    if (base + UNDO_FIELDS > log.length) {
      log = new Float64Array(log.length * 2);
      log.set(this.pendingLog);
      this.pendingLog = log;
    }
    log[base] = position;
    log[base + 1] = keyLength;
    log[base + 2] = size;
    log[base + 3] = tombstone ? 1 : 0;
    log[base + 4] = existed ? this.previous.fileNumber : 0;
    log[base + 5] = this.previous.offset;
    log[base + 6] = this.previous.recordBytes;
    this.pendingEntries++;
  }

  /** Counts one write (a record or a whole batch) into the pending segment and returns its caller's promise. */
  private finishPendingWrite(): Promise<void> {
    this.counters.writes++;
    const group = this.formingGroup();
    group.writes++;
    group.handles.add(this.active.handle);
    this.segment ??= new PendingSegment(group);
    this.segment.writes++;
    const done = this.segment.done;
    // During a merge nothing stays pending: an undo must never reach across the merge's job.
    if (this.pendingLength >= PENDING_FLUSH_BYTES || this.merging !== null) this.flushPending();
    return done;
  }

  /** Appends the pending buffer to the active file with one system call. Never throws: a failure rejects the segment's callers. */
  private flushPending(): void {
    const segment = this.segment;
    if (segment === null) return;
    this.segment = null;
    const active = this.active;
    const start = this.pendingStart();
    let position = -1;
    let failure: PaxosStoreError | null = null;
    try {
      position = active.handle.append(this.pending.subarray(0, this.pendingLength));
    } catch (error) {
      failure = fromSystemError(error, `append ${active.name}`);
    }
    if (failure !== null) {
      // ENOSPC writes nothing (the file layer cuts partial writes), so the file is intact and a
      // later write may succeed; any other append failure leaves the file in doubt.
      if (failure.code !== 'NO_SPACE') this.writeFailure = failure;
      this.undoPending();
      this.counters.writesWithdrawn += segment.writes;
      segment.reject(failure);
    } else {
      assert(position === start, 'append landed somewhere other than the tracked end of the active file');
      const log = this.pendingLog;
      for (let base = 0; base < this.pendingEntries * UNDO_FIELDS; base += UNDO_FIELDS) {
        const recordPosition = log[base];
        active.hint!.add(this.pending, recordPosition + RECORD_HEADER_BYTES, log[base + 1], start + recordPosition, log[base + 2], log[base + 3] === 1);
      }
      segment.resolve(segment.group.done);
    }
    this.pendingLength = 0;
    this.pendingEntries = 0;
    if (this.pending.length > PENDING_RETAINED_BYTES_MAX) this.pending = new Uint8Array(PENDING_INITIAL_BYTES);
    if (this.pendingLog.length > UNDO_LOG_RETAINED_FIELDS_MAX) this.pendingLog = new Float64Array(UNDO_LOG_INITIAL_FIELDS);
  }

  /** Reverts the keydir and live-byte counts to before the pending records, newest first. */
  private undoPending(): void {
    const active = this.active;
    const log = this.pendingLog;
    const previous = this.previous;
    for (let base = (this.pendingEntries - 1) * UNDO_FIELDS; base >= 0; base -= UNDO_FIELDS) {
      const keyStart = log[base] + RECORD_HEADER_BYTES;
      const keyEnd = keyStart + log[base + 1];
      const previousFileNumber = log[base + 4];
      if (log[base + 3] === 0) active.liveBytes -= log[base + 2];
      if (previousFileNumber === 0) {
        this.keydir.deleteRange(this.pending, keyStart, keyEnd, previous);
      } else {
        const file = this.files.get(previousFileNumber);
        assert(file !== undefined, 'undo of a pending write points at a removed data file');
        this.keydir.setRange(this.pending, keyStart, keyEnd, previousFileNumber, log[base + 5], log[base + 6], previous);
        file.liveBytes += log[base + 6];
      }
    }
    active.bytes -= this.pendingLength;
  }

  /** The one place the keydir and the live-byte counts change for a put or a tombstone; true when the key existed (then `this.previous` holds where it was). */
  private applyEntry(data: Uint8Array, keyStart: number, keyLength: number, fileNumber: number, offset: number, size: number, tombstone: boolean): boolean {
    const previous = this.previous;
    const existed = tombstone
      ? this.keydir.deleteRange(data, keyStart, keyStart + keyLength, previous)
      : this.keydir.setRange(data, keyStart, keyStart + keyLength, fileNumber, offset, size, previous);
    if (existed) this.files.get(previous.fileNumber)!.liveBytes -= previous.recordBytes;
    if (!tombstone) this.files.get(fileNumber)!.liveBytes += size;
    return existed;
  }

  private rotate(): void {
    // The buffered records belong to the file being sealed (its hint must list them).
    this.flushPending();
    const old = this.active;
    const id = this.nextPlainId;
    const handle = this.openFile(plainDataName(id), 'create');
    this.nextPlainId++;
    const hint = old.hint!.finish(old.bytes);
    old.hint = null;
    this.sealed.push(old);
    this.active = this.registerFile(plainDataName(id), id, handle, false);
    this.active.hint = new HintBuilder();
    const group = this.formingGroup();
    group.handles.add(old.handle);
    group.directorySync = true;
    group.sealed.push({ file: old, hint });
    this.counters.rotations++;
  }

  // ─── group commit ─────────────────────────────────────────────────────────────────────────

  private formingGroup(): CommitGroup {
    if (this.forming === null) {
      this.forming = new CommitGroup();
      this.scheduleSync();
    }
    return this.forming;
  }

  private scheduleSync(): void {
    if (this.syncScheduled || this.syncing !== null || this.forming === null) return;
    this.syncScheduled = true;
    const start = (): void => {
      this.syncScheduled = false;
      void this.runSync();
    };
    if (this.groupCommitDelayUs > 0) setTimeout(start, this.groupCommitDelayUs / 1000);
    else setImmediate(start);
  }

  private async runSync(): Promise<void> {
    const group = this.forming;
    if (group === null || this.syncing !== null) return;
    this.forming = null;
    this.syncing = group;
    this.flushPending();
    try {
      if (this.writeFailure) throw this.writeFailure;
      for (const handle of group.handles) await handle.sync();
      if (group.directorySync) await this.fileSystem.syncDirectory(this.directory);
      this.counters.syncs++;
      for (const { file, hint } of group.sealed) {
        file.durable = true;
        this.track(this.writeHint(file, hint));
      }
      group.resolve();
    } catch (error) {
      this.writeFailure ??= fromSystemError(error, 'group commit');
      group.reject(this.writeFailure);
    } finally {
      this.syncing = null;
    }
    this.scheduleSync();
    this.maybeStartMerge();
  }

  private async writeHint(file: DataFile, hint: Uint8Array): Promise<void> {
    try {
      await this.fileSystem.writeFileAtomic(joinPath(this.directory, hintNameOf(file.name)), hint);
    } catch {
      // A missing hint costs only a scan at the next open.
      this.counters.hintWriteFailures++;
    }
  }

  private track(task: Promise<void>): void {
    this.background.add(task);
    void task.finally(() => this.background.delete(task));
  }

  // ─── merge ────────────────────────────────────────────────────────────────────────────────

  /**
   * Merges every sealed, durable data file into compact outputs. Reads and writes continue;
   * the keydir is repointed only for keys whose record did not move meanwhile. Resolves with
   * what was done; concurrent calls share one run.
   */
  merge(): Promise<MergeSummary> {
    if (this.closing || this.closed) return Promise.reject(new PaxosStoreError('CLOSED', 'bitcask is closed'));
    if (this.merging === null) {
      this.merging = this.runMerge().finally(() => {
        this.merging = null;
      });
    }
    return this.merging;
  }

  private maybeStartMerge(): void {
    if (this.merging !== null || this.closing || this.writeFailure || !Number.isFinite(this.mergeTriggerDeadRatio)) return;
    let bytes = 0;
    let liveBytes = 0;
    let eligible = false;
    for (const file of this.sealed) {
      if (!file.durable) break;
      bytes += file.bytes;
      liveBytes += file.liveBytes;
      if (file.plainId > Math.max(this.mergeId, this.mergeIdAbandoned)) eligible = true;
    }
    const deadBytes = bytes - liveBytes;
    if (!eligible || bytes === 0 || deadBytes < this.mergeTriggerDeadBytesMin || deadBytes / bytes < this.mergeTriggerDeadRatio) return;
    this.merge().catch((error: unknown) => {
      this.counters.mergeFailures++;
      this.lastMergeError = fromSystemError(error, 'merge');
    });
  }

  private async runMerge(): Promise<MergeSummary> {
    const inputs: DataFile[] = [];
    for (const file of this.sealed) {
      if (!file.durable) break;
      inputs.push(file);
    }
    const mergeId = inputs.reduce((highest, file) => Math.max(highest, file.plainId), 0);
    const summary: MergeSummary = { merged: false, inputFiles: inputs.length, outputFiles: 0, bytesBefore: 0, bytesAfter: 0, recordsCopied: 0 };
    if (mergeId <= Math.max(this.mergeId, this.mergeIdAbandoned)) return summary;
    // The job below reflects the keydir; no pending record may later undo back across it.
    this.flushPending();
    const job = this.mergeJob(mergeId, inputs);
    const reply: MergeReply = this.mergeExecution === 'worker' ? await mergePool().run(job) : await runMergeReply(this.fileSystem, job);
    if (!reply.ok) {
      this.removeMergeOutputs(mergeId);
      throw new PaxosStoreError(reply.code, reply.message);
    }
    const outcome = reply.outcome;
    const outputs: { name: string; hint: Uint8Array; handle: FileHandle }[] = [];
    let markerAttempted = false;
    try {
      for (let output = 0; output < outcome.outputCount; output++) {
        const name = mergeDataName(mergeId, output);
        const handle = this.openFile(name, 'read');
        outputs.push({ name, hint: this.fileSystem.readFile(joinPath(this.directory, hintNameOf(name))), handle });
        if (!readHint(outputs[output].hint, handle.size(), () => {})) {
          throw new PaxosStoreError('CORRUPTION', `merge output hint ${hintNameOf(name)} is damaged right after it was written`);
        }
      }
      // The commit point: once this marker is durable the outputs replace the inputs.
      markerAttempted = true;
      await this.fileSystem.writeFileAtomic(joinPath(this.directory, markerName(mergeId)), encodeMarker(mergeId, outcome.outputCount));
    } catch (error) {
      for (const output of outputs) output.handle.close();
      // A failed marker write may still have left the marker on disk: then the outputs are the
      // committed state for the next open, so they stay, and this merge id is never reused
      // (rewriting outputs under an existing marker would not be crash safe).
      if (markerAttempted) this.mergeIdAbandoned = mergeId;
      else this.removeMergeOutputs(mergeId);
      throw fromSystemError(error, 'merge commit');
    }
    this.installMerge(mergeId, inputs, outputs, outcome);
    summary.merged = true;
    summary.outputFiles = outcome.outputCount;
    summary.bytesBefore = inputs.reduce((sum, file) => sum + file.bytes, 0);
    summary.bytesAfter = outcome.bytesWritten;
    summary.recordsCopied = outcome.sourceInput.length;
    this.counters.merges++;
    this.counters.mergeBytesReclaimed += summary.bytesBefore - summary.bytesAfter;
    await this.removeMergedFiles(inputs);
    return summary;
  }

  /** Lists, per input file, the offsets of the records the keydir still points at. */
  private mergeJob(mergeId: number, inputs: readonly DataFile[]): MergeJob {
    const inputIndex = new Map<number, number>(inputs.map((file, index) => [file.number, index]));
    const counts = new Array<number>(inputs.length).fill(0);
    for (let slot = this.keydir.nextSlot(-1); slot >= 0; slot = this.keydir.nextSlot(slot)) {
      const index = inputIndex.get(this.keydir.fileNumberAt(slot));
      if (index !== undefined) counts[index]++;
    }
    const offsets = counts.map((count) => new Float64Array(count));
    const filled = new Array<number>(inputs.length).fill(0);
    for (let slot = this.keydir.nextSlot(-1); slot >= 0; slot = this.keydir.nextSlot(slot)) {
      const index = inputIndex.get(this.keydir.fileNumberAt(slot));
      if (index !== undefined) offsets[index][filled[index]++] = this.keydir.offsetAt(slot);
    }
    for (const list of offsets) list.sort();
    return {
      directory: this.directory,
      mergeId,
      inputs: inputs.map((file, index) => ({ dataName: file.name, offsets: offsets[index] })),
      fileSizeBytesMax: this.fileSizeBytesMax,
      valueBytesMax: this.valueBytesMax,
    };
  }

  /** Synchronous, so no read or write interleaves: repoint unchanged keys, swap the file lists. */
  private installMerge(mergeId: number, inputs: readonly DataFile[], outputs: { name: string; hint: Uint8Array; handle: FileHandle }[], outcome: MergeOutcome): void {
    let record = 0;
    const outputFiles = outputs.map((output) => this.registerFile(output.name, -1, output.handle, true));
    outputs.forEach((output, outputIndex) => {
      const file = outputFiles[outputIndex];
      const valid = readHint(output.hint, file.bytes, (data, keyStart, keyLength, offset, size) => {
        assert(outcome.outputIndex[record] === outputIndex && outcome.outputOffset[record] === offset, 'merge hint out of step with its outcome');
        const slot = this.keydir.findRange(data, keyStart, keyStart + keyLength, hashKey(data, keyStart, keyStart + keyLength));
        const source = inputs[outcome.sourceInput[record]];
        if (slot >= 0 && this.keydir.fileNumberAt(slot) === source.number && this.keydir.offsetAt(slot) === outcome.sourceOffset[record]) {
          this.keydir.update(slot, file.number, offset, size);
          source.liveBytes -= size;
          file.liveBytes += size;
        }
        record++;
      });
      assert(valid, `merge output hint ${output.name} is unreadable right after it was written`);
    });
    assert(record === outcome.sourceInput.length, 'merge outcome and hints disagree on the record count');
    for (const file of inputs) assert(file.liveBytes === 0, `${file.name} still holds live records after merge`);
    const merged = new Set(inputs);
    this.sealed = [...outputFiles, ...this.sealed.filter((file) => !merged.has(file))];
    this.mergeId = mergeId;
  }

  private async removeMergedFiles(inputs: readonly DataFile[]): Promise<void> {
    for (const file of inputs) {
      file.handle.close();
      this.files.delete(file.number);
      this.removeQuietly(file.name);
      this.removeQuietly(hintNameOf(file.name));
    }
    for (const name of this.fileSystem.list(this.directory)) {
      const match = /^merge-(\d{10})\.commit$/.exec(name);
      if (match && Number(match[1]) < this.mergeId) this.removeQuietly(name);
    }
    // Not needed for correctness (open recognises leftovers), only to release the space sooner.
    await this.fileSystem.syncDirectory(this.directory).catch(() => {});
  }

  private removeMergeOutputs(mergeId: number): void {
    const prefix = `merge-${String(mergeId).padStart(10, '0')}-`;
    for (const name of this.fileSystem.list(this.directory)) if (name.startsWith(prefix)) this.removeQuietly(name);
  }

  private removeQuietly(name: string): void {
    try {
      this.fileSystem.remove(joinPath(this.directory, name));
    } catch {
      // Leftovers are recognised and removed at the next open.
    }
  }

  // ─── open ─────────────────────────────────────────────────────────────────────────────────

  private async load(): Promise<void> {
    this.fileSystem.makeDirectory(this.directory);
    const listing = classifyNames(this.fileSystem.list(this.directory));
    for (const name of listing.temporaryNames) this.removeQuietly(name);
    this.mergeId = this.committedMergeId(listing);
    const mergeOutputCount = this.mergeId > 0 ? listing.mergeOutputs.get(this.mergeId)!.length : 0;
    const liveNames: { name: string; plainId: number }[] = [];
    for (let output = 0; output < mergeOutputCount; output++) liveNames.push({ name: mergeDataName(this.mergeId, output), plainId: -1 });
    for (const id of listing.plainIds) if (id > this.mergeId) liveNames.push({ name: plainDataName(id), plainId: id });
    this.removeGarbage(listing, new Set(liveNames.map((entry) => entry.name)));
    const highestId = Math.max(this.mergeId, ...listing.plainIds, ...listing.mergeOutputs.keys(), ...listing.markerIds, 0);
    this.nextPlainId = highestId + 1;

    const activeEntry = liveNames.length > 0 && liveNames[liveNames.length - 1].plainId > 0 ? liveNames.pop()! : null;
    for (const entry of liveNames) await this.loadSealed(entry.name, entry.plainId, listing);
    if (activeEntry !== null) {
      // The active file is always scanned; a hint for it would be stale after the next append.
      if (listing.hintNames.has(hintNameOf(activeEntry.name))) this.removeQuietly(hintNameOf(activeEntry.name));
      await this.loadActive(activeEntry.name, activeEntry.plainId);
    } else {
      const id = this.nextPlainId++;
      const file = this.registerFile(plainDataName(id), id, this.openFile(plainDataName(id), 'create'), false);
      file.hint = new HintBuilder();
      this.active = file;
    }
    await this.fileSystem.syncDirectory(this.directory);
  }

  /** The highest merge with a commit marker; its outputs must all be there. */
  private committedMergeId(listing: DirectoryListing): number {
    const mergeId = listing.markerIds.length > 0 ? listing.markerIds[listing.markerIds.length - 1] : 0;
    if (mergeId === 0) return 0;
    const count = decodeMarker(this.fileSystem.readFile(joinPath(this.directory, markerName(mergeId))), mergeId);
    const present = listing.mergeOutputs.get(mergeId) ?? [];
    if (count < 0 || present.length !== count || present.some((output, index) => output !== index)) {
      throw new PaxosStoreError('CORRUPTION', `merge commit marker ${markerName(mergeId)} is damaged or its outputs are missing`, {
        outputsExpected: count,
        outputsPresent: present.length,
      });
    }
    return mergeId;
  }

  private removeGarbage(listing: DirectoryListing, live: Set<string>): void {
    const garbage: string[] = [];
    for (const id of listing.plainIds) if (!live.has(plainDataName(id))) garbage.push(plainDataName(id));
    for (const [mergeId, outputs] of listing.mergeOutputs) {
      for (const output of outputs) if (!live.has(mergeDataName(mergeId, output))) garbage.push(mergeDataName(mergeId, output));
    }
    for (const id of listing.markerIds) if (id !== this.mergeId) garbage.push(markerName(id));
    for (const name of listing.hintNames) if (!live.has(`${name.slice(0, -'.hint'.length)}.data`)) garbage.push(name);
    for (const name of garbage) this.removeQuietly(name);
    this.recovery.garbageFilesRemoved += garbage.length;
  }

  private async loadSealed(name: string, plainId: number, listing: DirectoryListing): Promise<void> {
    const handle = this.openFile(name, 'read');
    const file = this.registerFile(name, plainId, handle, true);
    this.sealed.push(file);
    this.recovery.dataFilesLoaded++;
    const hintName = hintNameOf(name);
    if (listing.hintNames.has(hintName)) {
      const hint = this.fileSystem.readFile(joinPath(this.directory, hintName));
      this.keydir.reserve(this.keydir.size + Math.min(hintEntryCount(hint), hint.length));
      if (readHint(hint, file.bytes, (data, keyStart, keyLength, offset, size, tombstone) => this.applyEntry(data, keyStart, keyLength, file.number, offset, size, tombstone))) {
        this.recovery.hintsUsed++;
        return;
      }
      this.recovery.hintsRejected++;
    }
    // readHint validates everything before visiting, so a rejected hint applied nothing.
    const builder = await this.scanFile(file);
    this.track(this.writeHint(file, builder.finish(file.bytes)));
  }

  private async loadActive(name: string, plainId: number): Promise<void> {
    const file = this.registerFile(name, plainId, this.openFile(name, 'append'), false);
    this.recovery.dataFilesLoaded++;
    file.hint = await this.scanFile(file);
    this.active = file;
  }

  /** Scans a data file into the keydir, cuts a damaged tail, and returns its hint entries. */
  private async scanFile(file: DataFile): Promise<HintBuilder> {
    this.recovery.filesScanned++;
    const data = this.fileSystem.readFile(joinPath(this.directory, file.name));
    const builder = new HintBuilder();
    const result = scanRecords(data, data.length, this.valueBytesMax, (bytes, keyStart, keyLength, offset, size, tombstone) => {
      this.applyEntry(bytes, keyStart, keyLength, file.number, offset, size, tombstone);
      builder.add(bytes, keyStart, keyLength, offset, size, tombstone);
    });
    this.recovery.recordsDropped += result.recordsDropped;
    this.recovery.corruptRegions += result.corruptRegions;
    this.recovery.corruptBytes += result.corruptBytes;
    // Everything the keydir now points at must be durable before it counts as the baseline: the
    // bytes may be from writes whose sync failed before a restart without a power loss.
    if (result.validEndBytes < data.length) {
      this.recovery.bytesTruncated += data.length - result.validEndBytes;
      const writable = file.durable ? this.openFile(file.name, 'append') : file.handle;
      writable.truncate(result.validEndBytes);
      await writable.sync();
      if (writable !== file.handle) {
        writable.close();
        file.handle.close();
        file.handle = this.openFile(file.name, 'read');
      }
      file.bytes = result.validEndBytes;
    } else {
      await file.handle.sync();
    }
    return builder;
  }

  private openFile(name: string, mode: 'read' | 'append' | 'create'): FileHandle {
    return this.fileSystem.open(joinPath(this.directory, name), mode);
  }

  private registerFile(name: string, plainId: number, handle: FileHandle, durable: boolean): DataFile {
    const file: DataFile = { number: this.nextFileNumber++, name, plainId, handle, bytes: handle.size(), liveBytes: 0, durable, hint: null };
    this.files.set(file.number, file);
    return file;
  }

  // ─── lifecycle ────────────────────────────────────────────────────────────────────────────

  /** Flushes, waits for merge and hint writes, and releases the files. */
  async close(): Promise<void> {
    if (this.closing || this.closed) return;
    this.closing = true;
    await (this.forming ?? this.syncing)?.done.catch(() => {});
    await this.merging?.catch(() => {});
    while (this.background.size > 0) await Promise.all(this.background);
    for (const file of this.files.values()) file.handle.close();
    this.closed = true;
  }

  /** Releases what a failed open acquired. */
  private async abandon(): Promise<void> {
    this.closing = true;
    await Promise.allSettled(this.background);
    for (const file of this.files.values()) file.handle.close();
    this.closed = true;
  }

  stats(): EngineStats {
    let dataBytes = 0;
    let liveBytes = 0;
    for (const file of this.files.values()) {
      dataBytes += file.bytes;
      liveBytes += file.liveBytes;
    }
    return {
      keys: this.keydir.size,
      dataFiles: this.files.size,
      dataBytes,
      deadBytes: dataBytes - liveBytes,
      keydirBytes: this.keydir.memoryBytes(),
      writes: this.counters.writes,
      writesWithdrawn: this.counters.writesWithdrawn,
      syncs: this.counters.syncs,
      rotations: this.counters.rotations,
      merges: this.counters.merges,
      mergeFailures: this.counters.mergeFailures,
      mergeBytesReclaimed: this.counters.mergeBytesReclaimed,
      hintWriteFailures: this.counters.hintWriteFailures,
      writeFailed: this.writeFailure ? 1 : 0,
      recoveryRecordsDropped: this.recovery.recordsDropped,
      recoveryBytesTruncated: this.recovery.bytesTruncated,
      recoveryCorruptRegions: this.recovery.corruptRegions,
    };
  }
}

function bytesEqual(buffer: Uint8Array, start: number, key: Uint8Array): boolean {
  for (let i = 0; i < key.length; i++) if (buffer[start + i] !== key[i]) return false;
  return true;
}
