/**
 * Real replica processes on loopback for server tests: each replica is `paxosstore start
 * --config …` from dist/ (so `npm test` builds first), started and killed one by one.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import type { ServerConfig } from '../../src/cluster/config.js';
import { localClusterConfigs } from '../../src/cluster/local-cluster.js';
import { findFreeBasePort } from '../../src/cluster/ports.js';

const cliPath = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

export interface TestCluster {
  readonly configs: readonly ServerConfig[];
  readonly root: string;
  respPort(replicaId: number): number;
  httpPort(replicaId: number): number;
  /** `overrides` are merged into the replica's config (e.g. `{ rebuilding: true }`). */
  start(replicaId: number, overrides?: Record<string, unknown>): Promise<void>;
  /** Sends `signal` (`times` times, 20 ms apart) and waits for the exit. */
  kill(replicaId: number, signal?: NodeJS.Signals, times?: number): Promise<void>;
  /** stderr of a replica so far (for failure messages). */
  output(replicaId: number): string;
  /** An ioredis connection to a replica's RESP port, closed by stopAll. */
  redis(replicaId: number): Redis;
  stopAll(): Promise<void>;
}

type TestClusterOptions = { replicas?: number; shards?: number; transport?: Record<string, number> };

/** Start attempts, each on a new block of ports (see startTestCluster). */
const START_ATTEMPTS = 4;

/**
 * Starts a local cluster on a free block of loopback ports. Test files run in parallel, and one
 * may take ports between findFreeBasePort's check and this cluster's listen: a start that fails
 * with EADDRINUSE is torn down and tried again on another block.
 */
export async function startTestCluster(options: TestClusterOptions = {}): Promise<TestCluster> {
  for (let attempt = 1; ; attempt++) {
    const cluster = createTestCluster(options, await findFreeBasePort(options.replicas ?? 3, options.shards ?? 2));
    try {
      await Promise.all(cluster.configs.map((config) => cluster.start(config.replicaId)));
      return cluster;
    } catch (error) {
      await cluster.stopAll();
      if (attempt >= START_ATTEMPTS || !String((error as Error).message).includes('EADDRINUSE')) throw error;
    }
  }
}

function createTestCluster(options: TestClusterOptions, basePort: number): TestCluster {
  const root = mkdtempSync(join(tmpdir(), 'paxosstore-test-'));
  const configs = localClusterConfigs(
    {
      replicas: options.replicas ?? 3,
      dataDir: root,
      basePort,
      host: '127.0.0.1',
      shards: options.shards ?? 2,
      transport: options.transport ?? {},
      consensus: { requestTimeoutMs: 5000 },
    },
    'test-secret-0123456789',
  );
  const children = new Map<number, ChildProcess>();
  const outputs = new Map<number, string>();
  const redisClients: Redis[] = [];

  const start = (replicaId: number, overrides: Record<string, unknown> = {}): Promise<void> => {
    const config = configs.find((entry) => entry.replicaId === replicaId)!;
    const configPath = join(root, `r${replicaId}.json`);
    writeFileSync(configPath, JSON.stringify({ ...config, ...overrides }));
    const child = fork(cliPath, ['start', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
    children.set(replicaId, child);
    const append = (chunk: Buffer): void => {
      outputs.set(replicaId, (outputs.get(replicaId) ?? '') + chunk.toString());
    };
    child.stdout!.on('data', append);
    child.stderr!.on('data', append);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`replica ${replicaId} not ready:\n${outputs.get(replicaId)}`)), 30_000);
      child.on('message', (message: { event?: string }) => {
        if (message?.event === 'ready') {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`replica ${replicaId} exited (${code}) before ready:\n${outputs.get(replicaId)}`));
      });
    });
  };

  const kill = async (replicaId: number, signal: NodeJS.Signals = 'SIGKILL', times = 1): Promise<void> => {
    const child = children.get(replicaId);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      for (let sent = 0; sent < times; sent++) setTimeout(() => child.kill(signal), sent * 20);
    });
  };

  const cluster: TestCluster = {
    configs,
    root,
    respPort: (replicaId) => configs.find((entry) => entry.replicaId === replicaId)!.resp!.port,
    httpPort: (replicaId) => configs.find((entry) => entry.replicaId === replicaId)!.http!.port,
    start,
    kill,
    output: (replicaId) => outputs.get(replicaId) ?? '',
    redis: (replicaId) => {
      const port = configs.find((entry) => entry.replicaId === replicaId)!.resp!.port;
      const redis = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 0 });
      redis.on('error', () => {}); // connection errors surface on the commands that need them
      redisClients.push(redis);
      return redis;
    },
    stopAll: async () => {
      for (const redis of redisClients) redis.disconnect();
      await Promise.all(configs.map((config) => kill(config.replicaId, 'SIGTERM')));
      rmSync(root, { recursive: true, force: true });
    },
  };
  return cluster;
}
