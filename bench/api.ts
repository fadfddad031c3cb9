/**
 * `npm run bench:api`: the WebSocket API against the Redis protocol on the same local cluster,
 * with the same client concurrency and workload, measured by `paxosstore bench` (the same load
 * generator and HDR recording for both). Targets alternate over BENCH_ROUNDS rounds so machine
 * noise hits both alike; the table reports each target's median round.
 *
 * Knobs: BENCH_CLIENTS (50), BENCH_DURATION (10 s), BENCH_ROUNDS (2), BENCH_WORKLOADS ("C,A"),
 * BENCH_KEYS (10000), BENCH_BASE_PORT (18100) and the cluster knobs of bench/cluster-process.ts.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunStatistics } from '../src/bench/recorder.js';
import { clusterArgsFromEnvironment, cliPath, startClusterProcess, stopProcess } from './cluster-process.js';

interface Round {
  throughput: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

const clients = process.env.BENCH_CLIENTS ?? '50';
const duration = process.env.BENCH_DURATION ?? '10';
const rounds = Number(process.env.BENCH_ROUNDS ?? 2);
const workloads = (process.env.BENCH_WORKLOADS ?? 'C,A').split(',');
const keys = process.env.BENCH_KEYS ?? '10000';
const basePort = Number(process.env.BENCH_BASE_PORT ?? 18100);

function runBench(target: 'resp' | 'ws', workload: string, preload: boolean): Round {
  const endpoint = target === 'resp' ? `127.0.0.1:${basePort}` : `127.0.0.1:${basePort + 1}`;
  const args = [cliPath, 'bench', '--target', target, '--endpoints', endpoint, '--workload', workload, '--clients', clients, '--duration', duration, '--warmup', '2', '--keys', keys, '--json'];
  if (preload) args.push('--preload');
  let output: string;
  try {
    output = execFileSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'inherit'] });
  } catch (error) {
    // Exit code 3 means the run finished with some failed operations: still a result to report.
    output = (error as { stdout?: string }).stdout ?? '';
    if (!output) throw error;
  }
  const statistics = (JSON.parse(output) as { statistics: RunStatistics }).statistics;
  const total = statistics.total;
  return { throughput: total.throughputPerSecond, p50Ms: total.latencyMs?.p50 ?? Number.NaN, p99Ms: total.latencyMs?.p99 ?? Number.NaN, errors: total.errors + total.timeouts };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'paxosstore-bench-api-'));
  const cluster = await startClusterProcess(root, basePort, clusterArgsFromEnvironment());
  const lines = [
    `paxosstore bench, ${clients} clients × 1 in flight, ${keys} keys, ${duration} s per round, ${rounds} alternating rounds; ${new Date().toISOString().slice(0, 10)}`,
    '',
    '| workload | target | ops/s (median) | p50 ms | p99 ms | errors | WebSocket ÷ RESP |',
    '|---|---|---|---|---|---|---|',
  ];
  try {
    let preloaded = false;
    for (const workload of workloads) {
      const results: Record<'resp' | 'ws', Round[]> = { resp: [], ws: [] };
      for (let round = 0; round < rounds; round++) {
        for (const target of round % 2 === 0 ? (['resp', 'ws'] as const) : (['ws', 'resp'] as const)) {
          process.stderr.write(`workload ${workload}, round ${round + 1}: ${target} …\n`);
          results[target].push(runBench(target, workload, !preloaded));
          preloaded = true;
        }
      }
      const summary = (target: 'resp' | 'ws'): Round => {
        const sorted = [...results[target]].sort((a, b) => a.throughput - b.throughput);
        return sorted[Math.floor(sorted.length / 2)];
      };
      const resp = summary('resp');
      const ws = summary('ws');
      const ratio = (ws.throughput / resp.throughput).toFixed(2);
      lines.push(`| ${workload} | RESP | ${resp.throughput.toFixed(0)} | ${resp.p50Ms} | ${resp.p99Ms} | ${results.resp.reduce((sum, r) => sum + r.errors, 0)} | |`);
      lines.push(`| ${workload} | WebSocket | ${ws.throughput.toFixed(0)} | ${ws.p50Ms} | ${ws.p99Ms} | ${results.ws.reduce((sum, r) => sum + r.errors, 0)} | ${ratio}× |`);
    }
  } finally {
    await stopProcess(cluster);
    rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
