/**
 * The common shape of a middle engine: IEngine for the layer above, IApplicator for the layer
 * below, pass-through by default. Also the two-phase upgrade (Delos §5):
 *
 *   phase 1: the engine ships in passive mode: it adds its header on propose but its apply
 *            changes no state (every replica, upgraded or not, computes the same LocalStore);
 *   phase 2: `enable()` proposes a control entry { headers: { enable: <name> }, body: null };
 *            every replica applies it at the same position and from there on runs the engine.
 *
 *   LocalStore key  E/enabled/<name>  →  msgpackr [position of the enable entry]
 *
 * Control entries (body null) reach the application too; applicators ignore a null body.
 *
 * Every call up the stack goes through `applyUpper`: the layer above runs in its own
 * sub-transaction, so its exception rolls back only its writes (transaction.ts).
 */
import { Packr } from 'msgpackr';
import type { ReadView } from '../storage/engine.js';
import { assert } from '../util/assert.js';
import { applyInSubTransaction } from './transaction.js';
import type { IApplicator, IEngine, ReadOnlySnapshot, StackEntry, Transaction } from './types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
export const ENABLE_HEADER = 'enable';

export abstract class LayeredEngine implements IEngine, IApplicator {
  private upperApplicator: IApplicator | null = null;
  private enabledPosition: number | null;

  constructor(
    readonly name: string,
    protected readonly lower: IEngine,
    store: ReadView,
    /** Active from the start (a fresh deployment) or passive until a log entry enables it. */
    startEnabled: boolean,
  ) {
    const stored = store.get(this.enabledKey());
    this.enabledPosition = stored !== undefined ? (packr.unpack(stored) as [number])[0] : startEnabled ? 0 : null;
    lower.registerUpcall(this);
  }

  get enabled(): boolean {
    return this.enabledPosition !== null;
  }

  /** The log position at which this engine became active here (null while passive). */
  get enabledAt(): number | null {
    return this.enabledPosition;
  }

  protected get upper(): IApplicator {
    assert(this.upperApplicator !== null, `${this.name}: an applicator is registered`);
    return this.upperApplicator;
  }

  registerUpcall(applicator: IApplicator): void {
    assert(this.upperApplicator === null, `${this.name}: one applicator`);
    this.upperApplicator = applicator;
  }

  propose(entry: StackEntry): Promise<unknown> {
    return this.lower.propose(entry);
  }

  sync(): Promise<ReadOnlySnapshot> {
    return this.lower.sync();
  }

  setTrimPrefix(position: number): void {
    this.lower.setTrimPrefix(position);
  }

  /** Phase 2 of the upgrade: every replica switches at the position of this entry. */
  async enable(): Promise<void> {
    await this.lower.propose({ headers: { [ENABLE_HEADER]: this.name }, body: null });
  }

  apply(transaction: Transaction, entry: StackEntry, position: number): unknown {
    if (entry.headers[ENABLE_HEADER] === this.name && this.enabledPosition === null) {
      transaction.put(this.enabledKey(), packr.pack([position]));
      this.enabledPosition = position;
    }
    return this.enabled ? this.applyActive(transaction, entry, position) : this.applyUpper(transaction, entry, position);
  }

  postApply(entry: StackEntry, position: number): void {
    this.upper.postApply(entry, position);
  }

  /** The engine's own apply when enabled; the default passes through. */
  protected applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    return this.applyUpper(transaction, entry, position);
  }

  /** Applies `entry` in the layer above, inside a sub-transaction of `transaction`. */
  protected applyUpper(transaction: Transaction, entry: StackEntry, position: number): unknown {
    return applyInSubTransaction(transaction, (sub) => this.upper.apply(sub, entry, position));
  }

  private enabledKey(): Uint8Array {
    return encoder.encode(`E/enabled/${this.name}`);
  }
}

export function withHeader(entry: StackEntry, name: string, header: unknown): StackEntry {
  return { headers: { ...entry.headers, [name]: header }, body: entry.body };
}
