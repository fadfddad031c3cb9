#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { type ServerConfig, parseServerConfig } from '../cluster/config.js';
import { recordedShardCount } from '../cluster/data-directory.js';
import { type LocalClusterOptions, startLocalCluster } from '../cluster/local-cluster.js';
import { isPaxosStoreError } from '../errors.js';

/**
 * The `paxosstore` command: `start` (one replica), `cluster` (N local replicas), `status`,
 * `bench`. Flags are validated here and by parseServerConfig; errors print one clear line.
 */

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError(`expected a non-negative integer, got "${value}"`);
  return parsed;
}

function parseReplicaList(value: string): { id: number; host: string; peerPort: number }[] {
  // "1@127.0.0.1:7110,2@127.0.0.1:7210,3@127.0.0.1:7310"
  return value.split(',').map((item) => {
    const match = /^(\d+)@([^:]+):(\d+)$/.exec(item.trim());
    if (!match) throw new InvalidArgumentError(`replica "${item}" is not of the form ID@HOST:PEERPORT`);
    return { id: Number(match[1]), host: match[2], peerPort: Number(match[3]) };
  });
}

interface TransportFlags {
  socketsPerPeer?: number;
  batchMaxBytes?: number;
  batchMaxDelayUs?: number;
  compressionThresholdBytes?: number;
}

function transportFromFlags(flags: TransportFlags): Record<string, number> {
  const transport: Record<string, number> = {};
  if (flags.socketsPerPeer !== undefined) transport.socketsPerPeer = flags.socketsPerPeer;
  if (flags.batchMaxBytes !== undefined) transport.batchMaxBytes = flags.batchMaxBytes;
  if (flags.batchMaxDelayUs !== undefined) transport.batchMaxDelayUs = flags.batchMaxDelayUs;
  if (flags.compressionThresholdBytes !== undefined) transport.compressionThresholdBytes = flags.compressionThresholdBytes;
  return transport;
}

function withTransportFlags(command: Command): Command {
  return command
    .option('--sockets-per-peer <n>', 'TCP connections per peer worker (frames round-robin over them)', positiveInteger)
    .option('--batch-max-bytes <n>', 'flush a peer batch at this many bytes', positiveInteger)
    .option('--batch-max-delay-us <n>', 'flush a peer batch after this many microseconds', positiveInteger)
    .option('--compression-threshold-bytes <n>', 'lz4-compress peer frames above this size', positiveInteger);
}

async function runStart(flags: Record<string, unknown>): Promise<void> {
  let raw: Record<string, unknown>;
  if (typeof flags.config === 'string') {
    raw = JSON.parse(readFileSync(flags.config, 'utf8')) as Record<string, unknown>;
  } else {
    raw = {
      replicaId: flags.replicaId,
      replicas: flags.replicas,
      secret: flags.secret ?? process.env.PAXOSSTORE_SECRET,
      dataDir: flags.dataDir,
      shards: flags.shards,
      resp: flags.respPort === undefined ? null : { host: flags.host, port: flags.respPort },
      http: flags.httpPort === undefined ? null : { host: flags.host, port: flags.httpPort },
      transport: transportFromFlags(flags as TransportFlags),
    };
  }
  if (flags.rebuilding === true) raw.rebuilding = true;
  // An existing data directory keeps the shard count it was created with (it is fixed for life).
  if (raw.shards === undefined && typeof raw.dataDir === 'string') raw.shards = recordedShardCount(raw.dataDir);
  const config: ServerConfig = parseServerConfig(raw);
  const { runReplica } = await import('../server/replica.js');
  await runReplica(config);
}

/** Shards for a local cluster: what its data was created with, else the cores shared by its replicas. */
function localClusterShards(dataDir: string, replicas: number): number {
  return recordedShardCount(join(dataDir, 'r1')) ?? Math.max(1, Math.floor(availableParallelism() / replicas));
}

async function runCluster(flags: Record<string, unknown>): Promise<void> {
  const options: LocalClusterOptions = {
    replicas: flags.replicas as number,
    dataDir: flags.dataDir as string,
    basePort: flags.basePort as number,
    host: flags.host as string,
    shards: (flags.shards as number | undefined) ?? localClusterShards(flags.dataDir as string, flags.replicas as number),
    transport: transportFromFlags(flags as TransportFlags),
  };
  const cluster = await startLocalCluster(options);
  const first = cluster.replicas[0];
  const ready = {
    event: 'ready',
    replicas: cluster.replicas.map((replica) => ({ id: replica.id, resp: replica.resp, http: replica.http })),
  };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  process.stdout.write(`PaxosStore local cluster: ${cluster.replicas.length} replicas, data under ${options.dataDir}\n`);
  for (const replica of cluster.replicas) {
    process.stdout.write(
      `  replica ${replica.id}: RESP ${replica.resp.host}:${replica.resp.port}   HTTP/WebSocket http://${replica.http.host}:${replica.http.port}\n`,
    );
  }
  process.stdout.write(`Try:  redis-cli -p ${first.resp.port} set hello world && redis-cli -p ${cluster.replicas.at(-1)!.resp.port} get hello\n`);
  process.stdout.write('Ctrl-C stops the cluster (data is kept).\n');
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    void cluster.stop(signal === 'SIGINT' ? 'SIGTERM' : signal);
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  await cluster.exited;
}

async function runStatus(flags: Record<string, unknown>): Promise<void> {
  const url = `${String(flags.endpoint).replace(/\/$/, '')}/v1/status`;
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url} answered ${response.status}`);
  process.stdout.write(`${JSON.stringify(await response.json(), null, 2)}\n`);
}

function report(error: unknown): void {
  if (isPaxosStoreError(error)) process.stderr.write(`paxosstore: ${error.code}: ${error.message}\n`);
  else process.stderr.write(`paxosstore: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}

export async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('paxosstore').description('Replicated, strongly consistent key-value store (PaxosStore on Node.js)');

  withTransportFlags(
    program
      .command('start')
      .description('run one replica (from --config FILE, or from flags)')
      .option('--config <file>', 'JSON config file (see README "Configuration")')
      .option('--replica-id <n>', 'this replica id', positiveInteger)
      .option('--replicas <list>', 'the cluster: ID@HOST:PEERPORT,… (worker k listens on PEERPORT+k)', parseReplicaList)
      .option('--data-dir <dir>', 'data directory')
      .option('--secret <secret>', 'cluster secret (or env PAXOSSTORE_SECRET)')
      .option('--host <host>', 'address the client front ends bind', '127.0.0.1')
      .option('--resp-port <port>', 'Redis-protocol port', positiveInteger)
      .option('--http-port <port>', 'HTTP/WebSocket port', positiveInteger)
      .option('--shards <n>', 'shard workers (fixed for the life of the cluster)', positiveInteger)
      .option('--rebuilding', 'this replica lost its data: relearn every key from the peers before voting on it'),
  ).action((flags) => runStart(flags).catch(report));

  withTransportFlags(
    program
      .command('cluster')
      .description('run a local cluster on loopback (default 3 replicas, data under ./data/r1..rN)')
      .option('--replicas <n>', 'replica count (odd)', positiveInteger, 3)
      .option('--data-dir <dir>', 'parent data directory', './data')
      .option('--base-port <port>', 'replica r uses ports BASE+(r-1)*100 …', positiveInteger, 7100)
      .option('--host <host>', 'loopback address to bind', '127.0.0.1')
      .option('--shards <n>', 'shard workers per replica (default: what ./data was created with, else cores ÷ replicas, at least 1)', positiveInteger),
  ).action((flags) => runCluster(flags).catch(report));

  program
    .command('status')
    .description("print a replica's status")
    .option('--endpoint <url>', 'HTTP endpoint of a replica', 'http://127.0.0.1:7101')
    .action((flags) => runStatus(flags).catch(report));

  program.command('bench').description('benchmark a cluster or any RESP server (see `paxosstore bench --help`)');

  if (argv[2] === 'bench') {
    // The bench tool parses its own (many) flags; hand it the rest of the command line untouched.
    const { runBenchCommand } = await import('../bench/command.js');
    process.exitCode = await runBenchCommand(argv.slice(3) as string[]);
    return;
  }
  await program.parseAsync(argv as string[]);
}

await main(process.argv);
