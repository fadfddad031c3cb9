/**
 * BatchingEngine: many proposals → one log entry → one LocalStore transaction (group commit).
 * While one batch is in the log, new proposals queue; when it completes, everything queued (up to
 * `batchEntriesMax`) goes as the next batch. Each proposal applies in its own sub-transaction
 * (the general nesting of transaction.ts), so one proposal's exception drops only its own writes
 * and comes back only to its own caller.
 *
 *   batch entry body = [[headers₁, body₁], [headers₂, body₂], …]     header batch = count
 */
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine } from './layered-engine.js';
import { type ApplyOutcome, applyOutcome } from './transaction.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'batch';

interface Queued {
  readonly entry: StackEntry;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class BatchingEngine extends LayeredEngine {
  private readonly queue: Queued[] = [];
  private inFlight = false;
  batchesProposed = 0;

  constructor(
    lower: IEngine,
    store: ReadView,
    private readonly batchEntriesMax = 256,
    startEnabled = true,
  ) {
    super(HEADER, lower, store, startEnabled);
  }

  override propose(entry: StackEntry): Promise<unknown> {
    if (!this.enabled) return super.propose(entry);
    return new Promise((resolve, reject) => {
      this.queue.push({ entry, resolve, reject });
      if (!this.inFlight) void this.flush();
    });
  }

  private async flush(): Promise<void> {
    this.inFlight = true;
    // Let proposals issued in the same turn join the batch.
    await Promise.resolve();
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.batchEntriesMax);
      this.batchesProposed++;
      try {
        const body = batch.map((queued) => [queued.entry.headers, queued.entry.body]);
        const outcomes = (await this.lower.propose({ headers: { [HEADER]: batch.length }, body })) as ApplyOutcome[];
        batch.forEach((queued, index) => {
          const outcome = outcomes[index];
          if (outcome.ok) queued.resolve(outcome.value);
          else queued.reject(outcome.error);
        });
      } catch (error) {
        for (const queued of batch) queued.reject(error);
      }
    }
    this.inFlight = false;
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    if (typeof entry.headers[HEADER] !== 'number' || !Array.isArray(entry.body)) return this.applyUpper(transaction, entry, position);
    return (entry.body as [Record<string, unknown>, unknown][]).map(([headers, body]) =>
      applyOutcome(transaction, (sub) => this.upper.apply(sub, { headers, body }, position)),
    );
  }

  override postApply(entry: StackEntry, position: number): void {
    if (!this.enabled || typeof entry.headers[HEADER] !== 'number' || !Array.isArray(entry.body)) {
      this.upper.postApply(entry, position);
      return;
    }
    for (const [headers, body] of entry.body as [Record<string, unknown>, unknown][]) this.upper.postApply({ headers, body }, position);
  }
}
