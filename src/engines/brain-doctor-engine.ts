/**
 * BrainDoctorEngine: an operator call that proposes raw LocalStore writes, applied on every
 * replica at the same log position, to repair state a bug corrupted (Delos §5.1). The writes
 * bypass the application entirely; the entry then reaches it as a control entry (body null).
 *
 *   header brainDoctor = [[0 = put | 1 = delete, key: bin, value: bin | nil], …]
 */
import { PaxosStoreError } from '../errors.js';
import type { ReadView, WriteOperation } from '../storage/engine.js';
import { validateWrite, VALUE_BYTES_MAX_DEFAULT } from '../storage/engine.js';
import { LayeredEngine } from './layered-engine.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'brainDoctor';
/** One repair is one log entry: keep it small. */
export const REPAIR_WRITES_MAX = 1024;

export class BrainDoctorEngine extends LayeredEngine {
  constructor(lower: IEngine, store: ReadView, startEnabled = true) {
    super(HEADER, lower, store, startEnabled);
  }

  /** Proposes `writes`; resolves once they are applied here (and will be on every replica). */
  async repair(writes: readonly WriteOperation[]): Promise<void> {
    if (writes.length === 0 || writes.length > REPAIR_WRITES_MAX) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `a repair holds 1..${REPAIR_WRITES_MAX} writes`);
    }
    for (const write of writes) validateWrite(write, VALUE_BYTES_MAX_DEFAULT);
    const header = writes.map((write) => (write.type === 'put' ? [0, write.key, write.value] : [1, write.key, null]));
    await this.lower.propose({ headers: { [HEADER]: header }, body: null });
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER];
    if (Array.isArray(header)) {
      for (const [kind, key, value] of header as [number, Uint8Array, Uint8Array | null][]) {
        if (kind === 0 && value !== null) transaction.put(new Uint8Array(key), new Uint8Array(value));
        else transaction.delete(new Uint8Array(key));
      }
    }
    return this.applyUpper(transaction, entry, position);
  }
}
