/**
 * BaseEngine: the bottom of the stack. Appends proposals to the VirtualLog and plays the log into
 * the layer above, one entry per LocalStore batch together with the cursor:
 *
 *   LocalStore key  E/cursor  →  msgpackr [nextPosition]   (written in the same batch as the entry)
 *
 * Playback is driven only by propose and sync (no background thread): propose plays up to its own
 * entry, sync to the tail. Both share one apply loop (a promise chain), so entries are applied
 * once, in order. A proposal is recognized at apply time by the token in its `base` header, so
 * its caller gets the result of apply (or the exception apply threw) whichever call played it.
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { LogNode } from '../log/log-node.js';
import type { VirtualLog } from '../log/virtual-log.js';
import type { WriteOperation } from '../storage/engine.js';
import { assert } from '../util/assert.js';
import type { IApplicator, IEngine, ReadOnlySnapshot, StackEntry, Transaction } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
const CURSOR_KEY = encoder.encode('E/cursor');
const BASE_HEADER = 'base';

export interface BaseEngineOptions {
  /** A proposal or sync that cannot reach a quorum fails with TIMEOUT after this many ticks. */
  readonly timeoutTicks: number;
  /** Proposals waiting in this engine; more are refused with OVERLOADED. */
  readonly pendingMax: number;
}

export const BASE_ENGINE_DEFAULTS: BaseEngineOptions = Object.freeze({ timeoutTicks: 5_000, pendingMax: 10_000 });

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

/** Writes buffered over the LocalStore; reads see them first. */
export class StoreTransaction implements Transaction {
  private readonly writes = new Map<string, WriteOperation>();

  constructor(private readonly base: { get(key: Uint8Array): Uint8Array | undefined }) {}

  get(key: Uint8Array): Uint8Array | undefined {
    const write = this.writes.get(keyName(key));
    if (write !== undefined) return write.type === 'put' ? write.value : undefined;
    return this.base.get(key);
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.writes.set(keyName(key), { type: 'put', key, value });
  }

  delete(key: Uint8Array): void {
    this.writes.set(keyName(key), { type: 'delete', key });
  }

  operations(): WriteOperation[] {
    return [...this.writes.values()];
  }
}

function keyName(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('latin1');
}

interface Pending {
  resolve(result: unknown): void;
  reject(error: unknown): void;
}

export class BaseEngine implements IEngine {
  private upcall: IApplicator | null = null;
  private cursor: number;
  private playing: Promise<void> = Promise.resolve();
  private readonly pending = new Map<string, Pending>();
  private proposalCounter = 0;
  private trimAllowed = 0;
  private trimmed = 0;
  entriesApplied = 0;

  constructor(
    private readonly node: LogNode,
    private readonly log: VirtualLog,
    private readonly options: BaseEngineOptions = BASE_ENGINE_DEFAULTS,
  ) {
    const stored = node.store.get(CURSOR_KEY);
    this.cursor = stored === undefined ? 0 : (packr.unpack(stored) as [number])[0];
  }

  get appliedPosition(): number {
    return this.cursor;
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
    return this.node.store.snapshot();
  }

  /** A snapshot of what is applied here now, without touching the log (LeaseEngine's local read). */
  localSnapshot(): ReadOnlySnapshot {
    return this.node.store.snapshot();
  }

  setTrimPrefix(position: number): void {
    this.trimAllowed = Math.max(this.trimAllowed, position);
  }

  /** Trims the log below min(allowed from above, applied here). Returns the new trim point. */
  async trim(): Promise<number> {
    const target = Math.min(this.trimAllowed, this.cursor);
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
      if (this.cursor < target) await this.writeCursor(target);
    }
  }

  private async writeCursor(position: number): Promise<void> {
    this.cursor = position;
    await this.node.store.put(CURSOR_KEY, packr.pack([position]));
  }

  private async applyOne(entry: StackEntry, position: number): Promise<void> {
    assert(this.upcall !== null, 'an applicator is registered before playback');
    let transaction = new StoreTransaction(this.node.store);
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown };
    try {
      outcome = { ok: true, value: this.upcall.apply(transaction, entry, position) };
    } catch (error) {
      // A deterministic exception: the entry's writes are dropped on every replica alike.
      transaction = new StoreTransaction(this.node.store);
      outcome = { ok: false, error };
    }
    const operations = transaction.operations();
    operations.push({ type: 'put', key: CURSOR_KEY, value: packr.pack([position + 1]) });
    this.cursor = position + 1;
    await this.node.store.batch(operations);
    this.entriesApplied++;
    this.upcall.postApply(entry, position);
    const token = entry.headers[BASE_HEADER];
    const waiter = typeof token === 'string' ? this.pending.get(token) : undefined;
    if (waiter === undefined) return;
    this.pending.delete(token as string);
    if (outcome.ok) waiter.resolve(outcome.value);
    else waiter.reject(outcome.error);
  }

  private deadline(): number {
    return this.node.clock.now() + this.options.timeoutTicks;
  }
}
