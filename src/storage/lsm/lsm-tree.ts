import { Piscina } from 'piscina';
import { type ErrorCode, errorCatalogue, fromSystemError, PaxosStoreError } from '../../errors.js';
import { assert } from '../../util/assert.js';
import { workerFilePath } from '../../util/worker-path.js';
import {
  compareBytes,
  type EngineStats,
  type IterateOptions,
  type OrderedKvEngine,
  type Snapshot,
  validateWrite,
  type WriteOperation,
} from '../engine.js';
import { type FileHandle, type FileSystem, joinPath } from '../file-system.js';
import { BlockCache } from './block-cache.js';
import { KIND_PUT, KIND_TOMBSTONE, SEQUENCE_MAX } from './codec.js';
import { type BackgroundJob, type JobResult, type JobSettings, runJob } from './compaction.js';
import type { InternalIterator, PointResult } from './internal-iterator.js';
import { type Bounds, boundsOf, countTablesBefore, LevelIterator, MergingIterator } from './iterator.js';
import { decodeManifest, encodeManifest, MANIFEST_FILE_NAME, type ManifestState } from './manifest.js';
import { Memtable } from './memtable.js';
import { LEVELS_MAX, type LsmOptions, type ResolvedLsmOptions, resolveOptions } from './options.js';
import { Table, type TableMetadata, TableIterator, tableFileName } from './sstable.js';
import { type CompactionPlan, emptyLevels, pickCompaction, pickFullCompaction, sortLevel, Version } from './version.js';
import { encodeWalRecord, readWal, type WalEntry, walFileName } from './wal.js';

/**
 * The LSM tree: an ordered, durable key-value engine with atomic batches and snapshots.
 *
 *   write ─► validate ─► sequence numbers ─► pending group ─► WAL append + one fdatasync
 *                                                                 │ (group commit)
 *                                                                 ▼
 *            readers ◄── active memtable ◄── apply, then resolve every caller's promise
 *                          │ full
 *                          ▼
 *                 immutable memtable ──flush job──► L0 table ──compaction job──► L1 … L6
 *                                   (piscina worker on the real disk, inline on the simulated one)
 *
 * A write becomes visible to readers only once it is durable, and the visible sequence only
 * moves forward, so a snapshot (a sequence number plus pinned memtables and version) sees exactly
 * the writes acknowledged before it was taken. The background loop runs one job at a time: it
 * is the only writer of the version and of table numbers, which keeps installs simple.
 */

interface PendingWrite {
  readonly entries: WalEntry[];
  readonly record: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface FrozenMemtable {
  readonly memtable: Memtable;
  readonly walNumber: number;
}

/** Everything a reader needs to see the tree as of one sequence. */
interface ReadState {
  readonly sequence: number;
  /** Newest first. */
  readonly memtables: readonly Memtable[];
  readonly version: Version;
}

/** What open found and repaired, for operators and tests. */
export interface RecoveryReport {
  readonly walFilesReplayed: number;
  readonly walRecordsReplayed: number;
  /** Bytes of torn or corrupt WAL tail that were dropped (never applied). */
  readonly walBytesDropped: number;
  readonly orphanFilesRemoved: number;
}

export class LsmTree implements OrderedKvEngine {
  private readonly fileSystem: FileSystem;
  private readonly directory: string;
  private readonly cache: BlockCache;
  private pool: Piscina | null = null;

  private active: Memtable = new Memtable();
  private activeWalNumber = 0;
  private wal: FileHandle | null = null;
  private walNeedsDirectorySync = false;
  private readonly frozen: FrozenMemtable[] = [];
  private current: Version = initialVersion();

  private nextTableNumber = 1;
  private nextWalNumber = 1;
  /** Highest sequence handed out (some may belong to failed writes: gaps are fine). */
  private lastSequence = 0;
  /** Highest sequence applied to the memtable: what a new reader sees. */
  private visibleSequence = 0;

  private pending: PendingWrite[] = [];
  private pendingBytes = 0;
  private committing: Promise<void> | null = null;
  /** Set when a failed sync could not be undone: the WAL tail is unknown, so writes stop. */
  private writeFailure: PaxosStoreError | null = null;

  private background: Promise<void> | null = null;
  private backgroundError: PaxosStoreError | null = null;
  /** Set by compactAll: the background loop merges level by level until one sorted level is left. */
  private fullCompactionRequested = false;
  private readonly compactPointers: (Uint8Array | null)[] = new Array(LEVELS_MAX).fill(null);
  /** Live snapshots and iterators (with their sequences), for stats; their pins keep their files. */
  private readonly readers = new Map<object, number>();
  private readonly abandonedReaders = new FinalizationRegistry<ReaderToken>((token) => token.release());
  private closed = false;
  private closing: Promise<void> | null = null;

  private readonly counters = {
    writesCommitted: 0,
    groupCommits: 0,
    writeErrors: 0,
    flushes: 0,
    compactions: 0,
    tableMoves: 0,
    compactionBytesWritten: 0,
    backgroundErrors: 0,
    tablesDeleted: 0,
  };
  recovery: RecoveryReport = { walFilesReplayed: 0, walRecordsReplayed: 0, walBytesDropped: 0, orphanFilesRemoved: 0 };

  private constructor(private readonly options: ResolvedLsmOptions) {
    this.fileSystem = options.fileSystem;
    this.directory = options.directory;
    this.cache = new BlockCache(options.blockCacheBytes);
  }

  /** Opens (or creates) the tree in `options.directory`, replaying the WAL after a crash. */
  static async open(options: LsmOptions): Promise<LsmTree> {
    const tree = new LsmTree(resolveOptions(options));
    try {
      await tree.recover();
    } catch (error) {
      tree.releaseFiles();
      throw error;
    }
    if (tree.options.backgroundThread === 'worker') {
      tree.pool = new Piscina({ filename: workerFilePath(import.meta.url, './compaction-worker.js'), minThreads: 0, maxThreads: 1, idleTimeout: 5000 });
    }
    tree.scheduleBackground();
    return tree;
  }

  // ---------------------------------------------------------------- recovery

  private path(name: string): string {
    return joinPath(this.directory, name);
  }

  private async recover(): Promise<void> {
    const fileSystem = this.fileSystem;
    fileSystem.makeDirectory(this.directory);
    const names = fileSystem.list(this.directory);
    let manifest: ManifestState;
    if (fileSystem.exists(this.path(MANIFEST_FILE_NAME))) {
      manifest = decodeManifest(fileSystem.readFile(this.path(MANIFEST_FILE_NAME)), this.path(MANIFEST_FILE_NAME));
    } else {
      if (names.some((name) => name.endsWith('.sst') || name.endsWith('.wal'))) {
        throw new PaxosStoreError('CORRUPTION', `${this.directory}: tables or WAL files without a MANIFEST`);
      }
      manifest = { nextTableNumber: 1, nextWalNumber: 1, walNumberMin: 1, lastSequence: 0, tables: [] };
    }
    const levels = emptyLevels();
    const live = new Set<string>();
    for (const { level, table } of manifest.tables) {
      if (level >= LEVELS_MAX) throw new PaxosStoreError('CORRUPTION', `manifest names level ${level}`);
      const name = tableFileName(table.number);
      if (!names.includes(name)) throw new PaxosStoreError('CORRUPTION', `manifest names ${name}, which is missing`);
      levels[level].push(Table.open(fileSystem, this.path(name), table.number, this.cache));
      live.add(name);
    }
    // L0 newest first (higher table numbers are newer); deeper levels in key order.
    levels[0].sort((a, b) => b.number - a.number);
    for (let level = 1; level < LEVELS_MAX; level++) sortLevel(levels[level]);
    this.install(levels);
    this.nextTableNumber = manifest.nextTableNumber;
    this.lastSequence = manifest.lastSequence;

    let orphans = 0;
    const walNumbers: number[] = [];
    let walNumberSeen = manifest.nextWalNumber - 1;
    for (const name of names) {
      const number = Number.parseInt(name, 10);
      const obsolete =
        name.endsWith('.tmp') ||
        (name.endsWith('.sst') && !live.has(name)) ||
        (name.endsWith('.wal') && number < manifest.walNumberMin);
      if (name.endsWith('.wal')) walNumberSeen = Math.max(walNumberSeen, number);
      if (name.endsWith('.sst')) this.nextTableNumber = Math.max(this.nextTableNumber, number + 1);
      if (obsolete) {
        fileSystem.remove(this.path(name));
        orphans++;
      } else if (name.endsWith('.wal')) walNumbers.push(number);
    }
    walNumbers.sort((a, b) => a - b);

    let records = 0;
    let dropped = 0;
    const replayed = new Memtable();
    for (const number of walNumbers) {
      const result = readWal(fileSystem.readFile(this.path(walFileName(number))), this.path(walFileName(number)));
      dropped += result.droppedBytes;
      for (const record of result.records) {
        records++;
        for (const entry of record) {
          replayed.add(entry.key, entry.sequence, entry.value);
          this.lastSequence = Math.max(this.lastSequence, entry.sequence);
        }
      }
    }
    this.visibleSequence = this.lastSequence;
    this.recovery = { walFilesReplayed: walNumbers.length, walRecordsReplayed: records, walBytesDropped: dropped, orphanFilesRemoved: orphans };

    // Replayed writes go straight to L0 so the old WAL files (and any torn tail) can be retired.
    if (replayed.entryCount > 0) {
      const tables = await this.runJobOrThrow({ kind: 'flush', settings: this.jobSettings(false), packedEntries: replayed.pack() });
      this.install(this.withTables(this.current.levels, [], tables.map((table) => ({ level: 0, table }))));
    }
    this.activeWalNumber = walNumberSeen + 1;
    this.nextWalNumber = this.activeWalNumber + 1;
    await this.writeManifest(this.activeWalNumber);
    this.wal = fileSystem.open(this.path(walFileName(this.activeWalNumber)), 'create');
    await fileSystem.syncDirectory(this.directory);
    for (const number of walNumbers) fileSystem.remove(this.path(walFileName(number)));
  }

  // ---------------------------------------------------------------- versions and files

  /** Makes `levels` the current version; the previous one is released (its tables die with their last reader). */
  private install(levels: readonly (readonly Table[])[]): void {
    const version = new Version(levels);
    for (const table of version.tables()) table.references++;
    version.references = 1;
    const previous = this.current;
    this.current = version;
    this.releaseVersion(previous);
  }

  private releaseVersion(version: Version): void {
    if (--version.references > 0) return;
    assert(version.references === 0, 'version released more often than acquired');
    for (const table of version.tables()) {
      if (--table.references > 0) continue;
      table.close();
      table.evictFromCache();
      // Not durable until the next directory sync; a resurrected file is an orphan that open removes.
      if (!this.closed) this.fileSystem.remove(table.path);
      this.counters.tablesDeleted++;
    }
  }

  /** Opens finished tables and returns the levels with `removed` taken out and `added` put in. */
  private withTables(
    levels: readonly (readonly Table[])[],
    removed: readonly Table[],
    added: readonly { level: number; table: TableMetadata | Table }[],
  ): Table[][] {
    const next = levels.map((tables) => tables.filter((table) => !removed.includes(table)));
    const addedZero: Table[] = [];
    for (const { level, table } of added) {
      const opened = table instanceof Table ? table : Table.open(this.fileSystem, this.path(tableFileName(table.number)), table.number, this.cache);
      if (level === 0) addedZero.push(opened);
      else next[level].push(opened);
    }
    next[0] = [...addedZero.sort((a, b) => b.number - a.number), ...next[0]];
    for (let level = 1; level < LEVELS_MAX; level++) sortLevel(next[level]);
    return next;
  }

  private manifestState(walNumberMin: number, levels: readonly (readonly Table[])[]): ManifestState {
    const tables = levels.flatMap((level, index) => level.map((table) => ({ level: index, table })));
    return {
      nextTableNumber: this.nextTableNumber,
      nextWalNumber: this.nextWalNumber,
      walNumberMin,
      lastSequence: this.lastSequence,
      tables,
    };
  }

  private async writeManifest(walNumberMin: number, levels = this.current.levels): Promise<void> {
    // New tables' names must be durable before a manifest naming them can be: without a directory
    // sync first, a crash may keep the manifest's rename and lose a table's creation.
    await this.fileSystem.syncDirectory(this.directory);
    await this.fileSystem.writeFileAtomic(this.path(MANIFEST_FILE_NAME), encodeManifest(this.manifestState(walNumberMin, levels)));
  }

  private releaseFiles(): void {
    this.wal?.close();
    for (const table of this.current.tables()) table.close();
  }

  // ---------------------------------------------------------------- writes

  put(key: Uint8Array, value: Uint8Array): Promise<void> {
    return this.batch([{ type: 'put', key, value }]);
  }

  delete(key: Uint8Array): Promise<void> {
    return this.batch([{ type: 'delete', key }]);
  }

  /** All operations share one WAL record: after a crash either all of them are there or none is. */
  batch(operations: readonly WriteOperation[]): Promise<void> {
    try {
      this.checkOpen();
      if (!Array.isArray(operations)) throw new PaxosStoreError('INVALID_ARGUMENT', 'batch takes an array of operations');
      for (const operation of operations) {
        if (operation === null || typeof operation !== 'object') throw new PaxosStoreError('INVALID_ARGUMENT', 'a write operation must be an object');
        validateWrite(operation, this.options.valueBytesMax);
      }
      if (this.writeFailure) throw this.writeFailure;
    } catch (error) {
      return Promise.reject(error);
    }
    if (operations.length === 0) return Promise.resolve();
    const entries: WalEntry[] = operations.map((operation) => ({
      kind: operation.type === 'put' ? KIND_PUT : KIND_TOMBSTONE,
      sequence: ++this.lastSequence,
      key: operation.key.slice(),
      value: operation.type === 'put' ? operation.value.slice() : null,
    }));
    const record = encodeWalRecord(entries);
    if (this.pendingBytes + record.length > this.options.writeQueueBytesMax && this.pending.length > 0) {
      return Promise.reject(new PaxosStoreError('OVERLOADED', `LSM write queue holds ${this.pendingBytes} bytes; retry later`));
    }
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ entries, record, resolve, reject });
      this.pendingBytes += record.length;
      this.committing ??= this.commitLoop();
    });
  }

  /** Group commit: everything queued while the previous sync ran goes out with one append and one fdatasync. */
  private async commitLoop(): Promise<void> {
    try {
      while (this.pending.length > 0) await this.commitNextGroup();
    } finally {
      // Cleared in the same turn as the last resolve, so a write queued right after starts a new loop.
      this.committing = null;
    }
  }

  private async commitNextGroup(): Promise<void> {
    const roomError = await this.waitForMemtableRoom();
    const group = this.pending;
    this.pending = [];
    this.pendingBytes = 0;
    let error: PaxosStoreError | null;
    try {
      error = roomError ?? (await this.commitGroup(group));
    } catch (unexpected) {
      error = fromSystemError(unexpected, 'WAL commit');
    }
    if (error) {
      this.failGroup(group, error);
      return;
    }
    for (const write of group) {
      for (const entry of write.entries) this.active.add(entry.key, entry.sequence, entry.value);
      this.visibleSequence = write.entries[write.entries.length - 1].sequence;
      write.resolve();
    }
    this.counters.writesCommitted += group.length;
    this.counters.groupCommits++;
    if (this.active.sizeBytes >= this.options.memtableBytesMax) this.freezeActive();
  }

  private failGroup(group: readonly PendingWrite[], error: PaxosStoreError): void {
    this.counters.writeErrors += group.length;
    for (const write of group) write.reject(error);
  }

  /** Appends and syncs one group; returns the error to report to its callers, if any. */
  private async commitGroup(group: readonly PendingWrite[]): Promise<PaxosStoreError | null> {
    if (this.writeFailure) return this.writeFailure;
    const wal = this.wal!;
    let total = 0;
    for (const write of group) total += write.record.length;
    const bytes = new Uint8Array(total);
    let offset = 0;
    for (const write of group) {
      bytes.set(write.record, offset);
      offset += write.record.length;
    }
    let start: number;
    try {
      start = wal.size();
      wal.append(bytes);
    } catch (error) {
      // A failed append writes nothing (the file layer cuts a partial write).
      return fromSystemError(error, 'WAL append');
    }
    try {
      if (this.walNeedsDirectorySync) {
        await this.fileSystem.syncDirectory(this.directory);
        this.walNeedsDirectorySync = false;
      }
      await wal.sync();
      return null;
    } catch (error) {
      // The group may or may not have reached the disk. Cut it so it cannot come back on replay;
      // if even that fails, the WAL's tail is unknown and every later write must fail too.
      try {
        wal.truncate(start);
      } catch (truncateError) {
        this.writeFailure = fromSystemError(truncateError, 'WAL truncate after a failed sync');
      }
      return fromSystemError(error, 'WAL sync');
    }
  }

  /** Freezes the active memtable onto a new WAL; the background loop flushes it to L0. */
  private freezeActive(): void {
    const number = this.nextWalNumber;
    let handle: FileHandle;
    try {
      handle = this.fileSystem.open(this.path(walFileName(number)), 'create');
    } catch {
      // Keep writing into the current memtable and WAL; the next commit tries again.
      return;
    }
    this.nextWalNumber++;
    this.wal!.close();
    this.wal = handle;
    this.walNeedsDirectorySync = true;
    this.frozen.push({ memtable: this.active, walNumber: this.activeWalNumber });
    this.active = new Memtable();
    this.activeWalNumber = number;
    this.scheduleBackground();
  }

  /** Write stall: with too many frozen memtables, wait for a flush; report a flush that keeps failing. */
  private async waitForMemtableRoom(): Promise<PaxosStoreError | null> {
    while (this.frozen.length >= this.options.immutableMemtablesMax) {
      // A loop that was already running may fail for an older reason (a disk since freed): only
      // the failure of a loop started here, for this wait, is reported to the writers.
      const startedHere = this.background === null;
      this.scheduleBackground();
      if (this.background === null) return new PaxosStoreError('CLOSED', 'the LSM tree is closing');
      await this.background;
      if (startedHere && this.frozen.length >= this.options.immutableMemtablesMax && this.backgroundError) return this.backgroundError;
    }
    return null;
  }

  /** Resolves when every write issued before the call has been committed (durable or failed). */
  async flush(): Promise<void> {
    this.checkOpen();
    while (this.committing) await this.committing;
  }

  // ---------------------------------------------------------------- background work

  private scheduleBackground(): void {
    if (this.background || this.closed) return;
    this.background = this.backgroundLoop();
  }

  private async backgroundLoop(): Promise<void> {
    this.backgroundError = null;
    try {
      while (!this.closed && (await this.runOneBackgroundJob()));
    } catch (error) {
      this.backgroundError = fromSystemError(error, 'LSM background job');
      this.counters.backgroundErrors++;
    } finally {
      this.background = null;
    }
  }

  /** Flushes the oldest frozen memtable, else runs one compaction; false when there is nothing to do. */
  private async runOneBackgroundJob(): Promise<boolean> {
    if (this.frozen.length > 0) {
      await this.flushOldestFrozen();
      return true;
    }
    let plan = this.fullCompactionRequested ? pickFullCompaction(this.current) : null;
    if (plan === null) {
      this.fullCompactionRequested = false;
      plan = pickCompaction(this.current, this.options, this.compactPointers);
    }
    if (plan === null) return false;
    await this.compact(plan);
    return true;
  }

  private jobSettings(bottommost: boolean): JobSettings {
    const options = this.options;
    return {
      directory: this.directory,
      tableNumberFirst: this.nextTableNumber,
      tableBytesTarget: options.tableBytesTarget,
      blockBytes: options.blockBytes,
      bloomBitsPerKey: options.bloomBitsPerKey,
      compress: options.compression,
      horizonSequence: this.visibleSequence,
      bottommost,
    };
  }

  /** Runs a job on the worker or inline; reserves the table numbers it used. */
  private async runJobOrThrow(job: BackgroundJob): Promise<TableMetadata[]> {
    const result: JobResult = this.pool ? await this.pool.run(job) : await runJob(this.fileSystem, job);
    if (!result.ok) {
      const code = (result.code in errorCatalogue ? result.code : 'INTERNAL') as ErrorCode;
      throw new PaxosStoreError(code, `${job.kind} job: ${result.message}`);
    }
    this.nextTableNumber = job.settings.tableNumberFirst + result.tables.length;
    return result.tables;
  }

  private async flushOldestFrozen(): Promise<void> {
    const oldest = this.frozen[0];
    const tables = await this.runJobOrThrow({ kind: 'flush', settings: this.jobSettings(false), packedEntries: oldest.memtable.pack() });
    const levels = this.withTables(this.current.levels, [], tables.map((table) => ({ level: 0, table })));
    const walNumberMin = this.frozen[1]?.walNumber ?? this.activeWalNumber;
    await this.installDurably(walNumberMin, levels);
    this.frozen.shift();
    this.counters.flushes++;
    this.fileSystem.remove(this.path(walFileName(oldest.walNumber)));
  }

  private async compact(plan: CompactionPlan): Promise<void> {
    const walNumberMin = this.frozen[0]?.walNumber ?? this.activeWalNumber;
    if (plan.kind === 'move') {
      const levels = this.withTables(this.current.levels, [plan.table], [{ level: plan.level + 1, table: plan.table }]);
      this.compactPointers[plan.level] = plan.table.largestKey;
      await this.installDurably(walNumberMin, levels);
      this.counters.tableMoves++;
      return;
    }
    const runs = plan.level === 0 ? plan.upper.map((table) => [table.number]) : [plan.upper.map((table) => table.number)];
    if (plan.lower.length > 0) runs.push(plan.lower.map((table) => table.number));
    const tables = await this.runJobOrThrow({ kind: 'compact', settings: this.jobSettings(plan.bottommost), runs });
    const levels = this.withTables(
      this.current.levels,
      [...plan.upper, ...plan.lower],
      tables.map((table) => ({ level: plan.level + 1, table })),
    );
    if (plan.level > 0) this.compactPointers[plan.level] = plan.upper[plan.upper.length - 1].largestKey;
    await this.installDurably(walNumberMin, levels);
    this.counters.compactions++;
    for (const table of tables) this.counters.compactionBytesWritten += table.sizeBytes;
  }

  /** Manifest first, then memory: a crash between the two leaves the durable manifest authoritative. */
  private async installDurably(walNumberMin: number, levels: Table[][]): Promise<void> {
    try {
      await this.writeManifest(walNumberMin, levels);
    } catch (error) {
      const known = new Set(this.current.tables());
      for (const table of levels.flat()) {
        if (known.has(table)) continue;
        table.close();
        this.fileSystem.remove(table.path);
      }
      throw error;
    }
    this.install(levels);
  }

  /** Test and operations hook: freezes the active memtable (if it holds anything) and waits until background work is done. */
  async flushMemtable(): Promise<void> {
    await this.flush();
    if (this.active.entryCount > 0) this.freezeActive();
    await this.waitForBackground();
  }

  /**
   * Flushes the memtable and merges every table into one sorted level (what LevelDB's
   * compactRange over all keys does): afterwards a scan reads one table per step. For bulk loads
   * and benchmarks; normal operation never needs it.
   */
  async compactAll(): Promise<void> {
    await this.flush();
    this.fullCompactionRequested = true;
    await this.flushMemtable();
  }

  /** Waits until no flush or compaction is pending (or the last one failed); rejects with that failure. */
  async waitForBackground(): Promise<void> {
    this.checkOpen();
    // A loop already running may be ending with an old failure; wait it out, then run a fresh one.
    while (this.background) await this.background;
    this.scheduleBackground();
    while (this.background) await this.background;
    if (this.backgroundError) throw this.backgroundError;
  }

  // ---------------------------------------------------------------- reads

  private checkOpen(): void {
    if (this.closed) throw new PaxosStoreError('CLOSED', 'the LSM tree is closed');
  }

  private liveState(): ReadState {
    const memtables = [this.active];
    for (let index = this.frozen.length - 1; index >= 0; index--) memtables.push(this.frozen[index].memtable);
    return { sequence: this.visibleSequence, memtables, version: this.current };
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.checkOpen();
    checkKey(key);
    return pointRead(this.liveState(), key, SEQUENCE_MAX);
  }

  iterate(options?: IterateOptions): IterableIterator<[key: Uint8Array, value: Uint8Array]> {
    this.checkOpen();
    const bounds = boundsOf(options);
    return this.scan(this.liveState(), bounds);
  }

  snapshot(): Snapshot {
    this.checkOpen();
    const token = this.acquireReader(this.liveState());
    const snapshot: Snapshot = {
      get: (key) => {
        token.check();
        checkKey(key);
        return pointRead(token.state, key, token.state.sequence);
      },
      iterate: (options) => {
        token.check();
        const bounds = boundsOf(options);
        // Its own pin, so releasing the snapshot mid-scan cannot delete tables under the scan.
        return this.scan(token.state, bounds);
      },
      release: () => {
        this.abandonedReaders.unregister(token);
        token.release();
      },
    };
    this.abandonedReaders.register(snapshot, token, token);
    return snapshot;
  }

  /** A merging iterator that pins `state` until it ends, is closed, or is garbage collected. */
  private scan(state: ReadState, bounds: Bounds): MergingIterator {
    const token = this.acquireReader(state);
    const iterator = new MergingIterator(sourcesOf(state), state.sequence, bounds, () => {
      this.abandonedReaders.unregister(token);
      token.release();
    });
    this.abandonedReaders.register(iterator, token, token);
    return iterator;
  }

  /** Pins the current version and memtables for a reader; compaction keeps what its sequence sees. */
  private acquireReader(state: ReadState): ReaderToken {
    state.version.references++;
    const token = new ReaderToken(state, () => {
      this.readers.delete(token);
      this.releaseVersion(state.version);
    });
    this.readers.set(token, state.sequence);
    return token;
  }

  // ---------------------------------------------------------------- lifecycle and stats

  /** Finishes queued writes and the running background job, then releases every file. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.closeNow();
    return this.closing;
  }

  private async closeNow(): Promise<void> {
    while (this.committing) await this.committing;
    this.closed = true;
    while (this.background) await this.background;
    await this.pool?.destroy();
    this.pool = null;
    this.releaseFiles();
  }

  /** The error of the last failed flush or compaction, or null; the tree retries on later writes. */
  lastBackgroundError(): PaxosStoreError | null {
    return this.backgroundError;
  }

  stats(): EngineStats {
    const levels = this.current.levels;
    const stats: EngineStats = {
      ...this.counters,
      lastSequence: this.visibleSequence,
      memtableBytes: this.active.sizeBytes,
      frozenMemtables: this.frozen.length,
      liveReaders: this.readers.size,
      blockCacheBytes: this.cache.sizeBytes,
      blockCacheHits: this.cache.hits,
      blockCacheMisses: this.cache.misses,
      recoveryWalRecordsReplayed: this.recovery.walRecordsReplayed,
      recoveryWalBytesDropped: this.recovery.walBytesDropped,
      recoveryOrphanFilesRemoved: this.recovery.orphanFilesRemoved,
    };
    for (let level = 0; level < LEVELS_MAX; level++) {
      stats[`level${level}Tables`] = levels[level].length;
      stats[`level${level}Bytes`] = this.current.levelBytes(level);
    }
    return stats;
  }
}

/** A reader's hold on a ReadState; released once, by the reader or by the finalizer. */
class ReaderToken {
  private released = false;

  constructor(
    readonly state: ReadState,
    private readonly onRelease: () => void,
  ) {}

  check(): void {
    if (this.released) throw new PaxosStoreError('CLOSED', 'the snapshot was released');
  }

  release(): void {
    if (this.released) return;
    this.released = true;
    this.onRelease();
  }
}

function initialVersion(): Version {
  const version = new Version(emptyLevels());
  version.references = 1;
  return version;
}

function checkKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'key must be a Uint8Array');
}

function sourcesOf(state: ReadState): InternalIterator[] {
  const sources: InternalIterator[] = state.memtables.map((memtable) => memtable.iterator());
  const levels = state.version.levels;
  for (const table of levels[0]) sources.push(new TableIterator(table));
  for (let level = 1; level < levels.length; level++) if (levels[level].length > 0) sources.push(new LevelIterator(levels[level]));
  return sources;
}

/** Newest source first: memtables, then L0 newest to oldest, then one table per deeper level. */
function pointRead(state: ReadState, key: Uint8Array, sequence: number): Uint8Array | undefined {
  const visible = Math.min(sequence, state.sequence);
  for (const memtable of state.memtables) {
    const result = memtable.get(key, visible);
    if (result.kind !== 'absent') return copyValue(result);
  }
  const levels = state.version.levels;
  const keyHash = Table.hashKey(key);
  for (const table of levels[0]) {
    const result = table.get(key, keyHash, visible);
    if (result.kind !== 'absent') return copyValue(result);
  }
  for (let level = 1; level < levels.length; level++) {
    const table = findTable(levels[level], key);
    if (table === null) continue;
    const result = table.get(key, keyHash, visible);
    if (result.kind !== 'absent') return copyValue(result);
  }
  return undefined;
}

function copyValue(result: PointResult): Uint8Array | undefined {
  return result.kind === 'value' ? result.value.slice() : undefined;
}

/** The one table of a disjoint level whose range may hold `key`. */
function findTable(tables: readonly Table[], key: Uint8Array): Table | null {
  const index = countTablesBefore(tables, 'largestKey', key);
  return index < tables.length && compareBytes(tables[index].smallestKey, key) <= 0 ? tables[index] : null;
}

