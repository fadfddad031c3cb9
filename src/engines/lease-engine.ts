/**
 * LeaseEngine: a lease acquired and renewed through the log; the holder's `sync` answers from
 * its LocalStore without touching the log while the lease is valid (0 round trips).
 *
 * Why a local read is linearizable: while a lease exists, apply rejects (PRECONDITION_FAILED,
 * details.leaseHolder) every entry proposed by another replica, so every write acknowledged after
 * the grant was proposed, and therefore applied, by the holder before it was acknowledged. A new
 * holder can take over only with a conditional acquire naming the current epoch, and only after
 * the lease expired on its clock; the holder stops reading locally `marginTicks` before expiry on
 * its own clock, counted from when it proposed (earlier than any other replica could see the
 * grant). Assumption: clocks advance at the same rate within the margin (ticks in the simulator).
 * A stack instance reads locally only after one sync through the log or a granted acquire:
 * applied state is flushed periodically, so a holder that restarts may have lost applied (and
 * acknowledged) entries until it plays the log to its tail again.
 *
 *   header lease = { proposer } on every entry, or { acquire: [holder, epoch, startTick] }
 *   LocalStore key  E/lease  →  msgpackr [holder, epoch, startTick]
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine, withHeader } from './layered-engine.js';
import type { IEngine, ReadOnlySnapshot, StackEntry, Transaction } from './types.js';

const HEADER = 'lease';
const LEASE_KEY = new TextEncoder().encode('E/lease');
const packr = new Packr({ useRecords: false, moreTypes: false });

export interface LeaseState {
  /** 0: nobody. */
  readonly holder: number;
  readonly epoch: number;
  readonly startTick: number;
}

export interface LeaseOptions {
  readonly leaseTicks: number;
  readonly marginTicks: number;
  /**
   * Sends a proposal to the lease holder's stack (an RPC in production, a direct call in the
   * simulator). Without it, a non-holder's proposal is refused at apply time while a lease exists.
   */
  readonly forward?: (holder: number, entry: StackEntry) => Promise<unknown>;
}

export class LeaseEngine extends LayeredEngine {
  private lease: LeaseState = { holder: 0, epoch: 0, startTick: 0 };
  /** Set by the first sync through the log (or granted acquire) of this instance (header comment). */
  private playedToTail = false;
  localReads = 0;
  forwarded = 0;

  constructor(
    lower: IEngine,
    store: ReadView,
    private readonly replicaId: number,
    private readonly clock: { now(): number },
    private readonly localSnapshot: () => ReadOnlySnapshot,
    private readonly options: LeaseOptions = { leaseTicks: 200, marginTicks: 20 },
  ) {
    super(HEADER, lower, store, true);
    const stored = store.get(LEASE_KEY);
    if (stored !== undefined) {
      const [holder, epoch, startTick] = packr.unpack(stored) as [number, number, number];
      this.lease = { holder, epoch, startTick };
    }
  }

  get state(): LeaseState {
    return this.lease;
  }

  holdsValidLease(): boolean {
    const { holder, startTick } = this.lease;
    return holder === this.replicaId && this.clock.now() < startTick + this.options.leaseTicks - this.options.marginTicks;
  }

  /** True when nobody holds a lease that may still be valid on any replica. */
  leaseExpired(): boolean {
    return this.lease.holder === 0 || this.clock.now() > this.lease.startTick + this.options.leaseTicks;
  }

  /**
   * Acquires (when expired) or renews (when held) the lease. Resolves with whether this replica
   * holds it afterwards.
   */
  async acquire(): Promise<boolean> {
    if (this.lease.holder !== this.replicaId && !this.leaseExpired()) return false;
    const acquire = [this.replicaId, this.lease.epoch, this.clock.now()];
    const granted = await this.lower.propose({ headers: { [HEADER]: { acquire } }, body: null });
    // Played to our own grant: everything acknowledged before it is applied here, and after it
    // only this instance's entries are accepted.
    if (granted === true) this.playedToTail = true;
    return granted === true;
  }

  override propose(entry: StackEntry): Promise<unknown> {
    const holder = this.lease.holder;
    if (this.options.forward !== undefined && holder !== 0 && holder !== this.replicaId && !this.leaseExpired()) {
      this.forwarded++;
      return this.options.forward(holder, entry);
    }
    return super.propose(withHeader(entry, HEADER, { proposer: this.replicaId }));
  }

  override sync(): Promise<ReadOnlySnapshot> {
    if (this.playedToTail && this.holdsValidLease()) {
      this.localReads++;
      return Promise.resolve(this.localSnapshot());
    }
    return this.syncThroughLog();
  }

  private async syncThroughLog(): Promise<ReadOnlySnapshot> {
    const snapshot = await super.sync();
    this.playedToTail = true;
    return snapshot;
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER] as { acquire?: [number, number, number]; proposer?: number } | undefined;
    if (header?.acquire !== undefined) {
      const [holder, epoch, startTick] = header.acquire;
      if (epoch !== this.lease.epoch) return false;
      this.lease = { holder, epoch: epoch + 1, startTick };
      transaction.put(LEASE_KEY, packr.pack([holder, epoch + 1, startTick]));
      return true;
    }
    if (header?.proposer !== undefined && this.lease.holder !== 0 && header.proposer !== this.lease.holder) {
      throw new PaxosStoreError('PRECONDITION_FAILED', `replica ${this.lease.holder} holds the lease`, { leaseHolder: this.lease.holder });
    }
    return this.applyUpper(transaction, entry, position);
  }
}
