/**
 * `npm run bench:cluster`: the local PaxosStore cluster against Redis (appendonly, appendfsync
 * always: every write durable before the reply, like ours) on the same machine in the same run,
 * both driven by redis-benchmark with the same settings. Prints a table of requests/s, p50 and
 * p99, and the ratio PaxosStore / Redis.
 *
 * Environment knobs: BENCH_REQUESTS (default 200000), BENCH_CLIENTS (50), BENCH_KEYSPACE (100000),
 * BENCH_PIPELINES ("1,16"), BENCH_SHARDS (cluster default), BENCH_SOCKETS_PER_PEER,
 * BENCH_BATCH_MAX_DELAY_US, BENCH_BASE_PORT (17100).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusterArgsFromEnvironment, startClusterProcess, stopProcess as stop, waitForLine } from './cluster-process.js';

interface BenchmarkRow {
  target: string;
  pipeline: number;
  test: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
}

const requests = Number(process.env.BENCH_REQUESTS ?? 200_000);
const clients = Number(process.env.BENCH_CLIENTS ?? 50);
const keyspace = Number(process.env.BENCH_KEYSPACE ?? 100_000);
const pipelines = (process.env.BENCH_PIPELINES ?? '1,16').split(',').map(Number);
const basePort = Number(process.env.BENCH_BASE_PORT ?? 17100);
const redisPort = basePort - 1;

function redisBenchmark(port: number, pipeline: number): BenchmarkRow[] {
  const args = ['-h', '127.0.0.1', '-p', String(port), '-t', 'set,get', '-c', String(clients), '-n', String(requests), '-r', String(keyspace), '-P', String(pipeline), '--csv'];
  const output = execFileSync('redis-benchmark', args, { encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  const rows: BenchmarkRow[] = [];
  for (const line of output.trim().split('\n').slice(1)) {
    const cells = line.split(',').map((cell) => cell.replaceAll('"', ''));
    rows.push({ target: '', pipeline, test: cells[0], requestsPerSecond: Number(cells[1]), p50Ms: Number(cells[4]), p99Ms: Number(cells[6]) });
  }
  return rows;
}

async function startRedis(directory: string): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--dir', directory, '--appendonly', 'yes', '--appendfsync', 'always', '--save', ''], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await waitForLine(child, (line) => line.includes('Ready to accept connections'), 10_000);
  return child;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'paxosstore-bench-cluster-'));
  const redis = await startRedis(root);
  const cluster = await startClusterProcess(join(root, 'cluster'), basePort, clusterArgsFromEnvironment());
  const rows: BenchmarkRow[] = [];
  try {
    for (const pipeline of pipelines) {
      for (const [target, port] of [
        ['redis (appendfsync always)', redisPort],
        ['paxosstore (3 replicas)', basePort],
      ] as const) {
        process.stderr.write(`redis-benchmark ${target} -P ${pipeline} …\n`);
        for (const row of redisBenchmark(port, pipeline)) rows.push({ ...row, target });
      }
    }
  } finally {
    await stop(cluster);
    await stop(redis);
    rmSync(root, { recursive: true, force: true });
  }
  const redisRow = (row: BenchmarkRow): BenchmarkRow | undefined =>
    rows.find((other) => other.target.startsWith('redis') && other.test === row.test && other.pipeline === row.pipeline);
  const lines = [
    `redis-benchmark -t set,get -c ${clients} -n ${requests} -r ${keyspace}; ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| target | -P | test | requests/s | p50 ms | p99 ms | vs Redis |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const reference = redisRow(row);
    const ratio = reference && !row.target.startsWith('redis') ? `${(row.requestsPerSecond / reference.requestsPerSecond).toFixed(2)}×` : '';
    lines.push(`| ${row.target} | ${row.pipeline} | ${row.test} | ${row.requestsPerSecond.toFixed(0)} | ${row.p50Ms} | ${row.p99Ms} | ${ratio} |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
