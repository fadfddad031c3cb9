/**
 * `paxosstore bench …`: parses flags, runs one benchmark or a sweep, prints the table (or JSON),
 * writes the HTML report. Exit codes: 0 = ran with no errors or timeouts, 3 = ran but some
 * operations failed or timed out (the table says which), 2 = bad flags, 1 = could not run.
 *
 * Mounted by the CLI (src/cli/main.ts) and runnable alone: `node dist/src/bench/command.js …`.
 */
import { writeFile } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isPaxosStoreError, PaxosStoreError } from '../errors.js';
import { type KeyDistributionName, ZIPFIAN_THETA_DEFAULT } from './key-distribution.js';
import { formatResult, formatSweep } from './format.js';
import type { LoadModel } from './load.js';
import { createProgressLine } from './progress.js';
import { renderReport } from './report.js';
import { type BenchConfig, type BenchResult, runBench } from './run.js';
import { defaultClusterCommand, parseSweepParameter, runSweep, type SweepParameter, type SweepResult } from './sweep.js';
import { parseEndpoints, type TargetName } from './targets/types.js';
import { parseMix, WORKLOAD_PRESETS, type WorkloadName } from './workload.js';

export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_BAD_ARGUMENTS = 2;
export const EXIT_OPERATION_ERRORS = 3;
/** Interrupted by SIGINT/SIGTERM (128 + SIGINT, as shells report it); partial results are still printed. */
export const EXIT_INTERRUPTED = 130;

const DEFAULT_ENDPOINTS: Readonly<Record<TargetName, string>> = { resp: '127.0.0.1:7100', http: '127.0.0.1:7101', ws: '127.0.0.1:7101' };

function number(name: string, check: (value: number) => boolean, expectation: string) {
  return (text: string): number => {
    const value = Number(text);
    if (text.trim() === '' || !Number.isFinite(value) || !check(value)) throw new InvalidArgumentError(`${name} must be ${expectation}, got "${text}"`);
    return value;
  };
}
const positiveInteger = (name: string) => number(name, (value) => Number.isSafeInteger(value) && value > 0, 'a positive integer');
const nonNegativeInteger = (name: string) => number(name, (value) => Number.isSafeInteger(value) && value >= 0, 'a non-negative integer');
const positive = (name: string) => number(name, (value) => value > 0, 'positive');
const nonNegative = (name: string) => number(name, (value) => value >= 0, 'non-negative');

function wrap<T>(parse: (text: string) => T) {
  return (text: string): T => {
    try {
      return parse(text);
    } catch (error) {
      throw new InvalidArgumentError(error instanceof Error ? error.message : String(error));
    }
  };
}

interface Flags {
  target: TargetName;
  endpoints?: string;
  workload: WorkloadName;
  mix?: ReturnType<typeof parseMix>;
  distribution?: KeyDistributionName;
  zipfianTheta: number;
  keys: number;
  valueSize: number;
  keyPrefix: string;
  scanLengthMax: number;
  preload: boolean;
  clients: number;
  pipeline?: number;
  rate?: number;
  arrival: 'poisson' | 'uniform';
  duration: number;
  warmup: number;
  timeoutMs: number;
  intervalMs: number;
  connectTimeoutMs: number;
  seed: number;
  json: boolean;
  report?: string;
  sweep: SweepParameter[];
  clusterCommand?: string;
  clusterReplicas: number;
  clusterBasePort?: number;
  clusterReadyTimeoutMs: number;
}

function buildProgram(): Command {
  return new Command('paxosstore bench')
    .description('Benchmark a PaxosStore cluster or any RESP server: YCSB workloads, open/closed loop, HDR latency, sweeps.')
    .addOption(new Option('--target <protocol>', 'protocol to drive: resp (Redis protocol), http (REST), ws (the WebSocket client)').choices(['resp', 'http', 'ws']).default('resp'))
    .option('--endpoints <list>', 'HOST:PORT[,HOST:PORT…]; clients are spread over them (default: resp 127.0.0.1:7100, http and ws 127.0.0.1:7101)')
    .addOption(new Option('--workload <letter>', 'YCSB core workload').choices(['A', 'B', 'C', 'D', 'E', 'F']).default('A'))
    .option('--mix <mix>', 'custom mix instead of --workload, e.g. read=0.9,update=0.1 (read, update, insert, scan, rmw)', wrap(parseMix))
    .addOption(new Option('--distribution <name>', "key distribution (default: the workload's)").choices(['uniform', 'zipfian', 'latest']))
    .option('--zipfian-theta <theta>', 'zipfian skew', number('--zipfian-theta', (value) => value > 0 && value < 1, 'in (0, 1)'), ZIPFIAN_THETA_DEFAULT)
    .option('--keys <n>', 'key count', positiveInteger('--keys'), 100_000)
    .option('--value-size <bytes>', 'value size', nonNegativeInteger('--value-size'), 100)
    .option('--key-prefix <prefix>', 'key prefix', 'bench:')
    .option('--scan-length-max <n>', 'scans read 1..n keys (uniform)', positiveInteger('--scan-length-max'), 100)
    .option('--preload', 'write every key once before the run', false)
    .option('--clients <n>', 'client connections', positiveInteger('--clients'), 8)
    .option('--pipeline <n>', 'requests in flight per client (default 1 closed loop, 32 open loop)', positiveInteger('--pipeline'))
    .option('--rate <ops>', 'open loop: operations per second (latency from the intended send time)', positive('--rate'))
    .addOption(new Option('--arrival <process>', 'open-loop arrivals').choices(['poisson', 'uniform']).default('poisson'))
    .option('--duration <seconds>', 'measured time', positive('--duration'), 10)
    .option('--warmup <seconds>', 'unmeasured time before it', nonNegative('--warmup'), 2)
    .option('--timeout-ms <ms>', 'an operation not answered this long after its intended time is a timeout', positive('--timeout-ms'), 5000)
    .option('--interval-ms <ms>', 'time-series resolution', positive('--interval-ms'), 1000)
    .option('--connect-timeout-ms <ms>', 'connection setup timeout', positive('--connect-timeout-ms'), 5000)
    .option('--seed <n>', 'seed of the workload generator', nonNegativeInteger('--seed'), 1)
    .option('--json', 'print the result as JSON on stdout', false)
    .option('--report <file>', 'write a self-contained HTML report')
    .option('--sweep <name=v1,v2,…>', 'start a fresh local cluster per combination (repeatable): socketsPerPeer, batchMaxDelayUs, batchMaxBytes, shards', (text: string, previous: SweepParameter[]) => [...previous, wrap(parseSweepParameter)(text)], [])
    .option('--cluster-command <command>', 'sweep: command that starts a local cluster (default: this paxosstore\'s "cluster")')
    .option('--cluster-replicas <n>', 'sweep: replicas per cluster', positiveInteger('--cluster-replicas'), 3)
    .option('--cluster-base-port <port>', 'sweep: base port (default: a free block)', positiveInteger('--cluster-base-port'))
    .option('--cluster-ready-timeout-ms <ms>', 'sweep: wait this long for the ready line', positive('--cluster-ready-timeout-ms'), 60_000)
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text), writeOut: (text) => process.stdout.write(text) });
}

export function configFromFlags(flags: Flags): BenchConfig {
  const preset = WORKLOAD_PRESETS[flags.workload];
  const pipeline = flags.pipeline ?? (flags.rate === undefined ? 1 : 32);
  const load: LoadModel =
    flags.rate === undefined
      ? { kind: 'closed', clients: flags.clients, pipeline }
      : { kind: 'open', clients: flags.clients, pipeline, ratePerSecond: flags.rate, arrival: flags.arrival };
  return {
    target: flags.target,
    endpoints: parseEndpoints(flags.endpoints ?? DEFAULT_ENDPOINTS[flags.target]),
    workload: flags.mix ? 'custom' : flags.workload,
    mix: flags.mix ?? preset.mix,
    distribution: flags.distribution ?? (flags.mix ? 'zipfian' : preset.distribution),
    zipfianTheta: flags.zipfianTheta,
    keyCount: flags.keys,
    valueSizeBytes: flags.valueSize,
    keyPrefix: flags.keyPrefix,
    scanLengthMax: flags.scanLengthMax,
    preload: flags.preload,
    load,
    warmupSeconds: flags.warmup,
    durationSeconds: flags.duration,
    timeoutMs: flags.timeoutMs,
    intervalMs: flags.intervalMs,
    connectTimeoutMs: flags.connectTimeoutMs,
    seed: flags.seed,
  };
}

function failedOperations(result: BenchResult | SweepResult): boolean {
  const results = 'runs' in result ? result.runs.map((run) => run.result) : [result];
  return results.some((item) => item === null || item.statistics.total.errors + item.statistics.total.timeouts > 0 || (item.preload?.errors ?? 0) > 0);
}

/** Runs `paxosstore bench` with `argv` (the arguments after "bench"); resolves to the exit code. */
export async function runBenchCommand(argv: string[]): Promise<number> {
  const program = buildProgram();
  let config: BenchConfig;
  let flags: Flags;
  try {
    program.parse(argv, { from: 'user' });
    flags = program.opts<Flags>();
    config = configFromFlags(flags);
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? EXIT_OK : EXIT_BAD_ARGUMENTS;
    process.stderr.write(`paxosstore bench: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_BAD_ARGUMENTS;
  }
  const progress = createProgressLine();
  // Ctrl-C (or SIGTERM) ends the run early but cleanly: a sweep's cluster is stopped and its data
  // removed, and what was measured is still printed.
  const interruption = new AbortController();
  const interrupt = (): void => interruption.abort();
  process.once('SIGINT', interrupt);
  process.once('SIGTERM', interrupt);
  try {
    const runOptions = { onProgress: progress.update, onPhase: progress.message, signal: interruption.signal };
    let result: BenchResult | SweepResult;
    if (flags.sweep.length > 0) {
      const cluster = flags.clusterCommand ? { command: '/bin/sh', args: ['-c', `exec ${flags.clusterCommand} "$@"`, 'cluster'] } : defaultClusterCommand();
      result = await runSweep(
        config,
        { parameters: flags.sweep, cluster, replicas: flags.clusterReplicas, readyTimeoutMs: flags.clusterReadyTimeoutMs, stopTimeoutMs: 10_000, basePort: flags.clusterBasePort },
        runOptions,
      );
    } else {
      result = await runBench(config, runOptions);
    }
    progress.finish();
    if (flags.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write('runs' in result ? formatSweep(result) : formatResult(result));
    if (flags.report) {
      await writeFile(flags.report, renderReport(result));
      if (!flags.json) process.stdout.write(`\nreport written to ${flags.report}\n`);
    }
    if (interruption.signal.aborted) return EXIT_INTERRUPTED;
    return failedOperations(result) ? EXIT_OPERATION_ERRORS : EXIT_OK;
  } catch (error) {
    progress.finish();
    const code = isPaxosStoreError(error) ? `${error.code}: ` : '';
    process.stderr.write(`paxosstore bench: ${code}${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof PaxosStoreError && error.code === 'INVALID_ARGUMENT' ? EXIT_BAD_ARGUMENTS : EXIT_FAILED;
  } finally {
    process.removeListener('SIGINT', interrupt);
    process.removeListener('SIGTERM', interrupt);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runBenchCommand(process.argv.slice(2));
}
