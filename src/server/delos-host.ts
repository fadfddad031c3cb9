/**
 * The Delos log groups of one shard worker (docs/delos.md, "In the server"). A log group is owned
 * by worker `hash(groupName) mod W` on every replica (the same worker index everywhere, because W
 * is pinned for the cluster's life), so its messages travel on that worker's peer links, which
 * connect worker k of each replica only to worker k of the others.
 *
 *   main thread ══ request ring (frame with logGroup) ══► shard worker k = owner of the group
 *                                                           │ DelosHost.execute
 *                                                           ▼
 *      KvService ─► Observer ─► Batching ─► BrainDoctor ─► ViewTracking ─► Base ─► VirtualLog
 *                                                                                    │ LogNode
 *   peers' worker k ◄══ PeerLinks (same sockets and frames as the per-key consensus) ◄┘
 *
 * Per group, on disk:
 *
 *   <dataDir>/shard-<k>/delos/<group>/    LsmTree = the group's LocalStore:
 *                                          L/…  the loglets' Paxos state (per replica)
 *                                          E/…  the engines' state (cursor, views, …)
 *                                          K/…  the KV applicator's keys
 *
 * Everything is recovered from that directory on restart: the loglets reload their slots on
 * first use, BaseEngine its cursor, the engines and the applicator their keys.
 *
 * On the peer links a log message is wrapped in an envelope that names its group:
 *
 *   { type: 'log', group: <string ≤ 64 chars>, message: LogMessage }      (src/log/messages.ts)
 *
 * The per-key consensus messages have `type` 'paxos' | 'chosen' | 'fetch' | 'readQuery' |
 * 'readReply', so 'log' never collides; `takeLogMessages` splits a received frame in one pass.
 */
import { randomBytes } from 'node:crypto';
import { KvApplicator, KvService, readResult } from '../apps/kv/kv-applicator.js';
import type { KeyOperation, RequestId } from '../api/operations.js';
import { type Stack, buildStack } from '../engines/stack.js';
import type { ObservedLayer } from '../engines/observer-engine.js';
import { PaxosStoreError } from '../errors.js';
import type { RingResult } from '../ipc/ring-frame.js';
import { LogNode } from '../log/log-node.js';
import type { LogletTiming } from '../log/loglet.js';
import { isLogMessage, type LogMessage } from '../log/messages.js';
import { RealLogClock } from '../log/real-clock.js';
import { type FamilySnapshot, MetricsRegistry, type Summary } from '../metrics/registry.js';
import { shardOf } from '../router/shard-hash.js';
import { joinPath } from '../storage/file-system.js';
import { LsmTree } from '../storage/lsm/index.js';
import { Random } from '../util/random.js';

/** The log groups every replica runs. One for now: the KV applicator behind /v1/delos/kv. */
export const DELOS_GROUPS: readonly string[] = ['kv'];

/**
 * Loglet timing in real milliseconds (one tick = 1 ms, RealLogClock). 50 ms before a proposer
 * prepares again or a reader fills a hole: several loopback round trips plus an fdatasync or two,
 * so a healthy append never races its own retry.
 */
export const DELOS_TIMING: LogletTiming = Object.freeze({ retryTicks: 50, catchUpSlotsMax: 64 });

/** How often each group trims its log (and reports its view if it proposed nothing meanwhile). */
const MAINTENANCE_INTERVAL_MS = 10_000;
const GROUP_NAME_CHARS_MAX = 64;
const CLOSE_FLUSH_WAIT_MS = 1000;
const encoder = new TextEncoder();

export interface LogEnvelope {
  readonly type: 'log';
  readonly group: string;
  readonly message: LogMessage;
}

export function isLogEnvelope(value: unknown): value is LogEnvelope {
  if (typeof value !== 'object' || value === null) return false;
  const envelope = value as Record<string, unknown>;
  return envelope.type === 'log' && typeof envelope.group === 'string' && envelope.group.length <= GROUP_NAME_CHARS_MAX && isLogMessage(envelope.message);
}

/** The shard worker that owns `group` on every replica (call loadShardHasher() first). */
export function logGroupOwner(group: string, shardCount: number): number {
  return shardOf(encoder.encode(group), shardCount);
}

export interface DelosHostOptions {
  /** `<dataDir>/shard-<k>`: the groups live in its `delos/` subdirectory. */
  readonly shardDirectory: string;
  readonly shardIndex: number;
  readonly shardCount: number;
  readonly replicaId: number;
  readonly replicaIds: readonly number[];
  /** A proposal or read that cannot reach a quorum fails with TIMEOUT after this long. */
  readonly requestTimeoutMs: number;
  /** Queues an envelope on the peer links to worker `shardIndex` of replica `peer`. */
  readonly send: (peer: number, envelope: LogEnvelope) => void;
  readonly warn: (event: string, fields: Record<string, unknown>) => void;
}

/** One log group at this replica: its LocalStore, log node, engine stack and KV wrapper. */
class DelosGroup {
  private proposalsSinceMaintenance = 0;
  private maintaining: Promise<void> | null = null;
  /** The log below this position is trimmed here. */
  trimmedPosition = 0;
  readonly latency: Readonly<Record<ObservedLayer, Summary>>;

  constructor(
    readonly name: string,
    readonly store: LsmTree,
    readonly node: LogNode,
    readonly stack: Stack,
    private readonly service: KvService,
    registry: DelosMetrics,
  ) {
    this.latency = {
      propose: registry.latency.with({ group: name, layer: 'propose' }),
      sync: registry.latency.with({ group: name, layer: 'sync' }),
      apply: registry.latency.with({ group: name, layer: 'apply' }),
    };
    stack.observer.onSample = (layer, microseconds) => this.latency[layer].observe(microseconds);
  }

  static async open(name: string, options: DelosHostOptions, metrics: DelosMetrics): Promise<DelosGroup> {
    const store = await LsmTree.open({ directory: joinPath(joinPath(options.shardDirectory, 'delos'), name) });
    const nonce = randomBytes(4).readUInt32LE(0);
    const node = new LogNode(
      options.replicaId,
      options.replicaIds,
      store,
      new RealLogClock(),
      { send: (_from, to, message) => options.send(to, { type: 'log', group: name, message }) },
      nonce,
      new Random(randomBytes(4).readUInt32LE(0)),
      DELOS_TIMING,
    );
    const applicator = new KvApplicator();
    const stack = buildStack(node, applicator, { batching: true, base: { timeoutTicks: options.requestTimeoutMs } });
    return new DelosGroup(name, store, node, stack, new KvService(stack.top), metrics);
  }

  async execute(key: Uint8Array, operation: KeyOperation, requestId?: RequestId): Promise<RingResult> {
    if (operation.kind === 'get') {
      if (operation.consistency !== 'local') return this.service.execute(key, operation);
      // A local read answers from what this replica has applied (possibly stale, like /v1/kv's),
      // including entries applied since the last flush of the applied state.
      const snapshot = this.stack.base.localSnapshot();
      try {
        return readResult(snapshot, key);
      } finally {
        snapshot.release();
      }
    }
    this.proposalsSinceMaintenance++;
    return this.service.execute(key, operation, requestId);
  }

  /**
   * Trims the log below the slowest replica's applied position (ViewTrackingEngine). An idle
   * replica reports its view with a heartbeat entry, or nobody could ever trim past it.
   */
  maintain(warn: DelosHostOptions['warn']): Promise<void> {
    if (this.maintaining !== null) return this.maintaining;
    const idle = this.proposalsSinceMaintenance === 0;
    this.proposalsSinceMaintenance = 0;
    this.maintaining = (async () => {
      try {
        if (idle) await this.stack.views.heartbeat();
        this.trimmedPosition = await this.stack.base.trim();
      } catch (error) {
        // No quorum right now (a TIMEOUT): the next round tries again.
        warn('delos maintenance failed', { group: this.name, error: describe(error) });
      } finally {
        this.maintaining = null;
      }
    })();
    for (const failure of this.node.failures.splice(0)) warn('delos background failure', { group: this.name, error: describe(failure) });
    return this.maintaining;
  }

  async close(): Promise<void> {
    // Makes the applied state durable (a restart then replays nothing), bounded: a playback stuck
    // without a quorum must not hold the shutdown. What is not flushed is replayed from the log.
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CLOSE_FLUSH_WAIT_MS);
    });
    await Promise.race([this.stack.base.flush().catch(() => {}), bound]);
    clearTimeout(timer);
    // Stops retries and sends of this incarnation (a maintenance round waiting for the log never
    // resumes: not awaited); the store then finishes its queued writes.
    this.node.crash();
    await this.store.close();
  }
}

interface DelosMetrics {
  readonly registry: MetricsRegistry;
  readonly latency: ReturnType<MetricsRegistry['summary']>;
}

export class DelosHost {
  private readonly groups = new Map<string, DelosGroup>();
  private readonly metrics: DelosMetrics;
  private messagesRejected = 0;
  private readonly maintenanceTimer: NodeJS.Timeout;

  private constructor(
    private readonly options: DelosHostOptions,
    registry: MetricsRegistry,
  ) {
    this.metrics = {
      registry,
      latency: registry.summary({
        name: 'paxosstore_delos_layer_duration_seconds',
        help: 'Delos ObserverEngine latency per layer: propose and sync of the stack below it, apply of the application above it.',
        labelNames: ['group', 'layer'],
        valueScale: 1e-6,
      }),
    };
    this.maintenanceTimer = setInterval(() => void this.maintainNow(), MAINTENANCE_INTERVAL_MS);
    this.maintenanceTimer.unref();
    this.registerGauges(registry);
  }

  /** Opens (and recovers) every group this shard worker owns; none is fine (other workers own them). */
  static async open(options: DelosHostOptions): Promise<DelosHost> {
    const host = new DelosHost(options, new MetricsRegistry());
    for (const name of DELOS_GROUPS) {
      if (logGroupOwner(name, options.shardCount) !== options.shardIndex) continue;
      host.groups.set(name, await DelosGroup.open(name, options, host.metrics));
    }
    return host;
  }

  get groupNames(): string[] {
    return [...this.groups.keys()];
  }

  /**
   * Delivers the log envelopes of a received frame to their groups and returns the other
   * messages (the same array when there is no log traffic in it, the common case).
   */
  takeLogMessages<Other>(peer: number, messages: (Other | LogEnvelope)[]): Other[] {
    if (!messages.some(isLogTraffic)) return messages as Other[];
    const others: Other[] = [];
    for (const message of messages) {
      if (isLogTraffic(message)) this.receive(peer, message);
      else others.push(message as Other);
    }
    return others;
  }

  private receive(peer: number, candidate: unknown): void {
    const group = isLogEnvelope(candidate) ? this.groups.get(candidate.group) : undefined;
    if (group === undefined || !this.options.replicaIds.includes(peer) || peer === this.options.replicaId) {
      this.messagesRejected++;
      return;
    }
    try {
      group.node.receive(peer, (candidate as LogEnvelope).message);
    } catch (error) {
      // e.g. CORRUPTION: a slot value that does not decode. Invariant failures (assert) propagate.
      if (!(error instanceof PaxosStoreError)) throw error;
      this.messagesRejected++;
    }
  }

  /**
   * Runs one KV operation on `groupName`'s applicator (a write with `requestId` is deduplicated
   * like on the per-key path); NOT_FOUND for a group this worker does not own.
   */
  execute(groupName: string, key: Uint8Array, operation: KeyOperation, requestId?: RequestId): Promise<RingResult> {
    const group = this.groups.get(groupName);
    if (group === undefined) {
      return Promise.reject(new PaxosStoreError('NOT_FOUND', `log group ${JSON.stringify(groupName)} is not served by shard ${this.options.shardIndex}`));
    }
    return group.execute(key, operation, requestId);
  }

  /** One maintenance round of every group now (the timer runs one every 10 s); never rejects. */
  async maintainNow(): Promise<void> {
    await Promise.all([...this.groups.values()].map((group) => group.maintain(this.options.warn)));
  }

  /** This worker's Delos metrics, merged by the main thread with the other shard metrics. */
  metricsFamilies(): readonly FamilySnapshot[] {
    return this.groups.size === 0 ? [] : this.metrics.registry.snapshot().families;
  }

  async close(): Promise<void> {
    clearInterval(this.maintenanceTimer);
    await Promise.all([...this.groups.values()].map((group) => group.close()));
  }

  private registerGauges(registry: MetricsRegistry): void {
    const applied = registry.gauge({ name: 'paxosstore_delos_applied_position', help: 'Log position up to which this replica applied the group.', labelNames: ['group'] });
    const trimmed = registry.gauge({ name: 'paxosstore_delos_trimmed_position', help: 'Log position below which this replica trimmed the group.', labelNames: ['group'] });
    const entries = registry.counter({ name: 'paxosstore_delos_entries_applied_total', help: 'Log entries applied (one LocalStore batch each).', labelNames: ['group'] });
    const rejected = registry.counter({ name: 'paxosstore_delos_peer_messages_rejected_total', help: 'Log messages dropped: malformed, undecodable or for a group not served here.' }).with();
    let rejectedReported = 0;
    registry.onCollect(() => {
      for (const group of this.groups.values()) {
        applied.with({ group: group.name }).set(group.stack.base.appliedPosition);
        trimmed.with({ group: group.name }).set(group.trimmedPosition);
        const counter = entries.with({ group: group.name });
        counter.inc(group.stack.base.entriesApplied - counter.get());
      }
      rejected.inc(this.messagesRejected - rejectedReported);
      rejectedReported = this.messagesRejected;
    });
  }
}

/** Envelopes decoded by a peer codec are checked here, whatever the codec let through. */
function isLogTraffic(message: unknown): boolean {
  return typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'log';
}

function describe(error: unknown): string {
  return error instanceof PaxosStoreError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
}
