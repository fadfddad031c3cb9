/**
 * `npm run bench:api`: the WebSocket API against the Redis protocol on the same local cluster,
 * with the same client concurrency and workload, measured by `paxosstore bench` (the same load
 * generator and HDR recording for both).
 *
 * The machine is shared and noisy (the same target can vary 2× between two minutes), so the
 * targets run in pairs, in ABBA order (RESP, WS | WS, RESP | RESP, WS | …) so that a steady drift
 * favours neither, and the ratio reported is the median of the per-round ratios WS ÷ RESP of
 * adjacent runs, with their range. Each round's figures go to stderr as they come.
 *
 * Even so, a target's runs can differ 2× from one round to the next. So each workload also gets
 * BENCH_TOGETHER_ROUNDS head-to-head rounds: both generators at once, each with the same client
 * count, on the same cluster — identical cluster state and machine noise for both (their seeds
 * swap every round). It answers "which path serves more requests under the same conditions",
 * a second table next to the sequential one.
 *
 * Knobs: BENCH_CLIENTS (50), BENCH_DURATION (10 s), BENCH_ROUNDS (4), BENCH_TOGETHER_ROUNDS (3),
 * BENCH_WORKLOADS ("C,A"), BENCH_KEYS (10000), BENCH_BASE_PORT (18100) and the cluster knobs of
 * bench/cluster-process.ts.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
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
const rounds = Number(process.env.BENCH_ROUNDS ?? 4);
const togetherRounds = Number(process.env.BENCH_TOGETHER_ROUNDS ?? 3);
const execFileAsync = promisify(execFile);
const workloads = (process.env.BENCH_WORKLOADS ?? 'C,A').split(',');
const keys = process.env.BENCH_KEYS ?? '10000';
const basePort = Number(process.env.BENCH_BASE_PORT ?? 18100);

async function runBench(target: 'resp' | 'ws', workload: string, preload: boolean, seed = 1): Promise<Round> {
  const endpoint = target === 'resp' ? `127.0.0.1:${basePort}` : `127.0.0.1:${basePort + 1}`;
  const args = [cliPath, 'bench', '--target', target, '--endpoints', endpoint, '--workload', workload, '--clients', clients, '--duration', duration, '--warmup', '2', '--keys', keys, '--seed', String(seed), '--json'];
  if (preload) args.push('--preload');
  let output: string;
  try {
    output = (await execFileAsync(process.execPath, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (error) {
    // Exit code 3 means the run finished with some failed operations: still a result to report.
    output = (error as { stdout?: string }).stdout ?? '';
    if (!output) throw error;
  }
  const statistics = (JSON.parse(output) as { statistics: RunStatistics }).statistics;
  const total = statistics.total;
  return { throughput: total.throughputPerSecond, p50Ms: total.latencyMs?.p50 ?? Number.NaN, p99Ms: total.latencyMs?.p99 ?? Number.NaN, errors: total.errors + total.timeouts };
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** RESP first in rounds 0, 3, 4, 7, …; WebSocket first in rounds 1, 2, 5, 6, … (ABBA). */
function roundOrder(round: number): readonly ('resp' | 'ws')[] {
  return round % 4 === 0 || round % 4 === 3 ? ['resp', 'ws'] : ['ws', 'resp'];
}

/** Both targets at once; seeds 1 and 2, swapped every round. */
async function runTogether(workload: string, round: number): Promise<Record<'resp' | 'ws', Round>> {
  const [resp, ws] = await Promise.all([runBench('resp', workload, false, 1 + (round % 2)), runBench('ws', workload, false, 2 - (round % 2))]);
  return { resp, ws };
}

function ratioCell(ratios: readonly number[]): string {
  return `${median(ratios).toFixed(2)}× (${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)})`;
}

function describe(round: Round): string {
  return `${round.throughput.toFixed(0)} ops/s, p50 ${round.p50Ms} ms, p99 ${round.p99Ms} ms, ${round.errors} errors`;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'paxosstore-bench-api-'));
  const cluster = await startClusterProcess(root, basePort, clusterArgsFromEnvironment());
  const date = new Date().toISOString().slice(0, 10);
  const sequential = [
    `Sequential: paxosstore bench, ${clients} clients × 1 in flight, ${keys} keys, ${duration} s per run, ${rounds} rounds in ABBA order; ${date}`,
    '',
    '| workload | target | ops/s (median) | p50 ms (median) | p99 ms (median) | errors | WebSocket ÷ RESP (median of rounds, range) |',
    '|---|---|---|---|---|---|---|',
  ];
  const together = [
    `Head to head: both targets at once, ${clients} clients × 1 in flight each, ${duration} s per round, ${togetherRounds} rounds; ${date}`,
    '',
    '| workload | RESP ops/s (median) | WebSocket ops/s (median) | RESP p50 ms | WebSocket p50 ms | errors | WebSocket ÷ RESP (median of rounds, range) |',
    '|---|---|---|---|---|---|---|',
  ];
  try {
    let preloaded = false;
    for (const workload of workloads) {
      const results: Record<'resp' | 'ws', Round[]> = { resp: [], ws: [] };
      for (let round = 0; round < rounds; round++) {
        for (const target of roundOrder(round)) {
          results[target].push(await runBench(target, workload, !preloaded));
          preloaded = true;
        }
        process.stderr.write(`workload ${workload}, round ${round + 1}: ${describePair(results.resp[round], results.ws[round])}\n`);
      }
      for (const target of ['resp', 'ws'] as const) {
        const runs = results[target];
        const cells = [
          workload,
          target === 'resp' ? 'RESP' : 'WebSocket',
          median(runs.map((run) => run.throughput)).toFixed(0),
          median(runs.map((run) => run.p50Ms)).toFixed(3),
          median(runs.map((run) => run.p99Ms)).toFixed(3),
          String(errorSum(runs)),
          target === 'resp' ? '' : ratioCell(ratios(results)),
        ];
        sequential.push(`| ${cells.join(' | ')} |`);
      }
      const heads: Record<'resp' | 'ws', Round[]> = { resp: [], ws: [] };
      for (let round = 0; round < togetherRounds; round++) {
        const { resp, ws } = await runTogether(workload, round);
        heads.resp.push(resp);
        heads.ws.push(ws);
        process.stderr.write(`workload ${workload}, head to head ${round + 1}: ${describePair(resp, ws)}\n`);
      }
      if (togetherRounds > 0) {
        const cells = [
          workload,
          median(heads.resp.map((run) => run.throughput)).toFixed(0),
          median(heads.ws.map((run) => run.throughput)).toFixed(0),
          median(heads.resp.map((run) => run.p50Ms)).toFixed(3),
          median(heads.ws.map((run) => run.p50Ms)).toFixed(3),
          String(errorSum(heads.resp) + errorSum(heads.ws)),
          ratioCell(ratios(heads)),
        ];
        together.push(`| ${cells.join(' | ')} |`);
      }
    }
  } finally {
    await stopProcess(cluster);
    rmSync(root, { recursive: true, force: true });
  }
  process.stdout.write(`${sequential.join('\n')}\n\n${togetherRounds > 0 ? `${together.join('\n')}\n` : ''}`);
}

function describePair(resp: Round, ws: Round): string {
  return `RESP ${describe(resp)} | WebSocket ${describe(ws)} | ${(ws.throughput / resp.throughput).toFixed(2)}×`;
}

function ratios(results: Record<'resp' | 'ws', Round[]>): number[] {
  return results.ws.map((ws, round) => ws.throughput / results.resp[round].throughput);
}

function errorSum(runs: readonly Round[]): number {
  return runs.reduce((sum, run) => sum + run.errors, 0);
}

await main();
