/**
 * Figures of docs/delos.md, measured on the simulated 3-replica cluster (in-memory disks, network
 * delay 1–2 ticks): entries/s through the stack with and without BatchingEngine (same run), sync
 * latency with and without LeaseEngine, and per-engine overhead from an ObserverEngine above
 * every engine. Wall-clock numbers are the CPU cost of the code path (the simulator adds no real
 * waiting); tick numbers are round trips in simulated time.
 *
 *   npx tsc -p . && node dist/tools/delos-figures.js [--proposals 2000] [--concurrency 32]
 */
import { KvApplicator, KvService } from '../src/apps/kv/kv-applicator.js';
import { BaseEngine } from '../src/engines/base-engine.js';
import { BatchingEngine } from '../src/engines/batching-engine.js';
import { BrainDoctorEngine } from '../src/engines/brain-doctor-engine.js';
import { ObserverEngine } from '../src/engines/observer-engine.js';
import { buildStack } from '../src/engines/stack.js';
import type { IEngine } from '../src/engines/types.js';
import { ViewTrackingEngine } from '../src/engines/view-tracking-engine.js';
import { SimLogCluster } from '../src/log/sim-cluster.js';
import { VirtualLog } from '../src/log/virtual-log.js';
import { Random } from '../src/util/random.js';

const encoder = new TextEncoder();

function argument(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const PROPOSALS = argument('proposals', 2000);
const CONCURRENCY = argument('concurrency', 32);

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

async function throughput(batching: boolean): Promise<{ proposalsPerSecond: number; entries: number; ticks: number }> {
  const cluster = await SimLogCluster.create(new Random(1), 3);
  const stack = buildStack(cluster.replica(1).node, new KvApplicator(), { batching });
  const kv = new KvService(stack.top);
  const startMs = performance.now();
  const startTick = cluster.world.now();
  await run(cluster, drive(kv, PROPOSALS, CONCURRENCY));
  const elapsedMs = performance.now() - startMs;
  return { proposalsPerSecond: Math.round((PROPOSALS / elapsedMs) * 1000), entries: stack.base.entriesApplied, ticks: cluster.world.now() - startTick };
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

const without = await throughput(false);
const withBatching = await throughput(true);
console.log(`# Delos figures (${PROPOSALS} proposals, ${CONCURRENCY} concurrent, 3 simulated replicas)`);
console.log(`throughput without batching: ${without.proposalsPerSecond} proposals/s wall clock, ${without.entries} log entries, ${without.ticks} simulated ticks`);
console.log(`throughput with batching:    ${withBatching.proposalsPerSecond} proposals/s wall clock, ${withBatching.entries} log entries, ${withBatching.ticks} simulated ticks`);
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
