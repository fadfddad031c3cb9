/**
 * VirtualLog (Delos, OSDI 2020): one log address space over a chain of loglets. The chain lives in
 * the MetaStore, a single versioned register whose conditional writes are themselves decided by
 * Paxos (it is loglet 0, folded in log order: a write applies only if it names the current version).
 *
 *   positions:  0 ............ 41 | 42 ............ 97 | 98 ......
 *   loglets:    loglet 1           | loglet 2           | loglet 3 (active)
 *               slots 0..41, SEAL  | slots 0..55, SEAL  | slots 0..
 *               at slot 42         | at slot 56         |
 *
 * Reconfiguration = seal the active loglet (append a SEAL to it), then extend the chain with a new
 * loglet starting at the seal's position. An append that lands after a SEAL fails over: it reads
 * the chain again, extends it itself if the reconfigurer died half way, and retries on the new
 * loglet. NOOP slots (holes filled during recovery) take a position but carry no entry.
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import { isSealedError, type Loglet } from './loglet.js';
import type { LogNode } from './log-node.js';

export interface LogletDescriptor {
  readonly logletId: number;
  readonly startPosition: number;
}

export interface Chain {
  readonly version: number;
  readonly loglets: readonly LogletDescriptor[];
}

export interface LogRecord {
  readonly position: number;
  readonly data: Uint8Array;
}

export const META_LOGLET_ID = 0;
const INITIAL_CHAIN: Chain = Object.freeze({ version: 0, loglets: [{ logletId: 1, startPosition: 0 }] });
const packr = new Packr({ useRecords: false, moreTypes: false });

/** The MetaStore register, folded from loglet 0 at one replica. */
export class MetaStore {
  private chain: Chain = INITIAL_CHAIN;
  private foldedSlot = 0;
  /** Slots whose conditional write applied (one per reconfiguration: small). */
  private readonly appliedSlots = new Set<number>();

  constructor(private readonly node: LogNode) {}

  private get loglet(): Loglet {
    return this.node.loglet(META_LOGLET_ID);
  }

  /** Linearizable read of the register. */
  async read(deadline: number): Promise<Chain> {
    const tail = await this.loglet.checkTail(deadline);
    await this.loglet.learnPrefix(tail, deadline);
    return this.fold();
  }

  /** Conditional write: applies only when the register is still at `expectedVersion`. */
  async write(expectedVersion: number, loglets: readonly LogletDescriptor[], deadline: number): Promise<boolean> {
    const data = packr.pack([expectedVersion, loglets.map((loglet) => [loglet.logletId, loglet.startPosition])]);
    const slot = await this.loglet.append('data', data, deadline);
    this.foldTo(slot + 1);
    return this.appliedSlots.has(slot);
  }

  private fold(): Chain {
    return this.foldTo(this.loglet.contiguous);
  }

  private foldTo(slotEnd: number): Chain {
    for (; this.foldedSlot < slotEnd; this.foldedSlot++) {
      const value = this.loglet.chosenAt(this.foldedSlot);
      if (value === undefined || value.kind !== 'data' || value.data === null) continue;
      const [expectedVersion, loglets] = packr.unpack(value.data) as [number, [number, number][]];
      if (expectedVersion !== this.chain.version) continue;
      this.appliedSlots.add(this.foldedSlot);
      this.chain = { version: this.chain.version + 1, loglets: loglets.map(([logletId, startPosition]) => ({ logletId, startPosition })) };
    }
    return this.chain;
  }

  get cached(): Chain {
    return this.chain;
  }
}

export class VirtualLog {
  readonly meta: MetaStore;
  private chain: Chain;
  reconfigurations = 0;

  constructor(private readonly node: LogNode) {
    this.meta = new MetaStore(node);
    this.chain = this.meta.cached;
  }

  get loglets(): readonly LogletDescriptor[] {
    return this.chain.loglets;
  }

  private get active(): LogletDescriptor {
    return this.chain.loglets[this.chain.loglets.length - 1];
  }

  /** Appends one entry; resolves with its position once it is durable on a majority. */
  async append(data: Uint8Array, deadline: number): Promise<number> {
    for (;;) {
      const active = this.active;
      try {
        const slot = await this.node.loglet(active.logletId).append('data', data, deadline);
        return active.startPosition + slot;
      } catch (error) {
        if (!isSealedError(error)) throw error;
        await this.followSeal(active, error.details?.sealSlot as number, deadline);
      }
    }
  }

  /** The position after the last entry of the log (linearizable). */
  async checkTail(deadline: number): Promise<number> {
    for (;;) {
      const active = this.active;
      const loglet = this.node.loglet(active.logletId);
      const tail = await loglet.checkTail(deadline);
      await loglet.learnPrefix(tail, deadline);
      const seal = loglet.sealSlot;
      if (seal === null) return active.startPosition + tail;
      await this.followSeal(active, seal, deadline);
    }
  }

  /** Data entries at positions [from, to), learned from peers where needed. */
  async readNext(from: number, to: number, deadline: number): Promise<LogRecord[]> {
    const records: LogRecord[] = [];
    const loglets = this.chain.loglets;
    for (let index = 0; index < loglets.length; index++) {
      const descriptor = loglets[index];
      const end = index + 1 < loglets.length ? loglets[index + 1].startPosition : Number.POSITIVE_INFINITY;
      const first = Math.max(from, descriptor.startPosition);
      const last = Math.min(to, end);
      if (first >= last) continue;
      const loglet = this.node.loglet(descriptor.logletId);
      const slotEnd = last - descriptor.startPosition;
      await loglet.learnPrefix(slotEnd, deadline);
      for (let slot = first - descriptor.startPosition; slot < slotEnd; slot++) {
        const value = loglet.chosenAt(slot);
        if (value === undefined) throw new PaxosStoreError('NOT_FOUND', `position ${descriptor.startPosition + slot} was trimmed`, { trimmed: true });
        if (value.kind === 'seal') return records;
        if (value.kind === 'data' && value.data !== null) records.push({ position: descriptor.startPosition + slot, data: value.data });
      }
    }
    return records;
  }

  /** Drops this replica's copy of every position below `position`. */
  async prefixTrim(position: number): Promise<void> {
    for (const descriptor of this.chain.loglets) {
      if (descriptor.startPosition >= position) break;
      const loglet = this.node.loglet(descriptor.logletId);
      await loglet.prefixTrim(Math.min(position - descriptor.startPosition, loglet.contiguous));
    }
  }

  /** Seals the active loglet and extends the chain with a new one (a reconfiguration). */
  async reconfigure(deadline: number): Promise<void> {
    const active = this.active;
    const sealSlot = await this.node.loglet(active.logletId).append('seal', null, deadline);
    await this.followSeal(active, sealSlot, deadline);
  }

  /** After `sealed` ended at `sealSlot`: make sure the chain has a successor and adopt it. */
  private async followSeal(sealed: LogletDescriptor, sealSlot: number, deadline: number): Promise<void> {
    for (;;) {
      this.chain = await this.meta.read(deadline);
      if (this.active.logletId !== sealed.logletId) return;
      const next = { logletId: sealed.logletId + 1, startPosition: sealed.startPosition + sealSlot };
      if (await this.meta.write(this.chain.version, [...this.chain.loglets, next], deadline)) this.reconfigurations++;
    }
  }
}
