import { describe, expect, it } from 'vitest';
import { KvApplicator, KvService, kvKey } from '../../src/apps/kv/kv-applicator.js';
import { BaseEngine } from '../../src/engines/base-engine.js';
import { ObserverEngine } from '../../src/engines/observer-engine.js';
import type { StackEntry } from '../../src/engines/types.js';
import { ViewTrackingEngine } from '../../src/engines/view-tracking-engine.js';
import type { PaxosStoreError } from '../../src/errors.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import { KvCluster, localStoreDigest } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const set = (value: string) => ({ kind: 'set' as const, value: encoder.encode(value) });

describe('BatchingEngine', () => {
  it('turns concurrent proposals into few log entries, with per-proposal results and exceptions', async () => {
    const cluster = await KvCluster.create(1, undefined, { batching: true });
    const replica = cluster.replica(1);
    await cluster.run(replica.kv.execute('text', set('not a number')));
    const appliedBefore = replica.stack.base.entriesApplied;
    const proposals = Array.from({ length: 40 }, (_, index) =>
      replica.kv.execute(`k${index % 5}`, index === 7 ? { kind: 'incr', delta: 1n } : { kind: 'incr', delta: 1n }).catch((error: unknown) => error),
    );
    const wrong = replica.kv.execute('text', { kind: 'incr', delta: 1n }).catch((error: unknown) => error);
    const results = await cluster.run(Promise.all([...proposals, wrong]));
    const entries = replica.stack.base.entriesApplied - appliedBefore;
    expect(entries).toBeLessThanOrEqual(3);
    expect(results.slice(0, 40).every((result) => !(result instanceof Error))).toBe(true);
    expect((results[40] as PaxosStoreError).code).toBe('WRONG_TYPE');
    const counter = await cluster.run(replica.kv.execute('k0', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(counter.value!)).toBe('8');
    // Without batching the same load takes one entry per proposal.
    const plain = await KvCluster.create(1);
    const before = plain.replica(1).stack.base.entriesApplied;
    await plain.run(Promise.all(Array.from({ length: 10 }, (_, index) => plain.replica(1).kv.execute(`k${index}`, set('v')))));
    expect(plain.replica(1).stack.base.entriesApplied - before).toBe(10);
  });
});

describe('ObserverEngine', () => {
  it('records propose, sync and apply latency of the layers it wraps', async () => {
    const cluster = await KvCluster.create(2);
    const world = cluster.world;
    // Simulated microseconds = ticks, so the figures are deterministic.
    const node = cluster.sim.replica(1).node;
    const base = new BaseEngine(node, new VirtualLog(node));
    const observer = new ObserverEngine('observer', base, base.localStore, () => world.now());
    const applicator = new KvApplicator();
    observer.registerUpcall(applicator);
    const kv = new KvService(observer);
    for (let i = 0; i < 5; i++) await cluster.run(kv.execute('k', set(`v${i}`)));
    await cluster.run(kv.execute('k', { kind: 'get', consistency: 'linearizable' }));
    const snapshot = observer.snapshot();
    expect(snapshot.propose.count).toBe(5);
    expect(snapshot.sync.count).toBe(1);
    expect(snapshot.apply.count).toBe(5);
    expect(snapshot.propose.p50Us).toBeGreaterThanOrEqual(2); // at least one network round trip
    expect(snapshot.apply.maxUs).toBe(0); // apply is synchronous: no simulated time passes
  });
});

describe('ViewTrackingEngine', () => {
  it('learns every replica applied position through headers and trims the log at the minimum', async () => {
    const cluster = await KvCluster.create(3);
    for (let i = 0; i < 6; i++) await cluster.run(cluster.replica(1).kv.execute(`k${i}`, set('v')));
    // Replica 3 never proposed: nothing may be trimmed.
    await cluster.run(cluster.replica(1).stack.base.trim());
    expect(cluster.sim.replica(1).node.loglet(1).trimmedBelow).toBe(0);
    for (const id of [2, 3]) {
      (await cluster.run(cluster.replica(id).stack.top.sync())).release();
      await cluster.run(cluster.replica(id).stack.views.heartbeat());
    }
    await cluster.run(cluster.replica(1).stack.views.heartbeat());
    const views = cluster.replica(1).stack.views.viewSnapshot();
    expect(views.size).toBe(3);
    for (const id of [2, 3]) {
      (await cluster.run(cluster.replica(id).stack.top.sync())).release();
      expect(cluster.replica(id).stack.views.viewSnapshot()).toEqual(views);
    }
    const minimum = Math.min(...views.values());
    expect(minimum).toBeGreaterThan(0);
    const trimmed = await cluster.run(cluster.replica(1).stack.base.trim());
    expect(trimmed).toBe(minimum);
    expect(cluster.sim.replica(1).node.loglet(1).trimmedBelow).toBe(minimum);
    // The state survives: reads still answer after the trim.
    const value = await cluster.run(cluster.replica(1).kv.execute('k5', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(value.value!)).toBe('v');
  });
});

describe('LeaseEngine', () => {
  it('the holder syncs locally; others are refused while it holds the lease and take over after expiry', async () => {
    const cluster = await KvCluster.create(4, undefined, { lease: { leaseTicks: 300, marginTicks: 30 } });
    const holder = cluster.replica(1);
    const other = cluster.replica(2);
    expect(await cluster.run(holder.stack.lease!.acquire())).toBe(true);
    await cluster.run(holder.kv.execute('k', set('one')));
    const messagesBefore = cluster.world.messagesSent;
    const read = await cluster.run(holder.kv.execute('k', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(read.value!)).toBe('one');
    expect(cluster.world.messagesSent).toBe(messagesBefore); // 0 round trips
    expect(holder.stack.lease!.localReads).toBe(1);
    const refused = await cluster.run(other.kv.execute('k', set('two')).catch((error: unknown) => error));
    expect((refused as PaxosStoreError).details?.leaseHolder).toBe(1);
    expect(await cluster.run(other.stack.lease!.acquire())).toBe(false);
    // Let the lease lapse without renewal; the holder stops local reads before the others take over.
    await cluster.world.runUntil(() => false, 300);
    expect(holder.stack.lease!.holdsValidLease()).toBe(false);
    (await cluster.run(other.stack.top.sync())).release();
    expect(await cluster.run(other.stack.lease!.acquire())).toBe(true);
    await cluster.run(other.kv.execute('k', set('two')));
    const reread = await cluster.run(holder.kv.execute('k', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(reread.value!)).toBe('two');
    expect(holder.stack.lease!.localReads).toBe(1);
  });
});

describe('LeaseEngine forwarding', () => {
  it('a non-holder forwards its proposals to the holder, whose local reads then see them', async () => {
    let cluster: KvCluster | null = null;
    const forward = (holder: number, entry: StackEntry) => cluster!.replica(holder).stack.lease!.propose(entry);
    cluster = await KvCluster.create(9, undefined, { lease: { leaseTicks: 1_000, marginTicks: 50, forward } });
    const holder = cluster.replica(1);
    expect(await cluster.run(holder.stack.lease!.acquire())).toBe(true);
    (await cluster.run(cluster.replica(2).stack.top.sync())).release();
    const result = await cluster.run(cluster.replica(2).kv.execute('k', set('via holder')));
    expect(result.applied).toBe(true);
    expect(cluster.replica(2).stack.lease!.forwarded).toBe(1);
    const read = await cluster.run(holder.kv.execute('k', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(read.value!)).toBe('via holder');
    expect(holder.stack.lease!.localReads).toBe(1);
  });
});

describe('BrainDoctorEngine', () => {
  it('applies raw LocalStore writes on every replica at the same position', async () => {
    const cluster = await KvCluster.create(5);
    await cluster.run(cluster.replica(1).kv.execute('broken', set('bad')));
    await cluster.run(cluster.replica(2).stack.doctor.repair([{ type: 'delete', key: kvKey('broken') }]));
    for (const id of [1, 2, 3]) {
      const result = await cluster.run(cluster.replica(id).kv.execute('broken', { kind: 'get', consistency: 'linearizable' }));
      expect(result.value).toBeNull();
    }
    expect(new Set(await cluster.digests()).size).toBe(1);
    await expect(cluster.replica(1).stack.doctor.repair([])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});

describe('two-phase upgrade', () => {
  it('a passive engine changes nothing until a log entry enables it at the same position everywhere', async () => {
    const cluster = await KvCluster.create(6);
    const sim = cluster.sim;
    // Phase 0: replicas run Base → KV (no view tracking).
    const stacks = new Map<number, { kv: KvService; views: ViewTrackingEngine | null; base: BaseEngine }>();
    const build = (id: number, withViews: boolean) => {
      const node = sim.replica(id).node;
      const base = new BaseEngine(node, new VirtualLog(node));
      const views = withViews ? new ViewTrackingEngine(base, base.localStore, id, sim.replicaIds, () => base.flushedPosition, false) : null;
      const applicator = new KvApplicator();
      (views ?? base).registerUpcall(applicator);
      stacks.set(id, { kv: new KvService(views ?? base), views, base });
    };
    for (const id of sim.replicaIds) build(id, false);
    await cluster.run(stacks.get(1)!.kv.execute('k', set('a')));
    // Phase 1: rolling upgrade to the passive engine while the others keep writing.
    for (const id of sim.replicaIds) {
      build(id, true);
      await cluster.run(stacks.get(((id % 3) + 1) as number)!.kv.execute(`k${id}`, set('b')));
    }
    for (const id of sim.replicaIds) expect(stacks.get(id)!.views!.viewSnapshot().size).toBe(0);
    const passiveDigests = await digestsOf(cluster, stacks);
    expect(new Set(passiveDigests).size).toBe(1);
    // Phase 2: enable through the log.
    await cluster.run(stacks.get(2)!.views!.enable());
    for (const id of sim.replicaIds) await cluster.run(stacks.get(id)!.kv.execute(`after${id}`, set('c')));
    for (const id of sim.replicaIds) (await cluster.run(stacks.get(id)!.kv.execute('k', { kind: 'get', consistency: 'linearizable' }))).value;
    const enabledAt = sim.replicaIds.map((id) => stacks.get(id)!.views!.enabledAt);
    expect(enabledAt[0]).not.toBeNull();
    expect(new Set(enabledAt).size).toBe(1);
    const views = sim.replicaIds.map((id) => [...stacks.get(id)!.views!.viewSnapshot()].sort());
    expect(views[0].length).toBeGreaterThan(0);
    for (const view of views) expect(view).toEqual(views[0]);
    expect(new Set(await digestsOf(cluster, stacks)).size).toBe(1);
  });
});

async function digestsOf(cluster: KvCluster, stacks: Map<number, { kv: KvService; base: BaseEngine }>): Promise<string[]> {
  for (const { kv } of stacks.values()) await cluster.run(kv.execute('probe', { kind: 'get', consistency: 'linearizable' }));
  for (const { kv } of stacks.values()) await cluster.run(kv.execute('probe', { kind: 'get', consistency: 'linearizable' }));
  for (const { base } of stacks.values()) await cluster.run(base.flush());
  return cluster.sim.replicaIds.map((id) => localStoreDigest(cluster.sim.replica(id).store));
}
