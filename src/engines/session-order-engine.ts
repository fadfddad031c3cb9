/**
 * SessionOrderEngine (Zelos's session ordering): proposals of one session apply in the order the
 * session issued them, even though they are pipelined (several in the log at once, possibly from
 * different replicas, possibly reordered by the leaderless log).
 *
 * Each proposal carries [sessionId, sequence, attempt]. Apply keeps the next expected sequence per
 * session in the LocalStore; a copy ahead of it is filtered (no effect) and a copy behind it is a
 * duplicate, also filtered. So every replica applies exactly the in-order prefix, at the same
 * positions, and each sequence number at most once.
 *
 * Callers are completed from postApply, not from the propose path: on the proposing replica, the
 * apply of the in-order copy records its outcome and that copy's postApply resolves the caller
 * with the apply result (or rejects it with the deterministic exception). The postApply of a
 * filtered copy that is the caller's latest attempt proposes the next attempt. Because a sequence
 * number applies at most once, an attempt whose append timed out (indeterminate) is proposed
 * again too: whichever copy lands in order completes the caller.
 *
 *   header session = [sessionId: str, sequence: uint, attempt: uint]
 *   LocalStore key  E/session/<sessionId>  →  msgpackr [nextSequence]
 *
 * A session lives on one stack instance (its waiters are local); a replica that restarts loses
 * its sessions' waiters, not their effects, and continues a session with `resumeSession`.
 */
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine, withHeader } from './layered-engine.js';
import { type ApplyOutcome, IsolatedFailure } from './transaction.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'session';
const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
/** Attempts of one entry (first proposal included) before its caller gets CONTENTION. */
export const REPROPOSALS_MAX = 64;
/** Sessions' entries waiting for their in-order copy on this stack; more are refused. */
export const SESSION_WAITERS_MAX = 10_000;

const FILTERED = Object.freeze({ filtered: true });

type SessionHeader = [sessionId: string, sequence: number, attempt: number];

interface Waiter {
  readonly entry: StackEntry;
  readonly sessionId: string;
  readonly sequence: number;
  /** The latest attempt proposed; only its filtering or failure leads to another attempt. */
  attempt: number;
  /** The filtered copy of the latest attempt: ahead (re-proposed at its postApply) or behind. */
  filtered: { readonly position: number; readonly ahead: boolean } | null;
  /** Outcome and position of the in-order copy (the caller completes at its postApply). */
  applied: { readonly outcome: ApplyOutcome; readonly position: number } | null;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export class SessionOrderEngine extends LayeredEngine {
  private readonly waiters = new Map<string, Waiter>();
  filteredCount = 0;
  reproposals = 0;

  constructor(lower: IEngine, store: ReadView, startEnabled = true) {
    super(HEADER, lower, store, startEnabled);
  }

  /** A new client session; its proposals apply in the order of `propose` calls. */
  openSession(sessionId: string): Session {
    return new Session(this, sessionId, 0);
  }

  /**
   * Continues a session after a restart: plays the log to its tail and starts at the sequence the
   * log expects next. A copy the previous incarnation left in flight may still land after this
   * read; the new entry with that sequence then fails with PRECONDITION_FAILED (already applied).
   */
  async resumeSession(sessionId: string): Promise<Session> {
    const snapshot = await this.sync();
    try {
      const stored = snapshot.get(sessionKey(sessionId));
      return new Session(this, sessionId, stored === undefined ? 0 : (packr.unpack(stored) as [number])[0]);
    } finally {
      snapshot.release();
    }
  }

  /** Proposes `entry` as `sequence` of `sessionId`; resolves at the postApply of its in-order copy. */
  proposeInSession(entry: StackEntry, sessionId: string, sequence: number): Promise<unknown> {
    // Passive: no filtering happens at apply, so the first copy is the one; pass it through.
    if (!this.enabled) return super.propose(withHeader(entry, HEADER, [sessionId, sequence, 0]));
    const key = waiterKey(sessionId, sequence);
    if (this.waiters.has(key)) return Promise.reject(new PaxosStoreError('INVALID_ARGUMENT', `session ${sessionId}: sequence ${sequence} is already in flight`));
    if (this.waiters.size >= SESSION_WAITERS_MAX) return Promise.reject(new PaxosStoreError('OVERLOADED', 'too many session entries in flight'));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = { entry, sessionId, sequence, attempt: 0, filtered: null, applied: null, resolve, reject };
      this.waiters.set(key, waiter);
      this.proposeAttempt(waiter);
    });
  }

  private proposeAttempt(waiter: Waiter): void {
    const attempt = waiter.attempt;
    waiter.filtered = null;
    const copy = withHeader(waiter.entry, HEADER, [waiter.sessionId, waiter.sequence, attempt] satisfies SessionHeader);
    // The result of the lower propose is not the caller's: postApply completes it. Only a
    // failure of this attempt (nothing applied for it, as far as this replica knows) matters.
    this.lower.propose(copy).then(
      () => {},
      (error: unknown) => this.onAttemptFailed(waiter, attempt, error),
    );
  }

  private onAttemptFailed(waiter: Waiter, attempt: number, error: unknown): void {
    const key = waiterKey(waiter.sessionId, waiter.sequence);
    if (this.waiters.get(key) !== waiter || waiter.attempt !== attempt || waiter.applied !== null) return;
    // TIMEOUT is indeterminate: the copy may still land, and then a second copy is a duplicate.
    if (error instanceof PaxosStoreError && error.code === 'TIMEOUT') this.nextAttempt(waiter, error);
    else this.complete(waiter, { ok: false, error });
  }

  private nextAttempt(waiter: Waiter, cause: unknown): void {
    if (waiter.attempt + 1 >= REPROPOSALS_MAX) {
      const error = new PaxosStoreError('CONTENTION', `session ${waiter.sessionId}: entry ${waiter.sequence} not applied in order after ${REPROPOSALS_MAX} attempts`, { cause: String(cause) });
      this.complete(waiter, { ok: false, error });
      return;
    }
    waiter.attempt++;
    this.reproposals++;
    this.proposeAttempt(waiter);
  }

  private complete(waiter: Waiter, outcome: ApplyOutcome): void {
    this.waiters.delete(waiterKey(waiter.sessionId, waiter.sequence));
    if (outcome.ok) waiter.resolve(outcome.value);
    else waiter.reject(outcome.error);
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = parseHeader(entry.headers[HEADER]);
    if (header === null) return this.applyUpper(transaction, entry, position);
    const [sessionId, sequence, attempt] = header;
    const key = sessionKey(sessionId);
    const stored = transaction.get(key);
    const expected = stored === undefined ? 0 : (packr.unpack(stored) as [number])[0];
    const waiter = this.waiters.get(waiterKey(sessionId, sequence));
    if (sequence !== expected) {
      this.filteredCount++;
      if (waiter !== undefined && waiter.attempt === attempt) waiter.filtered = { position, ahead: sequence > expected };
      return FILTERED;
    }
    transaction.put(key, packr.pack([expected + 1]));
    if (waiter === undefined) return this.applyUpper(transaction, entry, position);
    try {
      const value = this.applyUpper(transaction, entry, position);
      waiter.applied = { outcome: { ok: true, value }, position };
      return value;
    } catch (error) {
      if (error instanceof IsolatedFailure) waiter.applied = { outcome: { ok: false, error: error.error }, position };
      throw error;
    }
  }

  override postApply(entry: StackEntry, position: number): void {
    super.postApply(entry, position);
    const header = this.enabled ? parseHeader(entry.headers[HEADER]) : null;
    if (header === null) return;
    const waiter = this.waiters.get(waiterKey(header[0], header[1]));
    if (waiter === undefined) return;
    if (waiter.applied !== null) {
      if (waiter.applied.position === position) this.complete(waiter, waiter.applied.outcome);
      return;
    }
    if (waiter.filtered?.position !== position || waiter.attempt !== header[2]) return;
    if (waiter.filtered.ahead) {
      this.nextAttempt(waiter, 'filtered');
      return;
    }
    // Behind: this sequence number was consumed by another copy this stack did not propose
    // (a session id reused after a restart); applying it now would break the session's order.
    const error = new PaxosStoreError('PRECONDITION_FAILED', `session ${waiter.sessionId}: sequence ${waiter.sequence} was already applied`);
    this.complete(waiter, { ok: false, error });
  }
}

export class Session {
  constructor(
    private readonly engine: SessionOrderEngine,
    readonly sessionId: string,
    private nextSequence: number,
  ) {}

  propose(entry: StackEntry): Promise<unknown> {
    return this.engine.proposeInSession(entry, this.sessionId, this.nextSequence++);
  }
}

function parseHeader(header: unknown): SessionHeader | null {
  if (!Array.isArray(header) || typeof header[0] !== 'string' || typeof header[1] !== 'number') return null;
  // Entries written before attempts were numbered carry two fields: attempt 0.
  return [header[0], header[1], typeof header[2] === 'number' ? header[2] : 0];
}

function sessionKey(sessionId: string): Uint8Array {
  return encoder.encode(`E/session/${sessionId}`);
}

function waiterKey(sessionId: string, sequence: number): string {
  return `${sessionId}\u0000${sequence}`;
}
