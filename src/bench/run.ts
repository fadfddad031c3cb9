/**
 * One benchmark run: open the target, optionally preload every key, drive the load, close.
 * This is the library entry point the CLI (command.ts) and the sweep (sweep.ts) share.
 */
import { PaxosStoreError } from '../errors.js';
import { Random } from '../util/random.js';
import { type BenchClock, realClock } from './clock.js';
import type { KeyDistributionName } from './key-distribution.js';
import { assertTargetCanRun, type LoadModel, type Progress, runLoad } from './load.js';
import type { RunStatistics } from './recorder.js';
import { HttpTarget } from './targets/http.js';
import { RespTarget } from './targets/resp.js';
import { type BenchTarget, type Endpoint, TARGET_SUPPORTS_SCAN, type TargetName, type TargetOptions } from './targets/types.js';
import { keyName, type OperationMix, Workload, type WorkloadName } from './workload.js';

export interface BenchConfig {
  readonly target: TargetName;
  readonly endpoints: readonly Endpoint[];
  /** A YCSB letter, or 'custom' when `--mix` was given. */
  readonly workload: WorkloadName | 'custom';
  readonly mix: OperationMix;
  readonly distribution: KeyDistributionName;
  readonly zipfianTheta: number;
  readonly keyCount: number;
  readonly valueSizeBytes: number;
  readonly keyPrefix: string;
  readonly scanLengthMax: number;
  readonly preload: boolean;
  readonly load: LoadModel;
  readonly warmupSeconds: number;
  readonly durationSeconds: number;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  readonly connectTimeoutMs: number;
  readonly seed: number;
}

export interface PreloadResult {
  readonly keys: number;
  readonly seconds: number;
  readonly errors: number;
  readonly firstError: string | null;
}

export interface BenchResult {
  readonly tool: 'paxosstore-bench';
  readonly formatVersion: 1;
  readonly startedAt: string;
  readonly config: BenchConfig;
  readonly preload: PreloadResult | null;
  readonly statistics: RunStatistics;
}

export interface RunOptions {
  readonly clock?: BenchClock;
  readonly onProgress?: (progress: Progress) => void;
  readonly onPhase?: (message: string) => void;
  /** Interrupts the preload and the run (what has been measured so far is returned). */
  readonly signal?: AbortSignal;
}

export async function openTarget(name: TargetName, options: TargetOptions): Promise<BenchTarget> {
  switch (name) {
    case 'resp':
      return RespTarget.open(options);
    case 'http':
      return HttpTarget.open(options);
    case 'ws': {
      // Loaded on demand: the RESP and HTTP targets do not need the client's modules.
      const { WebSocketTarget } = await import('./targets/websocket.js');
      return WebSocketTarget.open(options);
    }
  }
}

/** Writes keys [0, keyCount) with clients × pipeline writers, timed; errors are counted, not fatal. */
export async function preloadKeys(target: BenchTarget, workload: Workload, config: BenchConfig, random: Random, signal?: AbortSignal): Promise<PreloadResult> {
  const startMs = performance.now();
  let nextIndex = 0;
  let errors = 0;
  let firstError: string | null = null;
  const writer = async (client: number): Promise<void> => {
    while (nextIndex < config.keyCount && !signal?.aborted) {
      const key = keyName(config.keyPrefix, nextIndex++);
      try {
        await target.execute(client, { type: 'update', key, value: workload.valueFor(random) });
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  const writers: Promise<void>[] = [];
  for (let client = 0; client < config.load.clients; client++) for (let lane = 0; lane < config.load.pipeline; lane++) writers.push(writer(client));
  await Promise.all(writers);
  return { keys: Math.min(nextIndex, config.keyCount), seconds: (performance.now() - startMs) / 1000, errors, firstError };
}

export async function runBench(config: BenchConfig, options: RunOptions = {}): Promise<BenchResult> {
  const random = new Random(config.seed);
  const workload = new Workload(
    {
      mix: config.mix,
      distribution: config.distribution,
      keyCount: config.keyCount,
      valueSizeBytes: config.valueSizeBytes,
      keyPrefix: config.keyPrefix,
      scanLengthMax: config.scanLengthMax,
      zipfianTheta: config.zipfianTheta,
    },
    random.fork(),
  );
  if (config.endpoints.length === 0) throw new PaxosStoreError('INVALID_ARGUMENT', 'no endpoints to benchmark');
  assertTargetCanRun({ name: config.target, supportsScan: TARGET_SUPPORTS_SCAN[config.target] }, workload);
  const startedAt = new Date().toISOString();
  options.onPhase?.(`connecting ${config.load.clients} ${config.target} clients to ${config.endpoints.map((e) => `${e.host}:${e.port}`).join(', ')}`);
  const target = await openTarget(config.target, {
    endpoints: config.endpoints,
    clients: config.load.clients,
    pipeline: config.load.pipeline,
    connectTimeoutMs: config.connectTimeoutMs,
    operationTimeoutMs: config.timeoutMs,
  });
  try {
    assertTargetCanRun(target, workload);
    let preload: PreloadResult | null = null;
    if (config.preload) {
      options.onPhase?.(`preloading ${config.keyCount} keys`);
      preload = await preloadKeys(target, workload, config, random.fork(), options.signal);
    }
    const statistics = await runLoad(
      {
        load: config.load,
        warmupUs: config.warmupSeconds * 1e6,
        durationUs: config.durationSeconds * 1e6,
        timeoutUs: config.timeoutMs * 1000,
        intervalUs: config.intervalMs * 1000,
      },
      { target, workload, clock: options.clock ?? realClock, random: random.fork(), onProgress: options.onProgress, signal: options.signal },
    );
    return { tool: 'paxosstore-bench', formatVersion: 1, startedAt, config, preload, statistics };
  } finally {
    await target.close();
  }
}
