/**
 * Tuning sweeps: for every combination of the swept settings, start a fresh local cluster, run the
 * same workload against it, stop it and delete its data; then compare throughput and p99.
 *
 *   --sweep socketsPerPeer=1,2,4 --sweep batchMaxDelayUs=0,200
 *        → 6 runs: (1,0) (1,200) (2,0) (2,200) (4,0) (4,200)
 *
 * Cluster contract (the `paxosstore cluster` command): it is started as
 *
 *   <command> --replicas N --data-dir DIR --base-port P [--shards W] [--sockets-per-peer S]
 *             [--batch-max-delay-us D] [--batch-max-bytes B]
 *
 * prints one stdout line  {"event":"ready","replicas":[{"id":1,"resp":{"host":…,"port":…},
 * "http":{"host":…,"port":…}},…]}  when it serves, and exits cleanly on SIGTERM. Replica r uses
 * ports from P + (r-1)*100, so a free block of ports is chosen per cluster.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { findFreeBasePort } from '../cluster/ports.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PaxosStoreError } from '../errors.js';
import { type BenchConfig, type BenchResult, type RunOptions, runBench } from './run.js';
import type { Endpoint } from './targets/types.js';

/** Sweepable settings and the cluster flag each maps to. */
export const SWEEP_PARAMETERS: Readonly<Record<string, string>> = {
  socketsPerPeer: '--sockets-per-peer',
  batchMaxDelayUs: '--batch-max-delay-us',
  batchMaxBytes: '--batch-max-bytes',
  shards: '--shards',
};

/** A sweep of more runs than this is almost certainly a typo (and would take hours). */
export const SWEEP_COMBINATIONS_MAX = 256;

export interface SweepParameter {
  readonly name: string;
  readonly values: readonly number[];
}

export interface ClusterCommand {
  readonly command: string;
  readonly args: readonly string[];
}

export interface SweepOptions {
  readonly parameters: readonly SweepParameter[];
  readonly cluster: ClusterCommand;
  readonly replicas: number;
  readonly readyTimeoutMs: number;
  readonly stopTimeoutMs: number;
  /** Fixed base port; chosen among free ports when absent. */
  readonly basePort?: number;
}

export interface SweepRun {
  readonly settings: Readonly<Record<string, number>>;
  readonly result: BenchResult | null;
  readonly error: string | null;
}

export interface SweepResult {
  readonly parameters: readonly string[];
  /** Combinations planned; more than `runs.length` when the sweep was interrupted. */
  readonly plannedRuns: number;
  readonly config: BenchConfig;
  readonly runs: readonly SweepRun[];
}

export function defaultClusterCommand(): ClusterCommand {
  return { command: process.execPath, args: [fileURLToPath(new URL('../cli/main.js', import.meta.url)), 'cluster'] };
}

/** Parses `name=v1,v2,…` (non-negative integers). */
export function parseSweepParameter(text: string): SweepParameter {
  const match = /^([A-Za-z]+)=(.+)$/.exec(text.trim());
  if (!match || !Object.hasOwn(SWEEP_PARAMETERS, match[1])) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `--sweep "${text}": expected NAME=V1,V2,… with NAME one of ${Object.keys(SWEEP_PARAMETERS).join(', ')}`);
  }
  const values = match[2].split(',').map((item) => {
    const value = Number(item.trim());
    if (item.trim() === '' || !Number.isSafeInteger(value) || value < 0) throw new PaxosStoreError('INVALID_ARGUMENT', `--sweep ${match[1]}: "${item}" is not a non-negative integer`);
    return value;
  });
  if (new Set(values).size !== values.length) throw new PaxosStoreError('INVALID_ARGUMENT', `--sweep ${match[1]}: repeated value`);
  return { name: match[1], values };
}

/** The cartesian product, first parameter slowest. */
export function sweepCombinations(parameters: readonly SweepParameter[]): Record<string, number>[] {
  const names = parameters.map((parameter) => parameter.name);
  if (new Set(names).size !== names.length) throw new PaxosStoreError('INVALID_ARGUMENT', '--sweep: the same setting is swept twice');
  let combinations: Record<string, number>[] = [{}];
  for (const parameter of parameters) {
    combinations = combinations.flatMap((partial) => parameter.values.map((value) => ({ ...partial, [parameter.name]: value })));
  }
  if (combinations.length > SWEEP_COMBINATIONS_MAX) throw new PaxosStoreError('INVALID_ARGUMENT', `--sweep: ${combinations.length} combinations (at most ${SWEEP_COMBINATIONS_MAX})`);
  return combinations;
}

export function clusterFlags(settings: Readonly<Record<string, number>>): string[] {
  return Object.entries(settings).flatMap(([name, value]) => [SWEEP_PARAMETERS[name], String(value)]);
}

/** Peer ports checked per replica: the sweep does not know the cluster's shard count, so it checks the most it would use. */
const PEER_PORTS_CHECKED = 22;

export interface ReadyReplica {
  readonly id: number;
  readonly resp: Endpoint;
  readonly http: Endpoint;
}

function isEndpoint(value: unknown): value is Endpoint {
  const endpoint = value as Endpoint | null;
  return typeof endpoint?.host === 'string' && Number.isInteger(endpoint.port) && endpoint.port > 0 && endpoint.port < 65536;
}

/** Parses the cluster's ready line; undefined for any other stdout line (the cluster may print more). */
export function parseReadyLine(line: string): ReadyReplica[] | undefined {
  let message: { event?: unknown; replicas?: unknown };
  try {
    message = JSON.parse(line) as typeof message;
  } catch {
    return undefined;
  }
  if (message?.event !== 'ready') return undefined;
  const replicas = message.replicas;
  if (!Array.isArray(replicas) || replicas.length === 0 || !replicas.every((replica) => Number.isInteger(replica?.id) && isEndpoint(replica.resp) && isEndpoint(replica.http))) {
    throw new PaxosStoreError('PROTOCOL_ERROR', `cluster ready line has no valid replicas: ${line.slice(0, 300)}`);
  }
  return replicas as ReadyReplica[];
}

/** Keeps the last bytes of a child's output for error messages, bounded. */
const OUTPUT_TAIL_BYTES = 4096;

export interface StartedCluster {
  readonly replicas: readonly ReadyReplica[];
  readonly dataDir: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

export async function startCluster(options: SweepOptions, settings: Readonly<Record<string, number>>): Promise<StartedCluster> {
  const dataDir = await mkdtemp(join(tmpdir(), 'paxosstore-bench-'));
  const basePort = options.basePort ?? (await findFreeBasePort(options.replicas, PEER_PORTS_CHECKED));
  const args = [...options.cluster.args, '--replicas', String(options.replicas), '--data-dir', dataDir, '--base-port', String(basePort), ...clusterFlags(settings)];
  const child = spawn(options.cluster.command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let outputTail = '';
  const keepTail = (chunk: Buffer): void => {
    outputTail = (outputTail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };
  child.stderr?.on('data', keepTail);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let stopping: Promise<void> | undefined;
  // Idempotent: an interrupt and the normal end of a run may both ask for it.
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const killTimer = setTimeout(() => child.kill('SIGKILL'), options.stopTimeoutMs);
        await exited;
        clearTimeout(killTimer);
      }
      await rm(dataDir, { recursive: true, force: true });
    })());

  try {
    const replicas = await new Promise<ReadyReplica[]>((resolve, reject) => {
      let pending = '';
      const timer = setTimeout(() => reject(new PaxosStoreError('TIMEOUT', `cluster not ready within ${options.readyTimeoutMs} ms; output: ${outputTail}`)), options.readyTimeoutMs);
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(new PaxosStoreError('IO_ERROR', `cannot start cluster (${options.cluster.command}): ${error.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new PaxosStoreError('IO_ERROR', `cluster exited before it was ready (code ${code}, signal ${signal}); output: ${outputTail}`));
      });
      child.stdout?.on('data', (chunk: Buffer) => {
        keepTail(chunk);
        pending += chunk.toString('utf8');
        let newline = pending.indexOf('\n');
        while (newline !== -1) {
          const line = pending.slice(0, newline);
          pending = pending.slice(newline + 1);
          newline = pending.indexOf('\n');
          try {
            const ready = parseReadyLine(line);
            if (ready) {
              clearTimeout(timer);
              resolve(ready);
            }
          } catch (error) {
            clearTimeout(timer);
            reject(error);
          }
        }
        // A chatty child must not grow this without bound before its ready line.
        if (pending.length > OUTPUT_TAIL_BYTES * 16) pending = pending.slice(-OUTPUT_TAIL_BYTES);
      });
    });
    return { replicas, dataDir, process: child, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Runs `config` once per combination, each on a fresh cluster; a failed combination is reported, not fatal. */
export async function runSweep(config: BenchConfig, options: SweepOptions, runOptions: RunOptions = {}): Promise<SweepResult> {
  const combinations = sweepCombinations(options.parameters);
  const runs: SweepRun[] = [];
  for (const settings of combinations) {
    if (runOptions.signal?.aborted) break;
    runOptions.onPhase?.(`sweep ${runs.length + 1}/${combinations.length}: starting a ${options.replicas}-replica cluster with ${JSON.stringify(settings)}`);
    let cluster: StartedCluster | undefined;
    try {
      cluster = await startCluster(options, settings);
      const endpoints = cluster.replicas.map((replica) => (config.target === 'resp' ? replica.resp : replica.http));
      const result = await runBench({ ...config, endpoints }, runOptions);
      runs.push({ settings, result, error: null });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      runs.push({ settings, result: null, error: message });
    } finally {
      await cluster?.stop();
    }
  }
  return { parameters: options.parameters.map((parameter) => parameter.name), plannedRuns: combinations.length, config, runs };
}
