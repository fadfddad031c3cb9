/**
 * `npm run bench:micro`: every micro-benchmark of the project (tinybench), printed as one table.
 *
 *   node dist/bench/micro/index.js [name…] [--time-ms N]
 *
 * Names select suites (resp, frame, ring, paxos, scheduler, bitcask; default all); --time-ms is
 * the measuring time per task (default 1000). Exit code 1 if any task failed.
 */
import type { Bench } from 'tinybench';
import { benchBitcask } from './bitcask.js';
import { benchFrame } from './frame.js';
import { benchPaxos } from './paxos.js';
import { benchResp } from './resp.js';
import { benchRing } from './ring.js';
import { benchScheduler } from './scheduler.js';

const SUITES: Readonly<Record<string, (timeMs: number) => Promise<Bench>>> = {
  resp: benchResp,
  frame: benchFrame,
  ring: benchRing,
  paxos: benchPaxos,
  scheduler: benchScheduler,
  bitcask: benchBitcask,
};

interface Row {
  suite: string;
  task: string;
  'ops/s': string;
  'mean µs': string;
  'p99 µs': string;
  '±%': string;
  samples: number;
}

function parseArguments(argv: readonly string[]): { names: string[]; timeMs: number } {
  const names: string[] = [];
  let timeMs = 1000;
  for (let index = 0; index < argv.length; index++) {
    if (argv[index] === '--time-ms') {
      timeMs = Number(argv[++index]);
      if (!(timeMs > 0)) throw new Error('--time-ms needs a positive number');
    } else if (Object.hasOwn(SUITES, argv[index])) names.push(argv[index]);
    else throw new Error(`unknown suite "${argv[index]}"; suites: ${Object.keys(SUITES).join(', ')}`);
  }
  return { names: names.length > 0 ? names : Object.keys(SUITES), timeMs };
}

function rowsOf(suite: string, bench: Bench): { rows: Row[]; failures: string[] } {
  const rows: Row[] = [];
  const failures: string[] = [];
  for (const task of bench.tasks) {
    const result = task.result;
    if (result.state === 'errored') {
      failures.push(`${suite} / ${task.name}: ${result.error.message}`);
      continue;
    }
    if (result.state !== 'completed') {
      failures.push(`${suite} / ${task.name}: ${result.state}`);
      continue;
    }
    rows.push({
      suite,
      task: task.name,
      // From the mean latency, so that ops/s × mean µs = 10^6 (tinybench's throughput.mean averages per-sample rates).
      'ops/s': Math.round(1000 / result.latency.mean).toLocaleString('en-US'),
      'mean µs': (result.latency.mean * 1000).toFixed(2),
      'p99 µs': (result.latency.p99 * 1000).toFixed(2),
      '±%': ((result.latency.moe / result.latency.mean) * 100).toFixed(2),
      samples: result.latency.samplesCount ?? task.runs,
    });
  }
  return { rows, failures };
}

const { names, timeMs } = parseArguments(process.argv.slice(2));
const rows: Row[] = [];
const failures: string[] = [];
for (const name of names) {
  process.stderr.write(`running ${name}…\n`);
  try {
    const outcome = rowsOf(name, await SUITES[name](timeMs));
    rows.push(...outcome.rows);
    failures.push(...outcome.failures);
  } catch (error) {
    failures.push(`${name}: ${error instanceof Error ? error.message : String(error)}`);
  }
}
console.table(rows);
for (const failure of failures) process.stderr.write(`FAILED ${failure}\n`);
process.exitCode = failures.length > 0 ? 1 : 0;
