/**
 * Entry point of shard worker k (a worker_thread of a replica process). It owns everything of
 * its shard: the Bitcask under `<dataDir>/shard-<k>` (each key's PaxosLog is its value), the
 * consensus Replica with its coroutine scheduler, and the peer links to worker k of every other
 * replica. The main thread reaches it only through the request/reply rings of its channel.
 *
 *   main thread ══ request ring ══► ShardWorkerChannel ─► Replica.execute ─► scheduler turn
 *                                                           │ group commit ─► Bitcask (one fdatasync)
 *   peers ◄══ PeerLinks (S sockets/peer, batched) ◄──────────┘ sends (after the commit is durable)
 *
 * Time: the scheduler counts ticks of 1 ms; a timer advances it by the real elapsed time (see TICK_BUSY_MS).
 */
import { randomBytes } from 'node:crypto';
import { parentPort, workerData } from 'node:worker_threads';
import { shardDirectory } from '../cluster/data-directory.js';
import { Replica, engineStorage } from '../consensus/replica.js';
import { PaxosStoreError } from '../errors.js';
import { ShardWorkerChannel } from '../ipc/channel.js';
import { Bitcask, closeMergePool } from '../storage/bitcask/bitcask.js';
import { PeerLinks } from '../transport/peer-links.js';
import { loadShardHasher } from '../router/shard-hash.js';
import { Random } from '../util/random.js';
import { DelosHost } from './delos-host.js';
import { RequestDeadlines } from './request-deadlines.js';
import { type PeerWireMessage, peerWireCodec } from './peer-wire.js';
import { collectShardMetrics } from './shard-metrics.js';
import type { ShardWorkerData, WorkerToMain } from './worker-protocol.js';

/**
 * How often the worker advances the scheduler's clock: every 2 ms while it has client operations
 * in flight (their backoffs are a few ms), every 20 ms otherwise (an idle or acceptor-only worker
 * has only timers of hundreds of ms: resends, fetches, probes). Each tick wakes the thread, and a
 * wake-up costs tens of µs on a virtual machine: a fixed 2 ms ticker kept an idle 3-replica
 * cluster at ~9% of a core and 1,500 context switches per second.
 */
const TICK_BUSY_MS = 2;
const TICK_IDLE_MS = 20;
/** How often the worker ships its counters to the main thread for /metrics. */
const METRICS_INTERVAL_MS = 1000;

function post(message: WorkerToMain): void {
  parentPort!.postMessage(message);
}

/** Info lines only with PAXOSSTORE_LOG=info; one line per (event, peer) per interval, so a dead peer is not a flood. */
const LOG_REPEAT_INTERVAL_MS = 30_000;
function throttledLogger(shardIndex: number): (level: 'info' | 'warn', event: string, fields: Record<string, unknown>) => void {
  const verbose = process.env.PAXOSSTORE_LOG === 'info';
  const lastLoggedMs = new Map<string, number>();
  return (level, event, fields) => {
    if (level === 'info' && !verbose) return;
    const key = `${event}/${String(fields.peerId ?? fields.host ?? '')}`;
    const now = Date.now();
    if (now - (lastLoggedMs.get(key) ?? Number.NEGATIVE_INFINITY) < LOG_REPEAT_INTERVAL_MS) return;
    lastLoggedMs.set(key, now);
    post({ type: 'log', level, message: `shard ${shardIndex}: ${event} ${JSON.stringify(fields)}` });
  };
}

async function main(): Promise<void> {
  const { config, shardIndex, buffers } = workerData as ShardWorkerData;
  const log = throttledLogger(shardIndex);
  const engine = await Bitcask.open({
    directory: shardDirectory(config.dataDir, shardIndex),
    fileSizeBytesMax: config.storage.fileSizeBytesMax,
    valueBytesMax: config.storage.valueBytesMax + 64 * 1024, // room for the PaxosLog around the value
  });
  const self = config.replicas.find((replica) => replica.id === config.replicaId)!;
  const flushEveryTurn = config.transport.batchMaxDelayUs === 0;
  let links: PeerLinks<PeerWireMessage> | undefined;
  const replica = new Replica({
    replicaId: config.replicaId,
    replicaIds: config.replicas.map((entry) => entry.id),
    storage: engineStorage(engine),
    transport: (peer, messages) => {
      for (const message of messages) links!.send(peer, message);
      // With batchMaxDelayUs = 0 every scheduler turn is one batch; otherwise the links' delay
      // timer (or batchMaxBytes) decides, so batches can span turns.
      if (flushEveryTurn) links!.flush();
    },
    random: new Random(randomBytes(4).readUInt32LE(0)),
    limits: { inFlightMax: config.consensus.inFlightMax },
    // One scheduler tick is one millisecond here (see the ticker below).
    config: { resendTicks: config.consensus.resendMs, phaseTimeoutTicks: config.consensus.phaseTimeoutMs, readTimeoutTicks: config.consensus.readTimeoutMs },
    valueBytesMax: config.storage.valueBytesMax,
    rebuilding: config.rebuilding,
  });
  await loadShardHasher();
  const delos = await DelosHost.open({
    shardDirectory: shardDirectory(config.dataDir, shardIndex),
    shardIndex,
    shardCount: config.shards,
    replicaId: config.replicaId,
    replicaIds: config.replicas.map((entry) => entry.id),
    requestTimeoutMs: config.consensus.requestTimeoutMs,
    send: (peer, envelope) => links!.send(peer, envelope),
    warn: (event, fields) => log('warn', event, fields),
  });
  links = new PeerLinks<PeerWireMessage>({
    identity: { clusterId: config.clusterId, replicaId: config.replicaId, shardIndex, shardCount: config.shards },
    secret: config.secret,
    listenHost: self.host,
    listenPort: self.peerPort + shardIndex,
    peers: config.replicas
      .filter((entry) => entry.id !== config.replicaId)
      .map((entry) => ({ replicaId: entry.id, address: { host: entry.host, port: entry.peerPort + shardIndex } })),
    codec: peerWireCodec,
    onMessages: (peer, messages) => replica.receive(peer, delos.takeLogMessages(peer, messages)),
    logger: { info: (event, fields) => log('info', event, fields), warn: (event, fields) => log('warn', event, fields) },
    socketsPerPeer: config.transport.socketsPerPeer,
    batchMaxBytes: config.transport.batchMaxBytes,
    batchMaxDelayUs: config.transport.batchMaxDelayUs,
    compressionThresholdBytes: config.transport.compressionThresholdBytes,
    sendQueueBytesMax: config.transport.sendQueueBytesMax,
  });
  await links.start();

  let lastTickMs = performance.now();
  let ticker: NodeJS.Timeout;
  const deadlines = new RequestDeadlines(config.consensus.requestTimeoutMs, () => performance.now());
  const tick = (): void => {
    const now = performance.now();
    deadlines.expire(now);
    const elapsed = Math.floor(now - lastTickMs);
    if (elapsed >= 1) {
      lastTickMs += elapsed;
      replica.tick(elapsed);
    }
    ticker = setTimeout(tick, replica.inFlight > 0 ? TICK_BUSY_MS : TICK_IDLE_MS);
  };
  ticker = setTimeout(tick, TICK_IDLE_MS);

  const metricsTimer = setInterval(() => {
    const snapshot = collectShardMetrics(replica, links!, engine);
    post({ type: 'metrics', snapshot: { families: [...snapshot.families, ...delos.metricsFamilies()] } });
  }, METRICS_INTERVAL_MS);

  const channel = new ShardWorkerChannel(buffers, {
    onRequest: (request, reply) => {
      const complete = deadlines.track(reply);
      if (request.logGroup === undefined) replica.submit(request.key, request.operation, request.requestId, complete);
      else delos.execute(request.logGroup, request.key, request.operation, request.requestId).then((value) => complete({ ok: true, value }), (error: unknown) => complete({ ok: false, error }));
    },
    onShutdown: async () => {
      clearTimeout(ticker);
      clearInterval(metricsTimer);
      replica.close();
      await delos.close();
      await links!.close();
      await engine.close();
      await closeMergePool();
    },
    stats: () => ({ inFlight: replica.inFlight, ...replica.counters, ...engine.stats() }),
  });
  post({ type: 'ready', shardIndex, recovery: { ...engine.recovery } });
  await channel.done;
}

main().catch((error: unknown) => {
  const message = error instanceof PaxosStoreError ? `${error.code}: ${error.message}` : error instanceof Error ? (error.stack ?? error.message) : String(error);
  post({ type: 'fatal', message });
  process.exitCode = 1;
});
