/**
 * Transactions of the apply loop and the nesting rule that isolates one layer's failure.
 *
 * Every log entry is applied in one entry transaction (BaseEngine commits it together with the
 * cursor). Each layer above runs inside its own sub-transaction of the layer below it:
 *
 *   entry transaction (BaseEngine: cursor)
 *    └─ sub-transaction of engine 1 (its bookkeeping: view, lease, session sequence, …)
 *        └─ sub-transaction of engine 2
 *            └─ …
 *                └─ sub-transaction of the application (its writes)
 *
 * Rule: when a layer throws (a deterministic exception, same on every replica), only the
 * sub-transaction that layer ran in is rolled back; every layer below it still commits its own
 * bookkeeping for the entry, and the exception travels down to the proposer wrapped in
 * `IsolatedFailure` so that no lower layer rolls back again. So an application error never undoes
 * the cursor, a view report, a lease renewal or a session's sequence number of the same entry.
 * Engines change their in-memory state only in the same call that writes it to their
 * sub-transaction, and never throw after having done so.
 */
import type { WriteOperation } from '../storage/engine.js';
import { assert } from '../util/assert.js';
import { keyName } from '../util/byte-codec.js';
import type { SubTransaction, Transaction } from './types.js';

/** An exception of some layer whose sub-transaction was already rolled back. */
export class IsolatedFailure {
  constructor(readonly error: unknown) {}
}

export type ApplyOutcome = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: unknown };

/**
 * Writes buffered over a read source (the applied state, or a parent transaction); reads see them
 * first. Most layers write nothing for most entries, so the write Map is created on first write.
 */
export class StoreTransaction implements SubTransaction {
  private writes: Map<string, WriteOperation> | null = null;
  private finished = false;

  constructor(
    private readonly base: { get(key: Uint8Array): Uint8Array | undefined },
    /** Where `commit` sends the writes (null: the owner takes them with `operations()`). */
    private readonly parent: StoreTransaction | null = null,
  ) {}

  get(key: Uint8Array): Uint8Array | undefined {
    const write = this.writes?.get(keyName(key));
    if (write !== undefined) return write.type === 'put' ? write.value : undefined;
    return this.base.get(key);
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.write({ type: 'put', key, value });
  }

  delete(key: Uint8Array): void {
    this.write({ type: 'delete', key });
  }

  nested(): SubTransaction {
    assert(!this.finished, 'no sub-transaction after commit or rollback');
    return new StoreTransaction(this, this);
  }

  commit(): void {
    assert(this.parent !== null && !this.finished, 'commit once, into a parent');
    this.finished = true;
    if (this.writes !== null) this.parent.absorb(this.writes);
  }

  rollback(): void {
    assert(!this.finished, 'roll back once');
    this.finished = true;
    this.writes = null;
  }

  /** The writes of a top-level transaction, for one LocalStore batch. */
  operations(): WriteOperation[] {
    return this.writes === null ? [] : [...this.writes.values()];
  }

  private write(operation: WriteOperation): void {
    assert(!this.finished, 'no write after commit or rollback');
    this.writes ??= new Map();
    this.writes.set(keyName(operation.key), operation);
  }

  /** A committed sub-transaction's writes, already keyed by name. */
  private absorb(writes: ReadonlyMap<string, WriteOperation>): void {
    assert(!this.finished, 'no write after commit or rollback');
    if (this.writes === null) {
      this.writes = new Map(writes);
      return;
    }
    for (const [name, operation] of writes) this.writes.set(name, operation);
  }
}

/**
 * Runs `work` in a sub-transaction of `transaction` and commits it; when `work` throws, rolls back
 * only this sub-transaction (unless a layer above already did) and rethrows as IsolatedFailure.
 */
export function applyInSubTransaction<T>(transaction: Transaction, work: (sub: Transaction) => T): T {
  const sub = transaction.nested();
  try {
    const value = work(sub);
    sub.commit();
    return value;
  } catch (error) {
    if (error instanceof IsolatedFailure) {
      // The thrower's sub-transaction (above this one) is already rolled back; keep ours.
      sub.commit();
      throw error;
    }
    sub.rollback();
    throw new IsolatedFailure(error);
  }
}

/** Like applyInSubTransaction, but returns the outcome instead of throwing (the bottom of a nesting). */
export function applyOutcome(transaction: Transaction, work: (sub: Transaction) => unknown): ApplyOutcome {
  try {
    return { ok: true, value: applyInSubTransaction(transaction, work) };
  } catch (error) {
    assert(error instanceof IsolatedFailure, 'applyInSubTransaction throws only IsolatedFailure');
    return { ok: false, error: error.error };
  }
}
