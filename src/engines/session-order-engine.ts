/**
 * SessionOrderEngine (Zelos's session ordering): proposals of one session apply in the order the
 * session issued them, even though they are pipelined (several in the log at once, possibly from
 * different replicas, possibly reordered by the leaderless log).
 *
 * Each proposal carries [sessionId, sequence]. Apply keeps the next expected sequence per session
 * in the LocalStore; an entry ahead of it is filtered (no effect, result FILTERED) and its
 * proposer proposes it again; an entry behind it is a duplicate and also filtered. So every
 * replica applies exactly the in-order prefix, at the same positions.
 *
 *   header session = [sessionId: str, sequence: uint]
 *   LocalStore key  E/session/<sessionId>  →  msgpackr [nextSequence]
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine, withHeader } from './layered-engine.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'session';
const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
/** Re-proposals of one entry before its caller gets CONTENTION (bounded retries). */
export const REPROPOSALS_MAX = 64;

const FILTERED = Object.freeze({ filtered: true });

export class SessionOrderEngine extends LayeredEngine {
  filteredCount = 0;

  constructor(lower: IEngine, store: ReadView, startEnabled = true) {
    super(HEADER, lower, store, startEnabled);
  }

  /** A client session; its proposals apply in the order of `propose` calls. */
  openSession(sessionId: string): Session {
    return new Session(this, sessionId);
  }

  /** Proposes `entry` as `sequence` of `sessionId`, again and again while it is filtered. */
  async proposeInSession(entry: StackEntry, sessionId: string, sequence: number): Promise<unknown> {
    const tagged = withHeader(entry, HEADER, [sessionId, sequence]);
    for (let attempt = 0; attempt < REPROPOSALS_MAX; attempt++) {
      const result = await this.lower.propose(tagged);
      if (result !== FILTERED) return result;
    }
    throw new PaxosStoreError('CONTENTION', `session ${sessionId}: entry ${sequence} kept arriving out of order`);
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER];
    if (!Array.isArray(header)) return this.upper.apply(transaction, entry, position);
    const [sessionId, sequence] = header as [string, number];
    const key = encoder.encode(`E/session/${sessionId}`);
    const stored = transaction.get(key);
    const expected = stored === undefined ? 0 : (packr.unpack(stored) as [number])[0];
    if (sequence !== expected) {
      this.filteredCount++;
      return FILTERED;
    }
    transaction.put(key, packr.pack([expected + 1]));
    return this.upper.apply(transaction, entry, position);
  }
}

export class Session {
  private nextSequence = 0;

  constructor(
    private readonly engine: SessionOrderEngine,
    readonly sessionId: string,
  ) {}

  propose(entry: StackEntry): Promise<unknown> {
    return this.engine.proposeInSession(entry, this.sessionId, this.nextSequence++);
  }
}
