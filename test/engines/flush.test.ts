import { describe, expect, it } from 'vitest';
import type { KeyOperation } from '../../src/api/operations.js';
import { KvApplicator, KvService, kvKey } from '../../src/apps/kv/kv-applicator.js';
import type { HistoryOperation } from '../../src/check/history.js';
import { checkLinearizability } from '../../src/check/linearizability.js';
import { AppliedState } from '../../src/engines/applied-state.js';
import { BASE_ENGINE_DEFAULTS, BaseEngine } from '../../src/engines/base-engine.js';
import { keyName } from '../../src/util/byte-codec.js';
import { PaxosStoreError } from '../../src/errors.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import type { IterateOptions, WriteOperation } from '../../src/storage/engine.js';
import { LsmTree } from '../../src/storage/lsm/index.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';
import { KvCluster, runInSimulation as run } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const set = (value: string): KeyOperation => ({ kind: 'set', value: encoder.encode(value) });
const get: KeyOperation = { kind: 'get', consistency: 'linearizable' };


describe('AppliedState', () => {
  it('reads and iterates like a plain Map of its staged and flushed writes (model test)', async () => {
    const random = new Random(41);
    const store = await LsmTree.open({ directory: '/s', fileSystem: new SimulatedFileSystem(), backgroundThread: 'inline', compression: false });
    const state = new AppliedState(store);
    const model = new Map<string, Uint8Array>();
    const keyOf = (index: number) => encoder.encode(`k${String(index).padStart(2, '0')}`);
    const snapshots: { snapshot: ReturnType<AppliedState['snapshot']>; model: Map<string, Uint8Array> }[] = [];
    for (let step = 0; step < 400; step++) {
      const operations: WriteOperation[] = [];
      for (let index = random.int(4); index >= 0; index--) {
        const key = keyOf(random.int(30));
        if (random.chance(0.25)) {
          operations.push({ type: 'delete', key });
          model.delete(keyName(key));
        } else {
          const value = random.bytes(3);
          operations.push({ type: 'put', key, value });
          model.set(keyName(key), value);
        }
      }
      state.stage(operations);
      if (random.chance(0.1)) await state.flush([]);
      if (random.chance(0.05)) snapshots.push({ snapshot: state.snapshot(), model: new Map(model) });
      const options: IterateOptions = pickRange(random);
      expect(listOf(state.iterate(options))).toEqual(modelList(model, options));
      const probe = keyOf(random.int(30));
      expect(state.get(probe)).toEqual(model.get(keyName(probe)));
    }
    // Snapshots keep their point in time through later stages and flushes.
    for (const { snapshot, model: then } of snapshots) {
      expect(listOf(snapshot.iterate())).toEqual(modelList(then, {}));
      snapshot.release();
    }
    await state.flush([]);
    expect(state.unflushedKeys).toBe(0);
    expect(listOf(store.iterate())).toEqual(modelList(model, {}));
  });
});

function pickRange(random: Random): IterateOptions {
  const bound = () => encoder.encode(`k${String(random.int(30)).padStart(2, '0')}`);
  return {
    start: random.chance(0.5) ? bound() : undefined,
    end: random.chance(0.5) ? bound() : undefined,
    prefix: random.chance(0.3) ? encoder.encode(`k${random.int(3)}`) : undefined,
    reverse: random.chance(0.5),
    limit: random.chance(0.3) ? random.range(1, 6) : undefined,
  };
}

function listOf(entries: Iterable<[Uint8Array, Uint8Array]>): string[] {
  return [...entries].map(([key, value]) => `${decoder.decode(key)}=${Buffer.from(value).toString('hex')}`);
}

function modelList(model: Map<string, Uint8Array>, options: IterateOptions): string[] {
  const latin = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : keyName(bytes));
  const start = latin(options.start);
  const end = latin(options.end);
  const prefix = latin(options.prefix);
  let keys = [...model.keys()].filter((key) => (start === undefined || key >= start) && (end === undefined || key < end) && (prefix === undefined || key.startsWith(prefix)));
  keys.sort();
  if (options.reverse) keys.reverse();
  if (options.limit !== undefined) keys = keys.slice(0, options.limit);
  return keys.map((key) => `${key}=${Buffer.from(model.get(key)!).toString('hex')}`);
}

describe('BaseEngine periodic flush', () => {
  it('applied entries are visible at once and durable every flushEntriesMax entries or flushIntervalTicks', async () => {
    const cluster = await SimLogCluster.create(new Random(42), 3);
    const node = cluster.replica(1).node;
    const base = new BaseEngine(node, new VirtualLog(node), { ...BASE_ENGINE_DEFAULTS, flushEntriesMax: 4, flushIntervalTicks: 500 });
    base.registerUpcall(new KvApplicator());
    const kv = new KvService(base);
    for (let index = 0; index < 10; index++) await run(cluster, kv.execute(`k${index}`, set(`v${index}`)));
    expect(base.appliedPosition).toBe(10);
    expect(base.flushedPosition).toBe(8);
    expect(base.flushes).toBe(2);
    // Entry 9 is applied (readers see it) but only in memory: the LocalStore itself lacks it.
    expect(decoder.decode((await run(cluster, kv.execute('k9', get))).value!)).toBe('v9');
    expect(node.store.get(kvKey('k9'))).toBeUndefined();
    expect(node.store.get(kvKey('k7'))).toBeDefined();
    // The interval knob: the first entry applied 500 ticks after the last flush flushes.
    await cluster.world.runUntil(() => false, 600);
    await run(cluster, kv.execute('k10', set('v10')));
    expect(base.flushedPosition).toBe(11);
    expect(node.store.get(kvKey('k10'))).toBeDefined();
    // flushEntriesMax 1: every entry is durable before its caller hears back.
    const durable = new BaseEngine(cluster.replica(2).node, new VirtualLog(cluster.replica(2).node), { ...BASE_ENGINE_DEFAULTS, flushEntriesMax: 1 });
    durable.registerUpcall(new KvApplicator());
    await run(cluster, new KvService(durable).execute('k11', set('v11')));
    expect(durable.flushedPosition).toBe(durable.appliedPosition);
    expect(cluster.replica(2).store.get(kvKey('k11'))).toBeDefined();
  });

  it('a replica that crashes with unflushed entries replays them: linearizable, LocalStores equal', async () => {
    // Flushes every 8 entries: the crash falls between two flushes, after several.
    const cluster = await KvCluster.create(43, { dropRate: 0.02, duplicateRate: 0.02, delayTicksMin: 1, delayTicksMax: 4 }, { base: { flushEntriesMax: 8 } });
    const random = new Random(4343);
    const history: HistoryOperation[] = [];
    const operate = async (clientId: string, replicaId: number, key: string, operation: KeyOperation): Promise<void> => {
      const index = history.length;
      const invokeTime = cluster.world.now();
      history.push({ clientId, key, operation, invokeTime, returnTime: Number.POSITIVE_INFINITY, outcome: { type: 'unknown' } });
      try {
        const result = await cluster.replica(replicaId).kv.execute(key, operation);
        history[index] = { ...history[index], returnTime: cluster.world.now() + 0.5, outcome: { type: 'ok', result } };
      } catch (error) {
        if (!(error instanceof PaxosStoreError)) throw error;
      }
      await cluster.world.sleep(1, {});
    };
    const load = (replicaIds: number[], rounds: number) =>
      Promise.all(
        replicaIds.map(async (replicaId) => {
          for (let round = 0; round < rounds; round++) {
            const key = `k${random.int(4)}`;
            await operate(`c${replicaId}`, replicaId, key, random.chance(0.3) ? get : { kind: 'incr', delta: 1n });
          }
        }),
      );
    await cluster.run(load([1, 2, 3], 12));
    // Replica 2 holds acknowledged, applied, unflushed entries when the power goes.
    const before = cluster.replica(2).stack.base;
    expect(before.appliedPosition).toBeGreaterThan(before.flushedPosition);
    const flushedBefore = before.flushedPosition;
    expect(flushedBefore).toBeGreaterThan(0);
    cluster.sim.crash(2);
    await cluster.run(load([1, 3], 8));
    await cluster.sim.restart(2);
    const restarted = cluster.rebuild(2).stack.base;
    expect(restarted.appliedPosition).toBe(flushedBefore);
    await cluster.run(load([1, 2, 3], 8));
    expect(restarted.entriesApplied).toBeGreaterThan(0);
    cluster.world.faults = { dropRate: 0, duplicateRate: 0, delayTicksMin: 1, delayTicksMax: 2 };
    const verdict = checkLinearizability(history, { searchStepsMax: 2_000_000 });
    expect(verdict.verdict).toBe('linearizable');
    expect(new Set(await cluster.digests()).size).toBe(1);
    expect(cluster.sim.failures()).toEqual([]);
  });

  it('a lease holder that restarts with unflushed entries does not read locally before playing the log', async () => {
    const cluster = await KvCluster.create(44, undefined, { lease: { leaseTicks: 100_000, marginTicks: 100 } });
    const holder = () => cluster.replica(1);
    expect(await cluster.run(holder().stack.lease!.acquire())).toBe(true);
    await cluster.run(holder().stack.base.flush()); // the grant is durable here…
    await cluster.run(holder().kv.execute('k', set('acknowledged'))); // …this write is not
    expect(holder().stack.base.appliedPosition).toBeGreaterThan(holder().stack.base.flushedPosition);
    cluster.sim.crash(1);
    await cluster.sim.restart(1);
    cluster.rebuild(1);
    // The restarted stack finds itself holding a valid lease, yet its LocalStore lacks the write.
    expect(holder().stack.lease!.holdsValidLease()).toBe(true);
    const read = await cluster.run(holder().kv.execute('k', get));
    expect(decoder.decode(read.value!)).toBe('acknowledged');
    // Once played to the tail it reads locally again.
    const messages = cluster.world.messagesSent;
    expect(decoder.decode((await cluster.run(holder().kv.execute('k', get))).value!)).toBe('acknowledged');
    expect(cluster.world.messagesSent).toBe(messages);
  });
});
