/**
 * Simulated clients: each runs one request at a time against a random replica, on a small key
 * set so proposals collide, with every operation kind (set incl. CAS/NX/XX, delete, incr, append,
 * linearizable and local get). An attempt that times out or fails indeterminately is retried with
 * the SAME request id (at a random replica), so dedup is exercised; all attempts of one request
 * form one history operation, from the first invocation to the final answer.
 */
import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';
import { DETERMINATE_ERROR_CODES, type HistoryOperation, type Outcome } from '../check/history.js';
import type { PaxosStoreError } from '../errors.js';
import type { Outcome as CompletionOutcome } from '../scheduler/scheduler.js';
import type { Random } from '../util/random.js';
import type { SimCluster } from './cluster.js';

export interface WorkloadOptions {
  readonly clientCount: number;
  readonly keys: readonly string[];
  /** A client abandons an attempt after this many ticks and retries. */
  readonly attemptTimeoutTicks: number;
  /** Retries of one request during the fault phase; in the liveness phase retries are unbounded. */
  readonly retriesMax: number;
  /** Pause between a client's requests is uniform in [1, thinkTicksMax]. */
  readonly thinkTicksMax: number;
}

interface PendingRequest {
  readonly key: string;
  readonly operation: KeyOperation;
  readonly requestId: RequestId;
  readonly invokeTime: number;
  attempt: number;
}

const encoder = new TextEncoder();

export class Workload {
  readonly history: HistoryOperation[] = [];
  /** Requests not answered yet, by client. */
  private readonly pending = new Map<string, PendingRequest>();
  private readonly lastVersion = new Map<string, number>();
  private issuing = true;
  private unboundedRetries = false;

  constructor(
    private readonly cluster: SimCluster,
    private readonly random: Random,
    private readonly options: WorkloadOptions,
  ) {
    for (let index = 0; index < options.clientCount; index++) {
      const clientId = `c${index}`;
      this.scheduleNext(clientId, 0);
    }
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Liveness phase: no new requests; pending ones retry until answered. */
  drain(): void {
    this.issuing = false;
    this.unboundedRetries = true;
  }

  /** Requests still unanswered (each still pending at the end of the liveness phase is a failure). */
  pendingDescriptions(): string[] {
    return [...this.pending.entries()].map(([clientId, request]) => `${clientId} ${request.operation.kind} ${request.key} since t=${request.invokeTime} (attempt ${request.attempt})`);
  }

  /** Records pending requests as unknown (the end of a run that is not checked for liveness). */
  abandonPending(): void {
    for (const [clientId, request] of this.pending) this.record(clientId, request, Number.POSITIVE_INFINITY, { type: 'unknown' });
    this.pending.clear();
  }

  private sequences = new Map<string, number>();

  private scheduleNext(clientId: string, delay: number): void {
    this.cluster.events.schedule(this.cluster.now + delay + 1, () => {
      if (!this.issuing) return;
      const key = this.random.pick(this.options.keys);
      const sequence = (this.sequences.get(clientId) ?? 0) + 1;
      this.sequences.set(clientId, sequence);
      const request: PendingRequest = {
        key,
        operation: this.randomOperation(clientId, key, sequence),
        requestId: { clientId, timestampMs: this.cluster.now, sequence },
        invokeTime: this.cluster.now,
        attempt: 0,
      };
      this.pending.set(clientId, request);
      this.attempt(clientId, request);
    });
  }

  private attempt(clientId: string, request: PendingRequest): void {
    const attempt = ++request.attempt;
    const replicaId = this.random.pick(this.cluster.replicaIds);
    const replica = this.cluster.replica(replicaId);
    const stillCurrent = (): boolean => this.pending.get(clientId) === request && request.attempt === attempt;
    this.cluster.events.schedule(this.cluster.now + this.options.attemptTimeoutTicks, () => {
      if (stillCurrent()) this.retryOrGiveUp(clientId, request);
    });
    // A request sent to a crashed replica is simply lost; the timeout above retries it.
    replica?.submit(encoder.encode(request.key), request.operation, request.requestId, (outcome) => {
      if (stillCurrent()) this.onAnswer(clientId, request, outcome);
    });
  }

  private onAnswer(clientId: string, request: PendingRequest, outcome: CompletionOutcome<KeyResult>): void {
    // An earlier attempt of a retried write may still be running at another replica and apply
    // later, so "not applied" or WRONG_TYPE from a retry only says what this attempt saw: the
    // request's fate is unknown (dedup guarantees at most one application, not which attempt).
    const retriedWrite = request.attempt > 1 && request.operation.kind !== 'get';
    const notApplied = outcome.ok ? !outcome.value.applied : DETERMINATE_ERROR_CODES.has(outcome.error.code);
    if (retriedWrite && notApplied) {
      this.pending.delete(clientId);
      this.record(clientId, request, Number.POSITIVE_INFINITY, { type: 'unknown' });
      this.scheduleNext(clientId, this.random.range(1, this.options.thinkTicksMax));
      return;
    }
    if (outcome.ok) {
      this.lastVersion.set(request.key, outcome.value.version);
      this.finish(clientId, request, { type: 'ok', result: outcome.value });
      return;
    }
    const error: PaxosStoreError = outcome.error;
    if (DETERMINATE_ERROR_CODES.has(error.code)) {
      this.finish(clientId, request, { type: 'error', code: error.code });
      return;
    }
    // Indeterminate (CONTENTION, NO_QUORUM, TIMEOUT, OVERLOADED, …): retry with the same id shortly.
    const retryAt = request.attempt;
    this.cluster.events.schedule(this.cluster.now + 1 + this.random.int(10), () => {
      if (this.pending.get(clientId) === request && request.attempt === retryAt) this.retryOrGiveUp(clientId, request);
    });
  }

  private retryOrGiveUp(clientId: string, request: PendingRequest): void {
    if (!this.unboundedRetries && request.attempt > this.options.retriesMax) {
      this.pending.delete(clientId);
      this.record(clientId, request, Number.POSITIVE_INFINITY, { type: 'unknown' });
      this.scheduleNext(clientId, this.random.range(1, this.options.thinkTicksMax));
      return;
    }
    this.attempt(clientId, request);
  }

  private finish(clientId: string, request: PendingRequest, outcome: Outcome): void {
    this.pending.delete(clientId);
    // Half a tick after the event: an operation invoked later in this same tick is concurrent with
    // it (lenient), one invoked at a later tick is after it.
    this.record(clientId, request, this.cluster.now + 0.5, outcome);
    this.scheduleNext(clientId, this.random.range(1, this.options.thinkTicksMax));
  }

  private record(clientId: string, request: PendingRequest, returnTime: number, outcome: Outcome): void {
    this.history.push({ clientId, key: request.key, operation: request.operation, invokeTime: request.invokeTime, returnTime, outcome });
  }

  private randomOperation(clientId: string, key: string, sequence: number): KeyOperation {
    const random = this.random;
    const roll = random.int(100);
    const uniqueValue = (): Uint8Array => encoder.encode(random.chance(0.5) ? String(random.range(-50, 50)) : `${clientId}.${sequence}`);
    if (roll < 22) return { kind: 'get', consistency: 'linearizable' };
    if (roll < 30) return { kind: 'get', consistency: 'local' };
    if (roll < 45) return { kind: 'set', value: uniqueValue() };
    if (roll < 55) {
      const known = this.lastVersion.get(key) ?? 0;
      return { kind: 'set', value: uniqueValue(), ifVersion: random.chance(0.8) ? known : random.range(0, known + 2) };
    }
    if (roll < 60) return { kind: 'set', value: uniqueValue(), onlyIfAbsent: true };
    if (roll < 64) return { kind: 'set', value: uniqueValue(), onlyIfPresent: true };
    if (roll < 72) {
      const known = this.lastVersion.get(key);
      return known !== undefined && random.chance(0.5) ? { kind: 'delete', ifVersion: known } : { kind: 'delete' };
    }
    if (roll < 88) return { kind: 'incr', delta: BigInt(random.range(-3, 7)) };
    return { kind: 'append', value: encoder.encode(random.pick(['a', 'b', 'c', '1'])) };
  }
}
