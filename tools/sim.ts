/**
 * The deterministic simulator's command line (issue 3):
 *
 *   npm run sim -- --seeds 1000              seeds 1..1000, 3 replicas
 *   npm run sim -- --seeds 1000 --replicas 5
 *   npm run sim -- --seed 4242 --replicas 3  one seed, verbose (what a failing seed prints)
 *   npm run sim -- --seeds 100 --first 5000  seeds 5000..5099
 *
 * Exit code 1 when any seed fails (assertion, agreement, linearizability, liveness).
 */
import { Command } from 'commander';
import { describeProfile } from '../src/sim/faults.js';
import { describeReport, runSeed, type SeedReport } from '../src/sim/run-seed.js';

const program = new Command()
  .name('sim')
  .description('Seeded deterministic simulation of a PaxosStore replica group, histories checked for linearizability')
  .option('--seeds <count>', 'number of seeds to run', '100')
  .option('--first <seed>', 'first seed of the range', '1')
  .option('--seed <seed>', 'run exactly this seed (verbose)')
  .option('--replicas <count>', 'replicas: 3 or 5', '3')
  .option('--stop-on-failure', 'stop at the first failing seed', false)
  .parse();

const options = program.opts<{ seeds: string; first: string; seed?: string; replicas: string; stopOnFailure: boolean }>();
const replicaCount = Number(options.replicas);
if (replicaCount !== 3 && replicaCount !== 5) {
  console.error('--replicas must be 3 or 5');
  process.exit(2);
}

const seeds: number[] =
  options.seed !== undefined ? [Number(options.seed)] : Array.from({ length: Number(options.seeds) }, (_, index) => Number(options.first) + index);
if (seeds.some((seed) => !Number.isSafeInteger(seed) || seed < 0)) {
  console.error('seeds must be non-negative integers');
  process.exit(2);
}

const started = performance.now();
const totals = { seeds: 0, failed: 0, inconclusive: 0, operations: 0, ok: 0, error: 0, unknown: 0, messages: 0, dropped: 0, duplicated: 0, crashes: 0, wipes: 0, partitions: 0, chosen: 0 };
const failures: SeedReport[] = [];
for (const seed of seeds) {
  const report = runSeed({ seed, replicaCount });
  totals.seeds++;
  totals.operations += report.operations;
  totals.ok += report.outcomes.ok;
  totals.error += report.outcomes.error;
  totals.unknown += report.outcomes.unknown;
  totals.messages += report.counters.messagesSent;
  totals.dropped += report.counters.messagesDropped;
  totals.duplicated += report.counters.messagesDuplicated;
  totals.crashes += report.counters.crashes;
  totals.wipes += report.counters.wipes;
  totals.partitions += report.counters.partitions;
  totals.chosen += report.counters.chosenEntries;
  if (report.verdict === 'checker-inconclusive') totals.inconclusive++;
  if (options.seed !== undefined) console.log(describeReport(report));
  if (report.verdict !== 'ok' && report.verdict !== 'checker-inconclusive') {
    totals.failed++;
    failures.push(report);
    if (options.seed === undefined) console.log(`FAIL ${describeReport(report)}\n`);
    if (options.stopOnFailure) break;
  } else if (options.seed === undefined && totals.seeds % 100 === 0) {
    console.log(`… ${totals.seeds} seeds, ${totals.failed} failed, ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  if (options.seed !== undefined) console.log(`faults: ${describeProfile(report.profile)}`);
}
const seconds = (performance.now() - started) / 1000;
console.log(
  `${totals.seeds} seeds × ${replicaCount} replicas in ${seconds.toFixed(1)} s: ${totals.failed} failed, ${totals.inconclusive} inconclusive; ` +
    `${totals.operations} operations checked (ok ${totals.ok}, determinate error ${totals.error}, unknown ${totals.unknown}); ` +
    `${totals.chosen} chosen entries; ${totals.messages} messages (${totals.dropped} dropped, ${totals.duplicated} duplicated); ` +
    `${totals.crashes} crashes (${totals.wipes} with disk loss); ${totals.partitions} partitions`,
);
for (const failure of failures.slice(0, 20)) console.log(`reproduce: ${failure.reproduce}`);
process.exit(totals.failed > 0 ? 1 : 0);
