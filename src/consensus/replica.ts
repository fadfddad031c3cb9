/**
 * A replica of one shard: the pure core (ReplicaCore) + the coroutine scheduler + the injected
 * world (durable storage with group commit, a transport to peers, a random source). This is what
 * a shard worker constructs with a real KvEngine and peer links, and what the simulator
 * constructs with simulated ones.
 *
 *   submit/execute ─► scheduler.spawn(executeOperation coroutine)
 *   receive(from, messages) ─► core.step(...)          } then runTurn():
 *   tick() ─► core.tick(), scheduler.tick()             }   one group commit, one send per peer
 *
 * Recovery at start: nothing to replay. The core loads a key's PaxosLog record from storage on
 * first use (storage.load is synchronous, like KvEngine.get), so a restarted replica recovers its
 * promises, accepts and chosen entries lazily, key by key; a key that is behind catches up from
 * the first message of a peer that is ahead (or from the first consistent read on it).
 */
import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import { type Completion, Scheduler, SCHEDULER_LIMITS_DEFAULT, type SchedulerLimits } from '../scheduler/scheduler.js';
import { KEY_BYTES_MAX, type KvEngine, VALUE_BYTES_MAX_DEFAULT } from '../storage/engine.js';
import type { Random } from '../util/random.js';
import { type ConsensusConfig, type ReplicaBugs, resolveConsensusConfig } from './config.js';
import { isValidPeerMessage, type PeerMessage } from './messages.js';
import { executeOperation, type ProcedureContext } from './procedures.js';
import { keyName } from '../util/byte-codec.js';
import { type PersistRecord, ReplicaCore } from './replica-core.js';
import { RoundTripEstimator } from './round-trip-estimator.js';

/** Durable storage of PaxosLog records (one per key). */
export interface ReplicaStorage {
  /** The last record committed for the key (synchronous; KvEngine.get). */
  load(key: Uint8Array): Uint8Array | undefined;
  /** One group commit: `done()` once all records are durable, `done(error)` if they may not be. */
  commit(records: readonly PersistRecord[], done: (error?: Error) => void): void;
}

/** Storage over a KvEngine: the PaxosLog record is the value under the key (PaxosLog-as-value). */
export function engineStorage(engine: KvEngine): ReplicaStorage {
  return {
    load: (key) => engine.get(key),
    commit: (records, done) => {
      engine.batch(records.map((record) => ({ type: 'put' as const, key: record.key, value: record.value }))).then(
        () => done(),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    },
  };
}

/** Sends one batch of messages to a peer (called at most once per peer per scheduler turn). */
export type Transport = (peer: number, messages: readonly PeerMessage[]) => void;

export interface ReplicaOptions {
  readonly replicaId: number;
  /** All replicas of the group (3 or 5), this one included; ids ≥ 1, the same everywhere. */
  readonly replicaIds: readonly number[];
  readonly storage: ReplicaStorage;
  readonly transport: Transport;
  /** Backoff jitter; seeded in the simulator. */
  readonly random: Random;
  readonly config?: Partial<ConsensusConfig>;
  readonly limits?: Partial<SchedulerLimits>;
  /** Keys whose state stays in memory (default 100 000); idle ones beyond are evicted, least recently used first (CLOCK approximation). */
  readonly keysInMemoryMax?: number;
  /** Largest value accepted from a client (default VALUE_BYTES_MAX_DEFAULT). */
  readonly valueBytesMax?: number;
  /**
   * 'auto' (default): a turn runs by itself (setImmediate) after any input, coalescing inputs of
   * the same event-loop pass. 'manual': the caller runs `runTurn()` (the simulator does).
   */
  readonly turns?: 'auto' | 'manual';
  /**
   * The disk of this replica was wiped (or replaced): keys without a record are probed before this
   * replica votes on them again (replica-core.ts). Keep it on until every key was rewritten here.
   */
  readonly rebuilding?: boolean;
  /** TEST ONLY: protocol bugs for bug-injection tests. */
  readonly bugs?: ReplicaBugs;
}

export interface ReplicaCounters {
  requests: number;
  peerMessages: number;
  peerMessagesRejected: number;
  commits: number;
  recordsCommitted: number;
  keysEvicted: number;
}

export class Replica {
  readonly core: ReplicaCore;
  readonly counters: ReplicaCounters = { requests: 0, peerMessages: 0, peerMessagesRejected: 0, commits: 0, recordsCommitted: 0, keysEvicted: 0 };
  private readonly scheduler: Scheduler<PersistRecord, PeerMessage>;
  private readonly context: ProcedureContext;
  /** Adaptive resend interval and timeouts (round-trip-estimator.ts); read for metrics. */
  readonly roundTrips: RoundTripEstimator;
  private readonly valueBytesMax: number;
  private turnScheduled = false;
  private closed = false;

  constructor(private readonly options: ReplicaOptions) {
    validateMembership(options.replicaId, options.replicaIds);
    const config = resolveConsensusConfig(options.config);
    const bugs = options.bugs ?? {};
    this.valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    this.core = new ReplicaCore({
      replicaId: options.replicaId,
      replicaIds: options.replicaIds,
      load: (key) => options.storage.load(key),
      fetchIntervalTicks: config.fetchIntervalTicks,
      rebuilding: options.rebuilding,
      keysInMemoryMax: options.keysInMemoryMax,
      bugs,
    });
    const core = this.core;
    this.scheduler = new Scheduler<PersistRecord, PeerMessage>(
      {
        takeTouchedKeys: () => core.takeTouchedKeys(),
        takeEffects: () => core.takeEffects(),
        commit: (records, done) => {
          this.counters.commits++;
          this.counters.recordsCommitted += records.length;
          options.storage.commit(records, (error) => {
            if (error === undefined) core.onCommitted(records);
            done(error);
          });
        },
        send: (peer, messages) => options.transport(peer, messages),
        resultIsDurable: (name) => core.isChosenDurable(name),
      },
      { ...SCHEDULER_LIMITS_DEFAULT, ...options.limits },
      { releaseBeforeDurable: bugs.replyBeforePersist === true },
    );
    this.roundTrips = new RoundTripEstimator(config);
    this.context = { core, config, roundTrips: this.roundTrips, random: options.random, bugs };
  }

  get inFlight(): number {
    return this.scheduler.inFlight;
  }

  /** Starts a client operation; `complete` is called once, after its effects are durable. */
  submit(key: Uint8Array, operation: KeyOperation, requestId: RequestId, complete: Completion<KeyResult>): void {
    this.counters.requests++;
    try {
      validateRequest(key, operation, requestId, this.valueBytesMax);
    } catch (error) {
      complete({ ok: false, error: error as PaxosStoreError });
      return;
    }
    this.scheduler.spawn(keyName(key), executeOperation(this.context, key, operation, requestId), complete);
    this.afterInput();
  }

  /** Promise form of submit; rejects only with PaxosStoreError. */
  execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    return new Promise((resolve, reject) => {
      this.submit(key, operation, requestId, (outcome) => (outcome.ok ? resolve(outcome.value) : reject(outcome.error)));
    });
  }

  /** Delivers a batch of peer messages (already decoded by the transport). */
  receive(from: number, messages: readonly PeerMessage[]): void {
    if (this.closed) return;
    for (const message of messages) {
      this.counters.peerMessages++;
      if (!this.core.peers.includes(from) || !isValidPeerMessage(message, KEY_BYTES_MAX)) {
        this.counters.peerMessagesRejected++;
        continue;
      }
      try {
        this.core.step(from, message);
      } catch (error) {
        if (!(error instanceof PaxosStoreError)) throw error;
        this.counters.peerMessagesRejected++; // e.g. CORRUPTION of this key's record: this key cannot take part
      }
    }
    this.afterInput();
  }

  /** Advances time by `ticks` (timers, resends, backoff). */
  tick(ticks = 1): void {
    if (this.closed) return;
    this.core.tick(ticks);
    this.scheduler.tick(ticks);
    // Time alone changes nothing for an idle replica: a turn is due only for waiting coroutines
    // (timeouts, backoffs) or the core's timers (rebuild probes that may have been re-sent).
    if (this.scheduler.inFlight > 0 || this.core.hasTimers) this.afterInput();
  }

  runTurn(): void {
    this.turnScheduled = false;
    this.scheduler.runTurn();
    this.counters.keysEvicted += this.core.evictIdle((name) => this.scheduler.isIdle(name));
  }

  /** Fails everything in flight with CLOSED; the storage is the caller's to close. */
  close(): void {
    this.closed = true;
    this.scheduler.close(new PaxosStoreError('CLOSED', 'replica closed'));
  }

  private afterInput(): void {
    if (this.options.turns === 'manual' || this.turnScheduled || this.closed) return;
    this.turnScheduled = true;
    setImmediate(() => this.runTurn());
  }
}

function validateMembership(replicaId: number, replicaIds: readonly number[]): void {
  const valid =
    replicaIds.length >= 1 &&
    replicaIds.every((id) => Number.isSafeInteger(id) && id >= 1) &&
    new Set(replicaIds).size === replicaIds.length &&
    replicaIds.includes(replicaId);
  if (!valid) throw new PaxosStoreError('INVALID_ARGUMENT', 'replicaIds must be distinct positive integers including replicaId', { replicaId, replicaIds });
}

/** The public boundary of a request: everything past it trusts its inputs. */
export function validateRequest(key: Uint8Array, operation: KeyOperation, requestId: RequestId, valueBytesMax: number): void {
  if (!(key instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'key must be a Uint8Array');
  if (key.length > KEY_BYTES_MAX) throw new PaxosStoreError('KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${KEY_BYTES_MAX}`);
  if (typeof requestId?.clientId !== 'string' || !Number.isSafeInteger(requestId.sequence) || requestId.sequence < 0 || typeof requestId.timestampMs !== 'number') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'request id needs clientId (string), timestampMs (number), sequence (non-negative integer)');
  }
  switch (operation?.kind) {
    case 'get':
      if (operation.consistency !== 'linearizable' && operation.consistency !== 'local') throw new PaxosStoreError('INVALID_ARGUMENT', 'consistency must be linearizable or local');
      return;
    case 'set':
    case 'append':
      if (!(operation.value instanceof Uint8Array)) throw new PaxosStoreError('INVALID_ARGUMENT', 'value must be a Uint8Array');
      if (operation.value.length > valueBytesMax) throw new PaxosStoreError('VALUE_TOO_LARGE', `value is ${operation.value.length} bytes; the limit is ${valueBytesMax}`);
      if (operation.kind === 'set' && operation.ifVersion !== undefined && !(Number.isSafeInteger(operation.ifVersion) && operation.ifVersion >= 0)) {
        throw new PaxosStoreError('INVALID_ARGUMENT', 'ifVersion must be a non-negative integer');
      }
      return;
    case 'delete':
      if (operation.ifVersion !== undefined && !(Number.isSafeInteger(operation.ifVersion) && operation.ifVersion >= 0)) {
        throw new PaxosStoreError('INVALID_ARGUMENT', 'ifVersion must be a non-negative integer');
      }
      return;
    case 'incr':
      if (typeof operation.delta !== 'bigint') throw new PaxosStoreError('INVALID_ARGUMENT', 'delta must be a bigint');
      return;
    default:
      throw new PaxosStoreError('INVALID_ARGUMENT', `unknown operation kind ${String((operation as { kind?: unknown } | undefined)?.kind)}`);
  }
}
