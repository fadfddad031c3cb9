import { describe, expect, it } from 'vitest';
import { KvApplicator, KvService } from '../../src/apps/kv/kv-applicator.js';
import { BaseEngine } from '../../src/engines/base-engine.js';
import { SessionOrderEngine } from '../../src/engines/session-order-engine.js';
import { applyOutcome, StoreTransaction } from '../../src/engines/transaction.js';
import { keyName } from '../../src/util/byte-codec.js';
import type { IApplicator, IEngine, ReadOnlySnapshot, StackEntry, Transaction } from '../../src/engines/types.js';
import { PaxosStoreError } from '../../src/errors.js';
import { TimeEngine } from '../../src/engines/time-engine.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import { Random } from '../../src/util/random.js';
import { runInSimulation as run } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();


describe('SessionOrderEngine', () => {
  it('pipelined proposals of a session apply in issue order although the log reorders them', async () => {
    const cluster = await SimLogCluster.create(new Random(5), 3, { dropRate: 0.05, duplicateRate: 0, delayTicksMin: 1, delayTicksMax: 12 });
    const engines = cluster.replicas.map((replica) => {
      const base = new BaseEngine(replica.node, new VirtualLog(replica.node));
      const sessions = new SessionOrderEngine(base, base.localStore);
      sessions.registerUpcall(new KvApplicator());
      return { base, sessions, kv: new KvService(sessions) };
    });
    const session = engines[0].sessions.openSession('s1');
    const other = engines[1].sessions.openSession('s2');
    const body = (key: string, text: string) => [key, 'append', encoder.encode(`${text},`), null, null, false, false];
    const proposals = [];
    for (let i = 0; i < 15; i++) {
      proposals.push(session.propose({ headers: {}, body: body('ordered', String(i)) }));
      proposals.push(other.propose({ headers: {}, body: body('other', String(i)) }));
    }
    await run(cluster, Promise.all(proposals));
    const expected = (count: number) => Array.from({ length: count }, (_, i) => `${i},`).join('');
    for (const { kv } of engines) {
      expect(decoder.decode((await run(cluster, kv.execute('ordered', { kind: 'get', consistency: 'linearizable' }))).value!)).toBe(expected(15));
      expect(decoder.decode((await run(cluster, kv.execute('other', { kind: 'get', consistency: 'linearizable' }))).value!)).toBe(expected(15));
    }
    // The log did reorder some of them (otherwise this test shows nothing).
    expect(engines[0].sessions.filteredCount).toBeGreaterThan(0);
    // A new stack instance on replica 1 (a restart): reusing the id from sequence 0 is refused,
    // resuming continues at the sequence the log expects.
    const node = cluster.replicas[0].node;
    const base = new BaseEngine(node, new VirtualLog(node));
    const restarted = new SessionOrderEngine(base, base.localStore);
    restarted.registerUpcall(new KvApplicator());
    const reused = await run(cluster, restarted.openSession('s1').propose({ headers: {}, body: body('ordered', 'again') }).catch((error: unknown) => error));
    expect((reused as PaxosStoreError).code).toBe('PRECONDITION_FAILED');
    const resumed = await run(cluster, restarted.resumeSession('s1'));
    await run(cluster, resumed.propose({ headers: {}, body: body('ordered', '15') }));
    const read = await run(cluster, new KvService(restarted).execute('ordered', { kind: 'get', consistency: 'linearizable' }));
    expect(decoder.decode(read.value!)).toBe(expected(16));
  });
});

/** A lower engine that records proposals and settles them only when the test says so. */
class RecordingEngine implements IEngine {
  readonly proposals: { entry: StackEntry; reject(error: unknown): void }[] = [];

  propose(entry: StackEntry): Promise<unknown> {
    return new Promise((_, reject) => this.proposals.push({ entry, reject }));
  }

  sync(): Promise<ReadOnlySnapshot> {
    return Promise.reject(new Error('not used'));
  }

  registerUpcall(): void {}
  setTrimPrefix(): void {}
}

/** The application: returns `result-<name>`, throws for 'bad'. */
class NamingApplicator implements IApplicator {
  readonly applied: string[] = [];

  apply(_transaction: Transaction, entry: StackEntry): unknown {
    const name = entry.body as string;
    this.applied.push(name);
    if (name === 'bad') throw new PaxosStoreError('WRONG_TYPE', 'bad entry');
    return `result-${name}`;
  }

  postApply(): void {}
}

describe('SessionOrderEngine completion from postApply', () => {
  it('resolves a caller at the postApply of its in-order copy, re-proposes filtered and timed-out copies', async () => {
    const lower = new RecordingEngine();
    const state = new Map<string, Uint8Array>();
    const store = { get: (key: Uint8Array) => state.get(keyName(key)), iterate: () => [][Symbol.iterator]() };
    const engine = new SessionOrderEngine(lower, store);
    const application = new NamingApplicator();
    engine.registerUpcall(application);
    // What BaseEngine does for one entry: apply in a transaction, commit, then postApply.
    const applyAt = (proposal: number, position: number, beforePostApply: () => void = () => {}) => {
      const entry = lower.proposals[proposal].entry;
      const transaction = new StoreTransaction(store);
      applyOutcome(transaction, (sub) => engine.apply(sub, entry, position));
      for (const write of transaction.operations()) if (write.type === 'put') state.set(keyName(write.key), write.value);
      beforePostApply();
      engine.postApply(entry, position);
    };
    const settled: Record<string, unknown> = {};
    const track = (name: string, promise: Promise<unknown>) =>
      promise.then(
        (value) => (settled[name] = value),
        (error: unknown) => (settled[name] = error),
      );
    const session = engine.openSession('s');
    const tracked = ['zero', 'one', 'bad'].map((name) => track(name, session.propose({ headers: {}, body: name })));
    expect(lower.proposals.map(({ entry }) => entry.headers.session)).toEqual([['s', 0, 0], ['s', 1, 0], ['s', 2, 0]]);
    // 'one' lands first: filtered, and its postApply proposes attempt 1.
    applyAt(1, 10);
    expect(lower.proposals[3].entry.headers.session).toEqual(['s', 1, 1]);
    // 'zero' lands: the caller completes at postApply, with the apply result.
    applyAt(0, 11, () => expect(settled.zero).toBeUndefined());
    await Promise.resolve();
    expect(settled.zero).toBe('result-zero');
    // The first copy of 'one' arrives again (a duplicate from the log): now in order, it completes the caller.
    applyAt(1, 12);
    await Promise.resolve();
    expect(settled.one).toBe('result-one');
    // Attempt 1 of 'one' is now behind: filtered, applied nowhere, nothing re-proposed.
    const proposalsBefore = lower.proposals.length;
    applyAt(3, 13);
    expect(lower.proposals.length).toBe(proposalsBefore);
    // 'bad' lands in order; the application's exception rejects its caller.
    applyAt(2, 14);
    await Promise.all(tracked);
    expect((settled.bad as PaxosStoreError).code).toBe('WRONG_TYPE');
    expect(application.applied).toEqual(['zero', 'one', 'bad']);
    // An indeterminate failure (TIMEOUT) of the latest attempt proposes it again; another error fails the caller.
    const three = track('three', session.propose({ headers: {}, body: 'three' }));
    lower.proposals.at(-1)!.reject(new PaxosStoreError('TIMEOUT', 'append timed out'));
    await Promise.resolve();
    expect(lower.proposals.at(-1)!.entry.headers.session).toEqual(['s', 3, 1]);
    lower.proposals.at(-1)!.reject(new PaxosStoreError('IO_ERROR', 'disk failed'));
    await three;
    expect((settled.three as PaxosStoreError).code).toBe('IO_ERROR');
    expect(engine.reproposals).toBe(2);
  });
});

describe('TimeEngine', () => {
  it('fires a timer at one position on every replica once a majority of clocks passed its deadline', async () => {
    const cluster = await SimLogCluster.create(new Random(6), 3);
    // Replica 3's clock runs 10 000 ticks ahead: alone it must not fire anything.
    const offsets = [0, 0, 10_000];
    const engines = cluster.replicas.map((replica, index) => {
      const base = new BaseEngine(replica.node, new VirtualLog(replica.node));
      const time = new TimeEngine(base, base.localStore, replica.replicaId, cluster.replicaIds, { now: () => cluster.world.now() + offsets[index] });
      time.registerUpcall(new KvApplicator());
      return time;
    });
    const deadline = cluster.world.now() + 500;
    await run(cluster, engines[0].setTimer('wake', deadline));
    await run(cluster, engines[2].tick());
    await run(cluster, engines[0].tick());
    expect(engines[0].fired).toEqual([]);
    await cluster.world.runUntil(() => false, 520);
    await run(cluster, engines[1].tick());
    // Replicas 2 and the fast 3 have now both reported a clock past the deadline: a majority.
    expect(engines[1].fired.map((fired) => fired.name)).toEqual(['wake']);
    for (const engine of engines) await run(cluster, engine.tick());
    const positions = engines.map((engine) => engine.fired);
    for (const fired of positions) expect(fired).toEqual(positions[0]);
  });
});
