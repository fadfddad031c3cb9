import { describe, expect, it } from 'vitest';
import { KvApplicator, KvService } from '../../src/apps/kv/kv-applicator.js';
import { BaseEngine } from '../../src/engines/base-engine.js';
import { SessionOrderEngine } from '../../src/engines/session-order-engine.js';
import { TimeEngine } from '../../src/engines/time-engine.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import { Random } from '../../src/util/random.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function run<T>(cluster: SimLogCluster, promise: Promise<T>): Promise<T> {
  const outcome = await cluster.world.runFor(promise, 50_000);
  if (!outcome.settled) throw new Error('did not settle');
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.value as T;
}

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
