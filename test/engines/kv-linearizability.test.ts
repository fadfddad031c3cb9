import { describe, expect, it } from 'vitest';
import type { KeyOperation } from '../../src/api/operations.js';
import { checkLinearizability } from '../../src/check/linearizability.js';
import type { HistoryOperation, Outcome } from '../../src/check/history.js';
import { PaxosStoreError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';
import { KvService } from '../../src/apps/kv/kv-applicator.js';
import { KvCluster } from './harness.js';

const KEYS = ['a', 'b', 'c'];
const SEEDS = Number(process.env.DELOS_SEEDS ?? 48);

function randomOperation(random: Random): KeyOperation {
  const roll = random.int(10);
  if (roll < 3) return { kind: 'get', consistency: 'linearizable' };
  if (roll < 5) return { kind: 'set', value: new TextEncoder().encode(String(random.int(100))) };
  if (roll < 6) return { kind: 'set', value: random.bytes(2) };
  if (roll < 8) return { kind: 'incr', delta: BigInt(random.range(1, 5)) };
  if (roll < 9) return { kind: 'append', value: random.bytes(1) };
  return { kind: 'delete' };
}

async function runSeed(seed: number, batching: boolean, staleReads = false): Promise<string> {
  const random = new Random(seed * 7919);
  const faults = { dropRate: random.pick([0, 0.02, 0.08]), duplicateRate: random.pick([0, 0.05]), delayTicksMin: 1, delayTicksMax: random.pick([2, 6, 15]) };
  // Flush every entry, every few entries or every 64: crashes land before, between and after flushes.
  const flushEntriesMax = random.pick([1, 4, 64]);
  const cluster = await KvCluster.create(seed, faults, { batching, base: { flushEntriesMax } });
  if (staleReads) {
    // Injected bug: reads skip sync and answer from whatever this replica has applied.
    for (const replica of cluster.replicas.values()) {
      const { top, base } = replica.stack;
      replica.kv = new KvService({ ...top, propose: (entry) => top.propose(entry), sync: () => Promise.resolve(base.localSnapshot()) });
    }
  }
  const history: HistoryOperation[] = [];
  const crashAt = random.chance(0.5) ? random.range(20, 200) : -1;
  const crashed = random.range(1, 3);
  let stop = false;
  const client = async (clientId: string, replicaId: number): Promise<void> => {
    for (let i = 0; i < 12 && !stop; i++) {
      const replica = cluster.replica(replicaId);
      if (!cluster.sim.replica(replicaId).up) return;
      const key = random.pick(KEYS);
      const operation = randomOperation(random);
      const invokeTime = cluster.world.now();
      const index = history.length;
      history.push({ clientId, key, operation, invokeTime, returnTime: Number.POSITIVE_INFINITY, outcome: { type: 'unknown' } });
      let outcome: Outcome;
      try {
        outcome = { type: 'ok', result: await replica.kv.execute(key, operation) };
      } catch (error) {
        if (!(error instanceof PaxosStoreError)) throw error;
        if (process.env.DELOS_VERBOSE) console.log(`seed ${seed} ${clientId}: ${error.code} ${error.message}`);
        outcome = error.code === 'WRONG_TYPE' ? { type: 'error', code: 'WRONG_TYPE' } : { type: 'unknown' };
      }
      if (outcome.type === 'unknown') return;
      history[index] = { ...history[index], returnTime: cluster.world.now() + 0.5, outcome };
      await cluster.world.sleep(random.range(0, 5), {});
    }
  };
  const clients = [1, 2, 3].flatMap((replicaId) => [client(`c${replicaId}a`, replicaId), client(`c${replicaId}b`, replicaId)]);
  const crasher = (async () => {
    if (crashAt < 0) return;
    await cluster.world.sleep(crashAt, {});
    cluster.sim.crash(crashed);
    await cluster.world.sleep(random.range(10, 100), {});
    await cluster.sim.restart(crashed);
    cluster.rebuild(crashed);
  })();
  // Clients of a crashed replica never return: bound the run by time, not by their promises.
  // A third of the seeds cut one replica off from the others for a while.
  const partitioned = random.range(1, 3);
  const partitionAt = random.chance(0.33) ? random.range(5, 150) : -1;
  const partition = (async () => {
    if (partitionAt < 0) return;
    await cluster.world.sleep(partitionAt, {});
    for (const other of [1, 2, 3]) if (other !== partitioned) cluster.world.partition(partitioned, other, true);
    await cluster.world.sleep(random.range(20, 200), {});
    for (const other of [1, 2, 3]) if (other !== partitioned) cluster.world.partition(partitioned, other, false);
  })();
  let reconfigured = false;
  // Half the seeds also reconfigure the log (seal + new loglet) while clients run.
  const reconfigurer = random.range(1, 3);
  const reconfigureAt = random.chance(0.5) ? random.range(10, 150) : -1;
  const reconfiguration = (async () => {
    if (reconfigureAt < 0) return;
    await cluster.world.sleep(reconfigureAt, {});
    if (!cluster.sim.replica(reconfigurer).up) return;
    await cluster.replica(reconfigurer).stack.log.reconfigure(cluster.world.now() + 5_000);
    reconfigured = true;
  })();
  const clientFailures: unknown[] = [];
  await cluster.world.runFor(Promise.all([...clients.map((c) => c.catch((error: unknown) => clientFailures.push(error))), crasher, partition, reconfiguration.catch(() => {})]), 30_000);
  expect(clientFailures).toEqual([]);
  stop = true;
  if (!cluster.sim.replica(crashed).up) {
    await cluster.sim.restart(crashed);
    cluster.rebuild(crashed);
  }
  cluster.world.faults = { dropRate: 0, duplicateRate: 0, delayTicksMin: 1, delayTicksMax: 2 };
  const verdict = checkLinearizability(history, { searchStepsMax: 2_000_000 });
  if (staleReads) return verdict.verdict;
  expect(verdict.verdict, `seed ${seed} batching ${batching} flushEntriesMax ${flushEntriesMax}: ${JSON.stringify(verdict).slice(0, 400)}`).toBe('linearizable');
  const digests = await cluster.digests();
  expect(new Set(digests).size, `seed ${seed}: replicas' LocalStores differ`).toBe(1);
  expect(cluster.sim.failures()).toEqual([]);
  const okCount = history.filter((entry) => entry.outcome.type === "ok").length;
  if (process.env.DELOS_VERBOSE) console.log(`seed ${seed}: ${history.length} operations, ${okCount} ok, crash at ${crashAt}, reconfigured ${reconfigured}`);
  expect(okCount).toBeGreaterThan(0);
  return verdict.verdict;
}

describe('KV applicator on the engine stack, simulated with faults', () => {
  it(`is linearizable and replicas converge (${SEEDS} seeds, half with batching)`, async () => {
    for (let seed = 1; seed <= SEEDS; seed++) await runSeed(seed, seed % 2 === 0);
  }, 120_000);

  it('catches an injected bug (reads that skip sync) on some seed', async () => {
    const verdicts = [];
    for (let seed = 1; seed <= 12; seed++) verdicts.push(await runSeed(seed, false, true));
    expect(verdicts).toContain('violation');
  }, 60_000);
});
