/**
 * The engine-stack boundary (Delos, SOSP 2021, figure 2). Every engine implements IEngine for the
 * layer above and IApplicator for the layer below; the application is the top IApplicator.
 *
 *   app ──propose──► engine N ──propose──► … ──► BaseEngine ──append──► VirtualLog
 *   app ◄──apply──── engine N ◄──apply──── … ◄── BaseEngine ◄──readNext──┘   (one apply loop)
 *
 * An entry on the log is one msgpackr value:
 *
 *   ┌─────────────────────────────────────┬──────────────┐
 *   │ headers: { engineName: header, … }  │ body: any    │
 *   └─────────────────────────────────────┴──────────────┘
 *
 * Headers are a map keyed by engine name, not a push/pop stack: an engine that is added, removed
 * or still passive on some replicas (two-phase upgrade) never shifts another engine's header.
 */
import type { ReadView } from '../storage/engine.js';

export interface StackEntry {
  readonly headers: Readonly<Record<string, unknown>>;
  readonly body: unknown;
}

/**
 * One LocalStore transaction: every write of one entry commits atomically with the cursor. Each
 * layer runs in its own sub-transaction (transaction.ts has the nesting rule).
 */
export interface Transaction {
  get(key: Uint8Array): Uint8Array | undefined;
  put(key: Uint8Array, value: Uint8Array): void;
  delete(key: Uint8Array): void;
  /** A sub-transaction: it reads through this one; its writes reach this one only on commit. */
  nested(): SubTransaction;
}

export interface SubTransaction extends Transaction {
  commit(): void;
  rollback(): void;
}

export interface IApplicator {
  /**
   * Applies one entry inside `transaction` (this layer's own sub-transaction). Runs on the single
   * apply loop, in log order, on every replica: it must be deterministic. What it returns (or
   * throws) goes back to the proposer; a throw rolls back this layer's sub-transaction only.
   */
  apply(transaction: Transaction, entry: StackEntry, position: number): unknown;
  /**
   * After the entry's transaction committed (its state is visible to readers, though not yet
   * necessarily flushed to disk: after a crash the entry is applied again from the log, so what
   * postApply does outside the LocalStore must tolerate running twice for one position).
   */
  postApply(entry: StackEntry, position: number): void;
}

/** A point-in-time read-only view of the LocalStore; release it when done. */
export interface ReadOnlySnapshot extends ReadView {
  release(): void;
}

export interface IEngine {
  /** Resolves with the result of `apply` once the entry is durable in the log, played and applied. */
  propose(entry: StackEntry): Promise<unknown>;
  /** Plays the log to its tail (or answers locally, e.g. a lease holder) and returns a snapshot. */
  sync(): Promise<ReadOnlySnapshot>;
  registerUpcall(applicator: IApplicator): void;
  /** The layer above allows trimming the log below `position`. */
  setTrimPrefix(position: number): void;
}
