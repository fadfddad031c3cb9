/** Request deadlines of a shard worker (src/server/shard-worker.ts). */
import { PaxosStoreError } from '../errors.js';
import type { RequestOutcome } from '../ipc/channel.js';

/**
 * A client gets TIMEOUT after `requestTimeoutMs` even if its coroutine is still trying (its own
 * bounds end it later). TIMEOUT is indeterminate for writes: a retry with the same request id
 * is deduplicated, so the client can safely retry.
 *
 * No timer per request: every request has the same timeout, so a Set in arrival order is also in
 * deadline order, and the worker's ticker (every 2 ms while requests are in flight, 20 ms
 * otherwise) ends the expired ones at its head. A request that finishes leaves the Set at once.
 */
export class RequestDeadlines {
  private readonly pending = new Set<{ readonly deadlineMs: number; readonly reply: (outcome: RequestOutcome) => void }>();

  constructor(
    private readonly timeoutMs: number,
    private readonly clock: () => number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** Tracks a request; returns its completion, which replies unless the deadline replied first. */
  track(reply: (outcome: RequestOutcome) => void): (outcome: RequestOutcome) => void {
    const entry = { deadlineMs: this.clock() + this.timeoutMs, reply };
    this.pending.add(entry);
    return (outcome) => {
      if (this.pending.delete(entry)) reply(outcome);
    };
  }

  /** Replies TIMEOUT to every tracked request whose deadline is ≤ `nowMs`. */
  expire(nowMs: number): void {
    for (const entry of this.pending) {
      if (entry.deadlineMs > nowMs) return;
      this.pending.delete(entry);
      entry.reply({
        ok: false,
        error: new PaxosStoreError('TIMEOUT', `no decision within ${this.timeoutMs} ms (the write may still be applied; retry with the same request id)`),
      });
    }
  }
}
