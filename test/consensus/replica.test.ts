/**
 * The Replica as a shard worker uses it: a KvEngine for storage (engineStorage), a transport
 * callback, automatic turns, and the Promise API. Peers are wired in-process.
 */
import { describe, expect, it } from 'vitest';
import type { KeyOperation, RequestId } from '../../src/api/operations.js';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { decodePaxosLog } from '../../src/consensus/paxos-log.js';
import { engineStorage, Replica } from '../../src/consensus/replica.js';
import { PaxosStoreError } from '../../src/errors.js';
import type { KvEngine, WriteOperation } from '../../src/storage/engine.js';
import { Random } from '../../src/util/random.js';

/** Enough of a KvEngine for the consensus layer: batch is durable when its promise resolves. */
class MapEngine implements KvEngine {
  readonly data = new Map<string, Uint8Array>();
  batches = 0;
  get(key: Uint8Array): Uint8Array | undefined {
    return this.data.get(Buffer.from(key).toString('latin1'));
  }
  async put(key: Uint8Array, value: Uint8Array): Promise<void> {
    await this.batch([{ type: 'put', key, value }]);
  }
  async delete(key: Uint8Array): Promise<void> {
    await this.batch([{ type: 'delete', key }]);
  }
  async batch(operations: readonly WriteOperation[]): Promise<void> {
    this.batches++;
    await new Promise((resolve) => setImmediate(resolve));
    for (const operation of operations) {
      const name = Buffer.from(operation.key).toString('latin1');
      if (operation.type === 'put') this.data.set(name, operation.value);
      else this.data.delete(name);
    }
  }
  async flush(): Promise<void> {}
  async close(): Promise<void> {}
  stats(): Record<string, number> {
    return { batches: this.batches };
  }
}

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const ids = [1, 2, 3];

function makeGroup(engines = ids.map(() => new MapEngine()), keysInMemoryMax?: number): { replicas: Map<number, Replica>; engines: MapEngine[] } {
  const replicas = new Map<number, Replica>();
  for (const id of ids) {
    replicas.set(
      id,
      new Replica({
        replicaId: id,
        replicaIds: ids,
        storage: engineStorage(engines[id - 1]),
        transport: (peer: number, messages: readonly PeerMessage[]) => setImmediate(() => replicas.get(peer)?.receive(id, messages)),
        random: new Random(id),
        keysInMemoryMax,
      }),
    );
  }
  return { replicas, engines };
}

let sequence = 0;
const request = (clientId = 'client'): RequestId => ({ clientId, timestampMs: 0, sequence: ++sequence });
const run = (replica: Replica, key: string, operation: KeyOperation, requestId = request()) => replica.execute(bytes(key), operation, requestId);

describe('Replica (Promise API over a KvEngine)', () => {
  it('serves writes and linearizable reads at every replica', async () => {
    const { replicas, engines } = makeGroup();
    const [r1, r2, r3] = [replicas.get(1)!, replicas.get(2)!, replicas.get(3)!];
    expect(await run(r1, 'k', { kind: 'set', value: bytes('a') })).toEqual({ applied: true, version: 1, value: null });
    expect(await run(r2, 'k', { kind: 'append', value: bytes('b') })).toEqual({ applied: true, version: 2, value: bytes('ab') });
    expect(await run(r3, 'k', { kind: 'get', consistency: 'linearizable' })).toEqual({ applied: true, version: 2, value: bytes('ab') });
    expect(await run(r3, 'n', { kind: 'incr', delta: 5n })).toEqual({ applied: true, version: 1, value: bytes('5') });
    expect(await run(r1, 'k', { kind: 'set', value: bytes('z'), ifVersion: 1 })).toEqual({ applied: false, version: 2, value: bytes('ab') });
    expect(await run(r2, 'k', { kind: 'delete' })).toEqual({ applied: true, version: 3, value: bytes('ab') });
    // The PaxosLog record is the value under the key (PaxosLog-as-value), on a majority at least.
    const stored = engines.map((engine) => engine.get(bytes('k'))).filter((value) => value !== undefined);
    expect(stored.length).toBeGreaterThanOrEqual(2);
    expect(stored.some((value) => decodePaxosLog(value!).chosen.entryId === 3)).toBe(true);
  });

  it('deduplicates a retried write by request id', async () => {
    const { replicas } = makeGroup();
    const id = request('retrying');
    const first = await run(replicas.get(1)!, 'counter', { kind: 'incr', delta: 1n }, id);
    const again = await run(replicas.get(2)!, 'counter', { kind: 'incr', delta: 1n }, id);
    expect(again).toEqual(first);
    expect(await run(replicas.get(3)!, 'counter', { kind: 'get', consistency: 'linearizable' })).toEqual({ applied: true, version: 1, value: bytes('1') });
  });

  it('rejects bad requests and WRONG_TYPE with typed errors, writing nothing', async () => {
    const { replicas } = makeGroup();
    const r1 = replicas.get(1)!;
    await run(r1, 'text', { kind: 'set', value: bytes('hello') });
    await expect(run(r1, 'text', { kind: 'incr', delta: 1n })).rejects.toMatchObject({ code: 'WRONG_TYPE' });
    await expect(r1.execute(new Uint8Array(70_000), { kind: 'get', consistency: 'local' }, request())).rejects.toMatchObject({ code: 'KEY_TOO_LARGE' });
    await expect(run(r1, 'k', { kind: 'nope' } as unknown as KeyOperation)).rejects.toBeInstanceOf(PaxosStoreError);
    expect(await run(r1, 'text', { kind: 'get', consistency: 'linearizable' })).toEqual({ applied: true, version: 1, value: bytes('hello') });
  });

  it('recovers from storage after a restart (lazily, key by key)', async () => {
    const first = makeGroup();
    await run(first.replicas.get(1)!, 'k', { kind: 'set', value: bytes('durable') });
    await run(first.replicas.get(1)!, 'k', { kind: 'get', consistency: 'linearizable' });
    for (const replica of first.replicas.values()) replica.close();
    const second = makeGroup(first.engines);
    expect(await run(second.replicas.get(3)!, 'k', { kind: 'get', consistency: 'linearizable' })).toEqual({ applied: true, version: 1, value: bytes('durable') });
    expect(await run(second.replicas.get(2)!, 'k', { kind: 'append', value: bytes('!') })).toEqual({ applied: true, version: 2, value: bytes('durable!') });
  });

  it('evicts idle keys beyond keysInMemoryMax and reloads them from storage', async () => {
    const { replicas } = makeGroup(undefined, 2);
    const r1 = replicas.get(1)!;
    for (let index = 0; index < 10; index++) await run(r1, `key${index}`, { kind: 'set', value: bytes(`v${index}`) });
    await new Promise((resolve) => setTimeout(resolve, 20));
    r1.runTurn();
    expect(r1.counters.keysEvicted).toBeGreaterThan(0);
    expect(r1.core.keysInMemory).toBeLessThanOrEqual(3);
    for (let index = 0; index < 10; index++) {
      expect(await run(r1, `key${index}`, { kind: 'get', consistency: 'linearizable' })).toEqual({ applied: true, version: 1, value: bytes(`v${index}`) });
    }
  });

  it('rejects with CLOSED after close()', async () => {
    const { replicas } = makeGroup();
    replicas.get(1)!.close();
    await expect(run(replicas.get(1)!, 'k', { kind: 'get', consistency: 'local' })).rejects.toMatchObject({ code: 'CLOSED' });
  });
});
