/**
 * Figures of docs/delos.md, measured on the simulated 3-replica cluster (in-memory disks, network
 * delay 1–2 ticks): entries/s through the stack with and without BatchingEngine (same run), the
 * same with every entry flushed (flushEntriesMax 1, the behaviour before periodic flush) against
 * the default periodic flush, playback (catch-up) entries/s with both, sync latency with and
 * without LeaseEngine, and per-engine overhead from an ObserverEngine above every engine. One
 * figure uses the real disk: the apply loop's LocalStore writes (KV applies staged in
 * AppliedState, flushed every entry or every flushEntriesMax) on an LsmTree in the temp directory.
 * Wall-clock numbers are the CPU cost of the code path (the simulator adds no real waiting); tick
 * numbers are round trips in simulated time. Throughput configurations run interleaved
 * `--repeat` times and report the median, so machine load hits them alike.
 *
 *   npx tsc -p . && node dist/tools/delos-figures.js [--proposals 2000] [--concurrency 32] [--repeat 3] [--disk-entries 500]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvApplicator, KvService } from '../src/apps/kv/kv-applicator.js';
import { AppliedState } from '../src/engines/applied-state.js';
import { BASE_ENGINE_DEFAULTS, BaseEngine, type BaseEngineOptions } from '../src/engines/base-engine.js';
import { BatchingEngine } from '../src/engines/batching-engine.js';
import { BrainDoctorEngine } from '../src/engines/brain-doctor-engine.js';
import { ObserverEngine } from '../src/engines/observer-engine.js';
import { buildStack } from '../src/engines/stack.js';
import { applyOutcome, StoreTransaction } from '../src/engines/transaction.js';
import type { IEngine } from '../src/engines/types.js';
import { ViewTrackingEngine } from '../src/engines/view-tracking-engine.js';
import { SimLogCluster } from '../src/log/sim-cluster.js';
import { VirtualLog } from '../src/log/virtual-log.js';
import { LsmTree } from '../src/storage/lsm/index.js';
import { Random } from '../src/util/random.js';

const encoder = new TextEncoder();

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const PROPOSALS = argument('proposals', 2000);
const CONCURRENCY = argument('concurrency', 32);
const REPEAT = argument('repeat', 3);
const DISK_ENTRIES = argument('disk-entries', 500);
/** Every entry durable before its caller hears back: BaseEngine before periodic flush. */
const FLUSH_EVERY_ENTRY: Partial<BaseEngineOptions> = { flushEntriesMax: 1 };

async function run<T>(cluster: SimLogCluster, promise: Promise<T>): Promise<T> {
  const outcome = await cluster.world.runFor(promise, 10_000_000);
  if (!outcome.settled) throw new Error('did not settle');
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.value as T;
}

async function drive(kv: KvService, count: number, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      await kv.execute(`k${index % 100}`, { kind: 'set', value: encoder.encode(`v${index}`) });
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

interface Throughput {
  readonly proposalsPerSecond: number;
  readonly entries: number;
  readonly ticks: number;
}

async function throughput(batching: boolean, base: Partial<BaseEngineOptions> = {}): Promise<Throughput> {
  const cluster = await SimLogCluster.create(new Random(1), 3);
  const stack = buildStack(cluster.replica(1).node, new KvApplicator(), { batching, base });
  const kv = new KvService(stack.top);
  const startMs = performance.now();
  const startTick = cluster.world.now();
  await run(cluster, drive(kv, PROPOSALS, CONCURRENCY));
  const elapsedMs = performance.now() - startMs;
  return { proposalsPerSecond: Math.round((PROPOSALS / elapsedMs) * 1000), entries: stack.base.entriesApplied, ticks: cluster.world.now() - startTick };
}

/** Entries/s of a replica that plays a log of PROPOSALS entries written by another one. */
async function playback(base: Partial<BaseEngineOptions>): Promise<number> {
  const cluster = await SimLogCluster.create(new Random(4), 3);
  const writer = buildStack(cluster.replica(1).node, new KvApplicator(), { batching: false });
  await run(cluster, drive(new KvService(writer.top), PROPOSALS, CONCURRENCY));
  const reader = buildStack(cluster.replica(2).node, new KvApplicator(), { base });
  const startMs = performance.now();
  (await run(cluster, reader.top.sync())).release();
  const elapsedMs = performance.now() - startMs;
  return Math.round((reader.base.entriesApplied / elapsedMs) * 1000);
}

/** Entries/s of the apply loop's LocalStore work on the real disk, flushing every `flushEntriesMax` entries. */
async function applyLoopOnDisk(flushEntriesMax: number): Promise<number> {
  const directory = mkdtempSync(join(tmpdir(), 'delos-figures-'));
  const store = await LsmTree.open({ directory, backgroundThread: 'inline' });
  try {
    const state = new AppliedState(store);
    const applicator = new KvApplicator();
    const cursorKey = encoder.encode('E/cursor');
    const startMs = performance.now();
    for (let position = 0; position < DISK_ENTRIES; position++) {
      const body = [`k${position % 100}`, 'set', encoder.encode(`v${position}`), null, null, false, false];
      const transaction = new StoreTransaction(state);
      applyOutcome(transaction, (sub) => applicator.apply(sub, { headers: {}, body }));
      state.stage(transaction.operations());
      if ((position + 1) % flushEntriesMax === 0) await state.flush([{ type: 'put', key: cursorKey, value: encoder.encode(String(position + 1)) }]);
    }
    await state.flush([]);
    return Math.round((DISK_ENTRIES / (performance.now() - startMs)) * 1000);
  } finally {
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  }
}

/** Runs every configuration REPEAT times, interleaved, and keeps the median of each. */
async function medians<T>(configurations: Record<string, () => Promise<T>>, rank: (value: T) => number): Promise<Record<string, T>> {
  const runs: Record<string, T[]> = Object.fromEntries(Object.keys(configurations).map((name) => [name, []]));
  for (let round = 0; round < REPEAT; round++) {
    for (const [name, measure] of Object.entries(configurations)) runs[name].push(await measure());
  }
  return Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, [...values].sort((a, b) => rank(a) - rank(b))[Math.floor(values.length / 2)]]));
}

async function syncLatency(lease: boolean): Promise<{ p50Ticks: number; p99Ticks: number; p99Us: number }> {
  const cluster = await SimLogCluster.create(new Random(2), 3);
  const stack = buildStack(cluster.replica(1).node, new KvApplicator(), lease ? { lease: { leaseTicks: 1_000_000, marginTicks: 10 } } : {});
  if (stack.lease !== null) await run(cluster, stack.lease.acquire());
  const kv = new KvService(stack.top);
  await run(cluster, kv.execute('k', { kind: 'set', value: encoder.encode('v') }));
  const ticks: number[] = [];
  const micros: number[] = [];
  for (let i = 0; i < 500; i++) {
    const startTick = cluster.world.now();
    const startUs = performance.now() * 1000;
    (await run(cluster, stack.top.sync())).release();
    ticks.push(cluster.world.now() - startTick);
    micros.push(performance.now() * 1000 - startUs);
  }
  const percentile = (values: number[], p: number): number => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(values.length * p))];
  return { p50Ticks: percentile(ticks, 0.5), p99Ticks: percentile(ticks, 0.99), p99Us: Math.round(percentile(micros, 0.99)) };
}

async function perEngineOverhead(): Promise<Record<string, ReturnType<ObserverEngine['snapshot']>>> {
  const cluster = await SimLogCluster.create(new Random(3), 3);
  const node = cluster.replica(1).node;
  const base = new BaseEngine(node, new VirtualLog(node));
  const store = base.localStore;
  const observers: Record<string, ObserverEngine> = {};
  const observe = (name: string, engine: IEngine): ObserverEngine => {
    observers[name] = new ObserverEngine(`observer:${name}`, engine, store);
    return observers[name];
  };
  const aboveBase = observe('base', base);
  const views = new ViewTrackingEngine(aboveBase, store, node.replicaId, node.replicaIds, () => base.flushedPosition);
  const doctor = new BrainDoctorEngine(observe('viewTracking', views), store);
  const batching = new BatchingEngine(observe('brainDoctor', doctor), store);
  const top = observe('batching', batching);
  top.registerUpcall(new KvApplicator());
  await run(cluster, drive(new KvService(top), PROPOSALS, CONCURRENCY));
  return Object.fromEntries(Object.entries(observers).map(([name, observer]) => [name, observer.snapshot()]));
}

const rates = await medians(
  {
    plain: () => throughput(false),
    batching: () => throughput(true),
    plainFlushEveryEntry: () => throughput(false, FLUSH_EVERY_ENTRY),
    batchingFlushEveryEntry: () => throughput(true, FLUSH_EVERY_ENTRY),
  },
  (value) => value.proposalsPerSecond,
);
const describe = (value: Throughput) => `${value.proposalsPerSecond} proposals/s wall clock, ${value.entries} log entries, ${value.ticks} simulated ticks`;
console.log(`# Delos figures (${PROPOSALS} proposals, ${CONCURRENCY} concurrent, 3 simulated replicas, median of ${REPEAT})`);
console.log(`periodic flush (flushEntriesMax ${BASE_ENGINE_DEFAULTS.flushEntriesMax}):`);
console.log(`  throughput without batching: ${describe(rates.plain)}`);
console.log(`  throughput with batching:    ${describe(rates.batching)}`);
console.log('every entry flushed (flushEntriesMax 1):');
console.log(`  throughput without batching: ${describe(rates.plainFlushEveryEntry)}`);
console.log(`  throughput with batching:    ${describe(rates.batchingFlushEveryEntry)}`);
const playbackRates = await medians({ periodic: () => playback({}), everyEntry: () => playback(FLUSH_EVERY_ENTRY) }, (value) => value);
console.log(`playback (catch-up of ${PROPOSALS} entries): periodic flush ${playbackRates.periodic} entries/s, every entry flushed ${playbackRates.everyEntry} entries/s`);
const diskRates = await medians({ periodic: () => applyLoopOnDisk(BASE_ENGINE_DEFAULTS.flushEntriesMax), everyEntry: () => applyLoopOnDisk(1) }, (value) => value);
console.log(`apply loop LocalStore writes on the real disk (${DISK_ENTRIES} KV entries): periodic flush ${diskRates.periodic} entries/s, every entry flushed ${diskRates.everyEntry} entries/s`);
const syncWithout = await syncLatency(false);
const syncWith = await syncLatency(true);
console.log(`sync without lease: p50 ${syncWithout.p50Ticks} ticks, p99 ${syncWithout.p99Ticks} ticks, p99 ${syncWithout.p99Us} µs CPU`);
console.log(`sync with lease:    p50 ${syncWith.p50Ticks} ticks, p99 ${syncWith.p99Ticks} ticks, p99 ${syncWith.p99Us} µs CPU`);
console.log('per-engine observers (propose = time in the layers below the observer; apply = time in the layers above):');
for (const [name, snapshot] of Object.entries(await perEngineOverhead())) {
  console.log(
    `  above ${name.padEnd(13)} propose p50 ${snapshot.propose.p50Us} µs p99 ${snapshot.propose.p99Us} µs (n=${snapshot.propose.count}); apply p50 ${snapshot.apply.p50Us} µs p99 ${snapshot.apply.p99Us} µs (n=${snapshot.apply.count})`,
  );
}
