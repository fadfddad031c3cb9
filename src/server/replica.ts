/**
 * One replica process (DESIGN.md §2): the main thread runs the front ends (RESP on node:net,
 * HTTP/WebSocket on uWebSockets.js) and a router; W shard workers own storage and consensus.
 *
 *   start:    check/pin the data directory → start W workers (each opens its Bitcask, binds its
 *             peer port, dials peers) → front ends listen → tell the supervisor "ready"
 *   SIGTERM:  front ends stop accepting and finish in-flight commands → each shard drains,
 *             flushes and closes its Bitcask → exit 0. A second signal exits at once (the data
 *             on disk is always recoverable; only unacknowledged writes can be lost).
 */
import { mkdirSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import type { ServerConfig } from '../cluster/config.js';
import { lockDataDirectory, prepareDataDirectory } from '../cluster/data-directory.js';
import type { ReadyMessage } from '../cluster/local-cluster.js';
import { PaxosStoreError } from '../errors.js';
import { type HttpServer, startHttpServer } from '../frontends/http/server.js';
import { type RespServer, startRespServer } from '../frontends/resp/server.js';
import { ShardClientChannel, createChannelBuffers } from '../ipc/channel.js';
import { MetricsRegistry } from '../metrics/registry.js';
import { loadShardHasher } from '../router/shard-hash.js';
import { workerFilePath } from '../util/worker-path.js';
import { DELOS_GROUPS, logGroupOwner } from './delos-host.js';
import { ShardRouter } from './shard-router.js';
import type { ShardWorkerData, WorkerToMain } from './worker-protocol.js';

/** How long shutdown waits for in-flight work before it exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;
const WORKER_START_TIMEOUT_MS = 60_000;

interface Shard {
  readonly index: number;
  readonly worker: Worker;
  readonly channel: ShardClientChannel;
  recovery: Readonly<Record<string, number>>;
}

export interface RunningReplica {
  readonly router: ShardRouter;
  readonly resp: RespServer | null;
  readonly http: HttpServer | null;
  stop(): Promise<void>;
}

function logger(replicaId: number): (line: string) => void {
  return (line) => process.stderr.write(`[replica ${replicaId}] ${line}\n`);
}

function startShard(config: ServerConfig, index: number, registry: MetricsRegistry, log: (line: string) => void, onFatal: (reason: string) => void): Promise<Shard> {
  const buffers = createChannelBuffers();
  const data: ShardWorkerData = { config, shardIndex: index, buffers };
  const worker = new Worker(workerFilePath(import.meta.url, './shard-worker.js'), { workerData: data, name: `shard-${index}` });
  const channel = new ShardClientChannel(buffers, { inFlightMax: config.consensus.inFlightMax });
  return new Promise((resolve, reject) => {
    let ready = false;
    const timer = setTimeout(() => reject(new Error(`shard ${index} did not start within ${WORKER_START_TIMEOUT_MS} ms`)), WORKER_START_TIMEOUT_MS);
    worker.on('message', (message: WorkerToMain) => {
      switch (message.type) {
        case 'ready':
          ready = true;
          clearTimeout(timer);
          resolve({ index, worker, channel, recovery: message.recovery });
          break;
        case 'fatal':
          clearTimeout(timer);
          if (!ready) reject(new Error(`shard ${index}: ${message.message}`));
          else onFatal(`shard ${index}: ${message.message}`);
          break;
        case 'log':
          log(`${message.level}: ${message.message}`);
          break;
        case 'metrics':
          registry.mergeSnapshot(`shard-${index}`, message.snapshot, { shard: String(index) });
          break;
      }
    });
    worker.on('error', (error) => {
      clearTimeout(timer);
      void channel.close(); // its pending requests fail with CLOSED instead of hanging
      if (!ready) reject(error);
      else onFatal(`shard ${index} crashed: ${error.stack ?? error.message}`);
    });
    worker.on('exit', (code) => {
      clearTimeout(timer);
      void channel.close();
      if (!ready) reject(new Error(`shard ${index} exited with code ${code} before it was ready`));
    });
  });
}

/** Starts a replica in this process and resolves once it serves. */
export async function startReplica(config: ServerConfig, onFatal: (reason: string) => void): Promise<RunningReplica> {
  const log = logger(config.replicaId);
  // Lock first: a second process must not even read or write the identity file.
  mkdirSync(config.dataDir, { recursive: true });
  const unlock = lockDataDirectory(config.dataDir);
  const created = await prepareDataDirectory(config);
  log(`${created === 'created' ? 'initialised' : 'opened'} data directory ${config.dataDir} (${config.shards} ${config.shards === 1 ? 'shard' : 'shards'})`);
  await loadShardHasher();
  const registry = new MetricsRegistry();
  const shards = await Promise.all(Array.from({ length: config.shards }, (_, index) => startShard(config, index, registry, log, onFatal)));
  for (const shard of shards) {
    const dropped = shard.recovery.recordsDropped ?? 0;
    if (dropped > 0) log(`shard ${shard.index}: recovery dropped ${dropped} torn/corrupt record(s) (${shard.recovery.bytesTruncated ?? 0} bytes truncated)`);
  }
  const channels = shards.map((shard) => shard.channel);
  const identity = { replicaId: config.replicaId, replicaCount: config.replicas.length };
  const router = new ShardRouter(channels, identity);
  const logGroups = new Map(DELOS_GROUPS.map((name) => [name, new ShardRouter(channels, identity, { name, shardIndex: logGroupOwner(name, config.shards) })]));
  const resp = config.resp ? await startRespServer({ host: config.resp.host, port: config.resp.port, router }) : null;
  const http = config.http
    ? await startHttpServer({
        host: config.http.host,
        port: config.http.port,
        router,
        logGroups,
        metrics: registry,
        statusProvider: () => ({
          replicaId: config.replicaId,
          clusterId: config.clusterId,
          replicas: config.replicas,
          shards: config.shards,
          transport: config.transport,
          inFlightRequests: router.inFlightRequests,
          respConnections: resp?.connectionCount ?? 0,
        }),
      })
    : null;
  log(`serving: RESP ${config.resp ? `${config.resp.host}:${resp!.port}` : 'off'}, HTTP ${config.http ? `${config.http.host}:${http!.port}` : 'off'}`);
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      router.close();
      for (const groupRouter of logGroups.values()) groupRouter.close();
      await Promise.all([resp?.close(), http?.close()]);
      await Promise.all(
        shards.map(async (shard) => {
          await shard.channel.shutdown();
          await shard.worker.terminate();
        }),
      );
      unlock();
    })();
    return stopping;
  };
  return { router, resp, http, stop };
}

/** A second SIGINT/SIGTERM within this long of the first is the same shutdown request. */
const REPEATED_SIGNAL_GRACE_MS = 1000;

/** `paxosstore start`: run until SIGINT/SIGTERM, then shut down gracefully (a later second signal exits at once). */
export async function runReplica(config: ServerConfig): Promise<void> {
  const log = logger(config.replicaId);
  const fatal = (reason: string): void => {
    // A shard that died leaves its keys unserved; exit so a supervisor restarts the whole replica.
    log(`fatal: ${reason}`);
    process.exit(70);
  };
  let replica: RunningReplica;
  try {
    replica = await startReplica(config, fatal);
  } catch (error) {
    const message = error instanceof PaxosStoreError ? `${error.code}: ${error.message}` : error instanceof Error ? error.message : String(error);
    log(`could not start: ${message}`);
    process.exit(1);
  }
  const ready: ReadyMessage = { event: 'ready', replicaId: config.replicaId };
  process.send?.(ready);
  let signals = 0;
  let firstSignalMs = 0;
  const onSignal = (signal: NodeJS.Signals | 'disconnect'): void => {
    signals++;
    if (signal === 'disconnect' && signals > 1) return; // the supervisor's own SIGTERM got here first
    // Ctrl-C in a terminal (or `timeout`) signals the whole process group, and `paxosstore
    // cluster` forwards its own signal too: a second signal right after the first is the same
    // request, not an impatient operator asking to skip the graceful shutdown.
    if (signals > 1 && Date.now() - firstSignalMs < REPEATED_SIGNAL_GRACE_MS) return;
    if (signals === 1) firstSignalMs = Date.now();
    if (signals > 1) {
      log(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    log(`${signal}: shutting down`);
    const timer = setTimeout(() => {
      log(`shutdown did not finish within ${SHUTDOWN_GRACE_MS} ms; exiting`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    replica.stop().then(
      () => {
        log('stopped');
        process.exit(0);
      },
      (error: unknown) => {
        log(`shutdown failed: ${error instanceof Error ? error.message : String(error)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // When the supervising `paxosstore cluster` dies, its IPC channel closes: stop with it.
  process.on('disconnect', () => onSignal('disconnect'));
}
