/**
 * BaseEngine: the bottom of the stack. Appends proposals to the VirtualLog and plays the log into
 * the layer above, one entry per LocalStore transaction:
 *
 *   entry ──apply (one transaction, a sub-transaction per layer)──► staged in AppliedState
 *   every flushEntriesMax entries / flushKeysMax keys / flushIntervalTicks ticks:
 *     one durable LocalStore batch = [staged writes…, E/cursor → msgpackr [nextPosition]]
 *
 * Playback is driven only by propose and sync (no background thread): propose plays up to its own
 * entry, sync to the tail. Both share one apply loop (a promise chain), so entries are applied
 * once, in order. A proposal is recognized at apply time by the token in its `base` header, so
 * its caller gets the result of apply (or the exception apply threw) whichever call played it.
 *
 * Applied state is visible at once and durable at the next flush; after a crash the entries
 * after the flushed cursor are applied again from the (durable) log. `flushEntriesMax: 1` makes
 * every entry durable before its postApply (the behaviour before periodic flush).
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { LogNode } from '../log/log-node.js';
import type { VirtualLog } from '../log/virtual-log.js';
import { assert } from '../util/assert.js';
import { AppliedState } from './applied-state.js';
import { applyOutcome, StoreTransaction } from './transaction.js';
import type { IApplicator, IEngine, ReadOnlySnapshot, StackEntry } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
const CURSOR_KEY = encoder.encode('E/cursor');
const BASE_HEADER = 'base';

export interface BaseEngineOptions {
  /** A proposal or sync that cannot reach a quorum fails with TIMEOUT after this many ticks. */
  readonly timeoutTicks: number;
  /** Proposals waiting in this engine; more are refused with OVERLOADED. */
  readonly pendingMax: number;
  /** Flush after this many applied entries (1: every entry is durable before its postApply). */
  readonly flushEntriesMax: number;
  /** Flush once this many keys are staged (bounds memory and the snapshot copy). */
  readonly flushKeysMax: number;
  /** Flush at the first entry applied this many clock ticks after the last flush. */
  readonly flushIntervalTicks: number;
}

export const BASE_ENGINE_DEFAULTS: BaseEngineOptions = Object.freeze({
  timeoutTicks: 5_000,
  pendingMax: 10_000,
  flushEntriesMax: 64,
  flushKeysMax: 4_096,
  flushIntervalTicks: 1_000,
});

export function encodeEntry(entry: StackEntry): Uint8Array {
  return packr.pack([entry.headers, entry.body]);
}

export function decodeEntry(bytes: Uint8Array): StackEntry {
  const raw = packr.unpack(bytes) as unknown;
  if (!Array.isArray(raw) || raw.length !== 2 || typeof raw[0] !== 'object' || raw[0] === null) {
    throw new PaxosStoreError('CORRUPTION', 'log entry is not [headers, body]');
  }
  return { headers: raw[0] as Record<string, unknown>, body: raw[1] };
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

export class BaseEngine implements IEngine {
  /** Applied state: the LocalStore plus what was applied since the last flush. Engines read it. */
  readonly localStore: AppliedState;
  private upcall: IApplicator | null = null;
  private cursor: number;
  private flushedCursor: number;
  private entriesSinceFlush = 0;
  private lastFlushTick: number;
  private playing: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, Pending>();
  private proposalCounter = 0;
  private trimAllowed = 0;
  private trimmed = 0;
  entriesApplied = 0;
  flushes = 0;

  constructor(
    private readonly node: LogNode,
    private readonly log: VirtualLog,
    private readonly options: BaseEngineOptions = BASE_ENGINE_DEFAULTS,
  ) {
    assert(options.flushEntriesMax >= 1 && options.flushKeysMax >= 1, 'flush bounds are positive');
    this.localStore = new AppliedState(node.store);
    const stored = node.store.get(CURSOR_KEY);
    this.cursor = stored === undefined ? 0 : (packr.unpack(stored) as [number])[0];
    this.flushedCursor = this.cursor;
    this.lastFlushTick = node.clock.now();
  }

  /** Every entry below this position is applied here (visible to readers). */
  get appliedPosition(): number {
    return this.cursor;
  }

  /** Every entry below this position is applied and durable in the LocalStore here. */
  get flushedPosition(): number {
    return this.flushedCursor;
  }

  get replicaId(): number {
    return this.node.replicaId;
  }

  registerUpcall(applicator: IApplicator): void {
    assert(this.upcall === null, 'one applicator per engine');
    this.upcall = applicator;
  }

  async propose(entry: StackEntry): Promise<unknown> {
    if (this.pending.size >= this.options.pendingMax) throw new PaxosStoreError('OVERLOADED', 'too many proposals in flight');
    const token = `${this.node.replicaId}:${this.node.nonce}:${this.proposalCounter++}`;
    const result = new Promise<unknown>((resolve, reject) => this.pending.set(token, { resolve, reject }));
    // Apply may reject it before this call reaches `return result`; the caller still gets it.
    result.catch(() => {});
    try {
      const bytes = encodeEntry({ headers: { ...entry.headers, [BASE_HEADER]: token }, body: entry.body });
      const position = await this.log.append(bytes, this.deadline());
      await this.playTo(position + 1);
    } catch (error) {
      this.pending.delete(token);
      throw error;
    }
    return result;
  }

  async sync(): Promise<ReadOnlySnapshot> {
    const tail = await this.log.checkTail(this.deadline());
    await this.playTo(tail);
    return this.localStore.snapshot();
  }

  /** A snapshot of what is applied here now, without touching the log (LeaseEngine's local read). */
  localSnapshot(): ReadOnlySnapshot {
    return this.localStore.snapshot();
  }

  /** The latest allowance wins (an engine above may lower it, e.g. LogBackup below a view). */
  setTrimPrefix(position: number): void {
    this.trimAllowed = position;
  }

  /** Makes everything applied so far durable in the LocalStore (queued on the apply loop). */
  flush(): Promise<void> {
    const run = this.playing.then(() => this.flushNow());
    this.playing = run.catch(() => {});
    return run;
  }

  /**
   * Trims the log below min(allowed from above, flushed here): a replica that crashes replays
   * from its flushed cursor, so the log above it must stay. Returns the new trim point.
   */
  async trim(): Promise<number> {
    await this.flush();
    const target = Math.min(this.trimAllowed, this.flushedCursor);
    if (target > this.trimmed) {
      await this.log.prefixTrim(target);
      this.trimmed = target;
    }
    return this.trimmed;
  }

  /** Plays every entry below `target`. Calls queue on one chain: the single apply loop. */
  playTo(target: number): Promise<void> {
    const run = this.playing.then(() => this.playNow(target));
    this.playing = run.catch(() => {});
    return run;
  }

  private async playNow(target: number): Promise<void> {
    while (this.cursor < target) {
      const records = await this.log.readNext(this.cursor, target, this.deadline());
      for (const record of records) {
        if (record.position < this.cursor) continue;
        await this.applyOne(decodeEntry(record.data), record.position);
      }
      // Positions after the last record up to the target are NOOPs or the end of a sealed loglet.
      if (this.cursor < target) {
        this.cursor = target;
        this.entriesSinceFlush++;
        if (this.flushDue()) await this.flushNow();
      }
    }
  }

  private async applyOne(entry: StackEntry, position: number): Promise<void> {
    const upcall = this.upcall;
    assert(upcall !== null, 'an applicator is registered before playback');
    const transaction = new StoreTransaction(this.localStore);
    // The layers above run in a sub-transaction: their failure never undoes the cursor.
    const outcome = applyOutcome(transaction, (sub) => upcall.apply(sub, entry, position));
    this.localStore.stage(transaction.operations());
    this.cursor = position + 1;
    this.entriesSinceFlush++;
    this.entriesApplied++;
    // The entry is applied (visible) even if the flush fails: postApply and the proposer still
    // learn its outcome, then the flush failure stops playback (the next flush retries it all).
    let flushFailure: { error: unknown } | null = null;
    if (this.flushDue()) await this.flushNow().catch((error: unknown) => (flushFailure = { error }));
    upcall.postApply(entry, position);
    const token = entry.headers[BASE_HEADER];
    const waiter = typeof token === 'string' ? this.pending.get(token) : undefined;
    if (waiter !== undefined) {
      this.pending.delete(token as string);
      if (outcome.ok) waiter.resolve(outcome.value);
      else waiter.reject(outcome.error);
    }
    if (flushFailure !== null) throw (flushFailure as { error: unknown }).error;
  }

  private flushDue(): boolean {
    return (
      this.entriesSinceFlush >= this.options.flushEntriesMax ||
      this.localStore.unflushedKeys >= this.options.flushKeysMax ||
      this.node.clock.now() - this.lastFlushTick >= this.options.flushIntervalTicks
    );
  }

  private async flushNow(): Promise<void> {
    if (this.flushedCursor === this.cursor && this.localStore.unflushedKeys === 0) return;
    const position = this.cursor;
    await this.localStore.flush([{ type: 'put', key: CURSOR_KEY, value: packr.pack([position]) }]);
    this.flushedCursor = position;
    this.entriesSinceFlush = 0;
    this.lastFlushTick = this.node.clock.now();
    this.flushes++;
  }

  private deadline(): number {
    return this.node.clock.now() + this.options.timeoutTicks;
  }
}
