/**
 * TimeEngine: distributed timers. Every proposal carries the proposer's clock reading; apply
 * keeps the latest reading of each replica and computes the majority time (the largest T such
 * that a majority of replicas have reported a clock ≥ T). A timer fires at the first entry at
 * which the majority time passes its deadline: the same position on every replica, and never
 * before a majority of clocks agree, so one fast clock cannot fire it. `onFire` runs in postApply:
 * a replica that restarts applies the entries after its last flush again, so a timer fired there
 * calls `onFire` again on that replica (at least once, not exactly once).
 *
 *   header time = [replicaId, clockTick]   (+ timer = [name, deadlineTick] on setTimer entries)
 *   LocalStore keys  E/clock/<replicaId> → [tick]     E/timer/<name> → [deadlineTick]
 */
import { Packr } from 'msgpackr';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine, withHeader } from './layered-engine.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'time';
const TIMER_HEADER = 'timer';
const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const TIMER_PREFIX = encoder.encode('E/timer/');

export class TimeEngine extends LayeredEngine {
  private readonly clocks = new Map<number, number>();
  /** Pending timers: name → deadline (mirrors E/timer/…; the store is read once, at start). */
  private readonly timers = new Map<string, number>();
  private readonly firedNow: string[] = [];
  readonly fired: { name: string; position: number }[] = [];

  constructor(
    lower: IEngine,
    store: ReadView,
    private readonly replicaId: number,
    private readonly replicaIds: readonly number[],
    private readonly clock: { now(): number },
    private readonly onFire: (name: string, position: number) => void = () => {},
  ) {
    super(HEADER, lower, store, true);
    for (const id of replicaIds) {
      const stored = store.get(clockKey(id));
      if (stored !== undefined) this.clocks.set(id, (packr.unpack(stored) as [number])[0]);
    }
    for (const [key, value] of store.iterate({ prefix: TIMER_PREFIX })) {
      this.timers.set(decoder.decode(key.subarray(TIMER_PREFIX.length)), (packr.unpack(value) as [number])[0]);
    }
  }

  override propose(entry: StackEntry): Promise<unknown> {
    return super.propose(withHeader(entry, HEADER, [this.replicaId, this.clock.now()]));
  }

  async setTimer(name: string, deadlineTick: number): Promise<void> {
    await this.propose({ headers: { [TIMER_HEADER]: [name, deadlineTick] }, body: null });
  }

  /** Reports this replica's clock (timers only advance as entries carry clock readings). */
  async tick(): Promise<void> {
    await this.propose({ headers: {}, body: null });
  }

  majorityTime(): number {
    const readings = this.replicaIds.map((id) => this.clocks.get(id) ?? 0).sort((a, b) => b - a);
    return readings[Math.floor(this.replicaIds.length / 2)];
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER];
    if (Array.isArray(header)) {
      const [replicaId, tick] = header as [number, number];
      if (tick > (this.clocks.get(replicaId) ?? 0)) {
        this.clocks.set(replicaId, tick);
        transaction.put(clockKey(replicaId), packr.pack([tick]));
      }
    }
    const timer = entry.headers[TIMER_HEADER];
    if (Array.isArray(timer) && typeof timer[0] === 'string' && typeof timer[1] === 'number') {
      transaction.put(timerKey(timer[0]), packr.pack([timer[1]]));
      this.timers.set(timer[0], timer[1]);
    }
    const now = this.majorityTime();
    // Sorted by name: the firing order is the same on every replica, restarted or not.
    const due = [...this.timers].filter(([, deadline]) => deadline <= now).map(([name]) => name);
    for (const name of due.sort()) {
      transaction.delete(timerKey(name));
      this.timers.delete(name);
      this.firedNow.push(name);
    }
    return this.applyUpper(transaction, entry, position);
  }

  override postApply(entry: StackEntry, position: number): void {
    for (const name of this.firedNow.splice(0)) {
      this.fired.push({ name, position });
      this.onFire(name, position);
    }
    super.postApply(entry, position);
  }
}

function clockKey(replicaId: number): Uint8Array {
  return encoder.encode(`E/clock/${replicaId}`);
}

function timerKey(name: string): Uint8Array {
  return encoder.encode(`E/timer/${name}`);
}
