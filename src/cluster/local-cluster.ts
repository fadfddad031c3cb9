import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Endpoint, ServerConfig, TransportConfig } from './config.js';
import { parseServerConfig } from './config.js';

/**
 * `paxosstore cluster`: N replica processes on loopback, one data directory each
 * (`<dataDir>/r1 … rN`), supervised by this process. Port plan for replica r (1-based), with
 * base port B:
 *
 *   RESP  B + (r-1)*100          HTTP/WebSocket  B + (r-1)*100 + 1
 *   peer links of worker k:  B + (r-1)*100 + 10 + k
 *
 * so with the default B = 7100: replica 1 serves RESP on 7100, replica 2 on 7200, replica 3 on 7300.
 * The cluster secret is generated once and kept in `<dataDir>/secret` (mode 0600).
 */

export interface LocalClusterOptions {
  readonly replicas: number;
  readonly dataDir: string;
  readonly basePort: number;
  readonly host: string;
  readonly shards: number;
  readonly transport: Partial<TransportConfig>;
  readonly consensus?: Record<string, number>;
  readonly storage?: Record<string, number>;
}

export interface ReplicaEndpoints {
  readonly id: number;
  readonly resp: Endpoint;
  readonly http: Endpoint;
}

/** The message a replica process sends its supervisor over the IPC channel once it serves. */
export interface ReadyMessage {
  readonly event: 'ready';
  readonly replicaId: number;
}

export function localClusterConfigs(options: LocalClusterOptions, secret: string): ServerConfig[] {
  const portOf = (replicaId: number, offset: number): number => options.basePort + (replicaId - 1) * 100 + offset;
  const replicas = Array.from({ length: options.replicas }, (_, index) => ({
    id: index + 1,
    host: options.host,
    peerPort: portOf(index + 1, 10),
  }));
  return replicas.map((replica) =>
    parseServerConfig({
      clusterId: 'local',
      replicaId: replica.id,
      replicas,
      secret,
      dataDir: join(options.dataDir, `r${replica.id}`),
      shards: options.shards,
      resp: { host: options.host, port: portOf(replica.id, 0) },
      http: { host: options.host, port: portOf(replica.id, 1) },
      transport: options.transport,
      consensus: options.consensus ?? {},
      storage: options.storage ?? {},
    }),
  );
}

function clusterSecret(dataDir: string): string {
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, 'secret');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  const secret = randomBytes(24).toString('base64url');
  writeFileSync(path, `${secret}\n`, { mode: 0o600 });
  return secret;
}

const cliEntry = fileURLToPath(new URL('../cli/main.js', import.meta.url));

export interface RunningCluster {
  readonly replicas: readonly ReplicaEndpoints[];
  /** Resolves when every replica process has exited. */
  readonly exited: Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts every replica as a child process and resolves once all of them serve. */
export async function startLocalCluster(options: LocalClusterOptions, readyTimeoutMs = 60_000): Promise<RunningCluster> {
  const dataDir = resolve(options.dataDir);
  const configs = localClusterConfigs({ ...options, dataDir }, clusterSecret(dataDir));
  const children: ChildProcess[] = [];
  const readiness = configs.map((config) => {
    mkdirSync(config.dataDir, { recursive: true });
    const configPath = join(config.dataDir, 'replica-config.json');
    writeFileSync(configPath, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    const child = fork(cliEntry, ['start', '--config', configPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push(child);
    return new Promise<void>((resolveReady, rejectReady) => {
      const timer = setTimeout(() => rejectReady(new Error(`replica ${config.replicaId} did not become ready in ${readyTimeoutMs} ms`)), readyTimeoutMs);
      child.on('message', (message: ReadyMessage) => {
        if (message?.event === 'ready') {
          clearTimeout(timer);
          resolveReady();
        }
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        rejectReady(new Error(`replica ${config.replicaId} exited before it was ready (code ${code}, signal ${signal})`));
      });
    });
  });
  const exited = Promise.all(children.map((child) => new Promise<void>((done) => child.once('exit', () => done())))).then(() => undefined);
  const stop = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    await Promise.all(readiness);
  } catch (error) {
    await stop('SIGKILL');
    throw error;
  }
  return {
    replicas: configs.map((config) => ({ id: config.replicaId, resp: config.resp!, http: config.http! })),
    exited,
    stop,
  };
}
