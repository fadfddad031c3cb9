import { describe, expect, it } from 'vitest';
import { Packr } from 'msgpackr';
import { BASE_ENGINE_DEFAULTS, BaseEngine } from '../../src/engines/base-engine.js';
import { SessionOrderEngine } from '../../src/engines/session-order-engine.js';
import { buildStack } from '../../src/engines/stack.js';
import { applyInSubTransaction, applyOutcome, StoreTransaction } from '../../src/engines/transaction.js';
import type { IApplicator, StackEntry, Transaction } from '../../src/engines/types.js';
import { ViewTrackingEngine } from '../../src/engines/view-tracking-engine.js';
import { PaxosStoreError } from '../../src/errors.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import { Random } from '../../src/util/random.js';
import { runInSimulation as run } from './harness.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const key = (text: string) => encoder.encode(text);
const text = (bytes: Uint8Array | undefined) => (bytes === undefined ? undefined : decoder.decode(bytes));

/** Writes A/<name>, then throws when told to: a failure after writes, which must be rolled back. */
class ScriptedApplicator implements IApplicator {
  apply(transaction: Transaction, entry: StackEntry): unknown {
    if (entry.body === null) return null;
    const [name, fail] = entry.body as [string, boolean];
    transaction.put(key(`A/${name}`), key('written'));
    if (fail) throw new PaxosStoreError('PRECONDITION_FAILED', `scripted failure of ${name}`);
    return name;
  }

  postApply(): void {}
}

const scripted = (name: string, fail = false): StackEntry => ({ headers: {}, body: [name, fail] });

describe('nested sub-transactions', () => {
  it('a throwing layer loses only its own sub-transaction; the layers below keep theirs', () => {
    const stored = new Map([['k', key('stored')]]);
    const entry = new StoreTransaction({ get: (k) => stored.get(decoder.decode(k)) });
    entry.put(key('cursor'), key('1'));
    // engine 1 → engine 2 → application, each in a sub-transaction of the layer below.
    const outcome = applyOutcome(entry, (engine1) => {
      engine1.put(key('engine1'), key('bookkeeping'));
      return applyInSubTransaction(engine1, (engine2) => {
        engine2.put(key('engine2'), key('bookkeeping'));
        expect(text(engine2.get(key('engine1')))).toBe('bookkeeping'); // reads see the layers below
        return applyInSubTransaction(engine2, (application) => {
          application.put(key('app'), key('lost'));
          application.put(key('k'), key('lost'));
          throw new PaxosStoreError('WRONG_TYPE', 'application failure');
        });
      });
    });
    expect(outcome.ok).toBe(false);
    expect((outcome as { error: PaxosStoreError }).error.code).toBe('WRONG_TYPE');
    const written = new Map(entry.operations().map((write) => [decoder.decode(write.key), write.type === 'put' ? decoder.decode(write.value) : null]));
    expect(written).toEqual(new Map([['cursor', '1'], ['engine1', 'bookkeeping'], ['engine2', 'bookkeeping']]));
    expect(text(entry.get(key('k')))).toBe('stored');
  });

  it('an engine that throws itself loses its own writes and everything above, not those below', () => {
    const entry = new StoreTransaction({ get: () => undefined });
    const outcome = applyOutcome(entry, (engine1) => {
      engine1.put(key('engine1'), key('kept'));
      return applyInSubTransaction(engine1, (engine2) => {
        engine2.put(key('engine2'), key('lost'));
        applyInSubTransaction(engine2, (application) => application.put(key('app'), key('lost')));
        throw new PaxosStoreError('PRECONDITION_FAILED', 'engine 2 refuses the entry');
      });
    });
    expect(outcome.ok).toBe(false);
    expect(entry.operations().map((write) => decoder.decode(write.key))).toEqual(['engine1']);
    // A finished sub-transaction refuses further use (a bug, not bad input).
    const sub = entry.nested();
    sub.commit();
    expect(() => sub.put(key('late'), key('x'))).toThrow();
  });

  it('on the stack: an application failure keeps the entry view report and session sequence', async () => {
    const cluster = await SimLogCluster.create(new Random(11), 3);
    const node = cluster.replica(1).node;
    const base = new BaseEngine(node, new VirtualLog(node), { ...BASE_ENGINE_DEFAULTS, flushEntriesMax: 1 });
    const views = new ViewTrackingEngine(base, base.localStore, 1, node.replicaIds, () => base.flushedPosition);
    const sessions = new SessionOrderEngine(views, base.localStore);
    sessions.registerUpcall(new ScriptedApplicator());
    const session = sessions.openSession('s');
    expect(await run(cluster, session.propose(scripted('zero')))).toBe('zero');
    expect(await run(cluster, session.propose(scripted('one')))).toBe('one');
    const reported = base.flushedPosition;
    const failure = await run(cluster, session.propose(scripted('two', true)).catch((error: unknown) => error));
    expect((failure as PaxosStoreError).message).toContain('scripted failure of two');
    // The failing entry's own write is gone; the engines' bookkeeping of that entry committed.
    expect(base.localStore.get(key('A/two'))).toBeUndefined();
    expect(views.viewSnapshot().get(1)).toBe(reported);
    expect(packr.unpack(base.localStore.get(key('E/view/1'))!)).toEqual([reported]);
    expect(packr.unpack(base.localStore.get(key('E/session/s'))!)).toEqual([3]);
    // The session moved past the failed entry: the next one applies at once, not filtered.
    expect(await run(cluster, session.propose(scripted('three')))).toBe('three');
    expect(sessions.filteredCount).toBe(0);
    expect(text(base.localStore.get(key('A/three')))).toBe('written');
  });

  it('BatchingEngine isolates each proposal of a batch through the same mechanism', async () => {
    const cluster = await SimLogCluster.create(new Random(12), 3);
    const stack = buildStack(cluster.replica(1).node, new ScriptedApplicator(), { batching: true });
    const results = await run(
      cluster,
      Promise.all(['a', 'b', 'c', 'd', 'e'].map((name) => stack.top.propose(scripted(name, name === 'c')).catch((error: unknown) => error))),
    );
    expect(stack.base.entriesApplied).toBeLessThanOrEqual(2);
    expect(results.filter((result) => typeof result === 'string')).toEqual(['a', 'b', 'd', 'e']);
    expect((results[2] as PaxosStoreError).code).toBe('PRECONDITION_FAILED');
    const store = stack.base.localStore;
    for (const name of ['a', 'b', 'd', 'e']) expect(text(store.get(key(`A/${name}`)))).toBe('written');
    expect(store.get(key('A/c'))).toBeUndefined();
  });
});

