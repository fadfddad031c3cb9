/**
 * Three DelosHosts in one process, as the shard workers run them (real clock, LsmTree on disk,
 * the production stack), joined by a loopback that round-trips every envelope through msgpack
 * with the peer links' settings. Covers what the process tests cannot reach quickly: the
 * maintenance round (heartbeats, then a log trim at the slowest replica) and a restart of every
 * host from its directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyOperation } from '../../src/api/operations.js';
import { loadShardHasher } from '../../src/router/shard-hash.js';
import { DelosHost } from '../../src/server/delos-host.js';

const REPLICA_IDS = [1, 2, 3];
const wire = new Packr({ useRecords: false, useBigIntExtension: true, copyBuffers: true });
const encoder = new TextEncoder();
const decoder = new TextDecoder();
let root: string;
const hosts = new Map<number, DelosHost>();

async function openHosts(): Promise<void> {
  for (const replicaId of REPLICA_IDS) {
    const host = await DelosHost.open({
      shardDirectory: join(root, `replica-${replicaId}`),
      shardIndex: 0,
      shardCount: 1,
      replicaId,
      replicaIds: REPLICA_IDS,
      requestTimeoutMs: 5000,
      send: (peer, envelope) => {
        const bytes = wire.pack(envelope);
        setImmediate(() => {
          // A host being restarted is down: its messages are lost, as on a real link.
          const host = hosts.get(peer);
          if (host !== undefined) expect(host.takeLogMessages(replicaId, [wire.unpack(bytes)])).toEqual([]);
        });
      },
      warn: (event, fields) => {
        throw new Error(`unexpected warning ${event} ${JSON.stringify(fields)}`);
      },
    });
    hosts.set(replicaId, host);
  }
}

async function closeHosts(): Promise<void> {
  const open = [...hosts.values()];
  hosts.clear();
  await Promise.all(open.map((host) => host.close()));
}

function run(replicaId: number, key: string, operation: KeyOperation): ReturnType<DelosHost['execute']> {
  return hosts.get(replicaId)!.execute('kv', encoder.encode(key), operation);
}

const set = (replicaId: number, key: string, value: string) => run(replicaId, key, { kind: 'set', value: encoder.encode(value) });

async function read(replicaId: number, key: string, consistency: 'linearizable' | 'local' = 'linearizable'): Promise<string | null> {
  const result = await run(replicaId, key, { kind: 'get', consistency });
  return result.value === null ? null : decoder.decode(result.value);
}

function gauge(replicaId: number, name: string): number {
  const family = hosts.get(replicaId)!.metricsFamilies().find((entry) => entry.name === name);
  if (family === undefined || family.type === 'summary') throw new Error(`no gauge ${name}`);
  return family.series[0].value;
}

beforeAll(async () => {
  await loadShardHasher();
  root = mkdtempSync(join(tmpdir(), 'paxosstore-delos-host-'));
  await openHosts();
});

afterAll(async () => {
  await closeHosts();
  rmSync(root, { recursive: true, force: true });
});

describe('three Delos hosts over a loopback', () => {
  it('serves writes from any host, trims the log at the slowest replica in maintenance, and keeps serving after the trim', async () => {
    const positions: number[] = [];
    for (let i = 0; i < 40; i++) positions.push((await set(1 + (i % 2), `key-${i % 10}`, `value-${i}`)).logPosition!);
    expect(positions).toEqual([...positions].sort((a, b) => a - b));
    expect(await read(3, 'key-9')).toBe('value-39');
    expect(await read(1, 'key-0', 'local')).toBe('value-30');

    // Round 1: idle replica 3 reports its view by a heartbeat. Later rounds: everyone is idle
    // and reports; the trim follows the minimum of the reported (flushed) positions.
    let trimmed = 0;
    for (let round = 0; round < 4 && trimmed === 0; round++) {
      await Promise.all([...hosts.values()].map((host) => host.maintainNow()));
      trimmed = Math.min(...REPLICA_IDS.map((id) => gauge(id, 'paxosstore_delos_trimmed_position')));
    }
    // Every position up to the last write (at least) is gone from every replica's log.
    expect(trimmed).toBeGreaterThanOrEqual(positions[positions.length - 1]);
    for (const id of REPLICA_IDS) expect(gauge(id, 'paxosstore_delos_applied_position')).toBeGreaterThanOrEqual(trimmed);

    expect((await set(3, 'after-trim', 'still')).logPosition).toBeGreaterThan(positions[positions.length - 1]);
    expect(await read(2, 'after-trim')).toBe('still');
    expect(await read(2, 'key-5')).toBe('value-35');
  });

  it('applies a write retried with its request id once, through any host, and refuses a superseded one', async () => {
    const id = (sequence: number) => ({ clientId: 'client-a', timestampMs: 1, sequence });
    const first = await hosts.get(1)!.execute('kv', encoder.encode('counted'), { kind: 'incr', delta: 5n }, id(1));
    // The retry goes to another replica, after another client's write to the same key.
    await run(3, 'counted', { kind: 'incr', delta: 100n });
    const retry = await hosts.get(2)!.execute('kv', encoder.encode('counted'), { kind: 'incr', delta: 5n }, id(1));
    expect(retry).toEqual(first);
    expect(decoder.decode(first.value!)).toBe('5');
    expect(await read(1, 'counted')).toBe('105');
    // Four newer writes of the client push sequence 1 out of the key's window: its fate is unknown.
    for (let sequence = 2; sequence <= 5; sequence++) await hosts.get(1)!.execute('kv', encoder.encode('counted'), { kind: 'incr', delta: 1n }, id(sequence));
    await expect(hosts.get(3)!.execute('kv', encoder.encode('counted'), { kind: 'incr', delta: 5n }, id(1))).rejects.toMatchObject({ code: 'PRECONDITION_FAILED' });
    expect(await read(2, 'counted')).toBe('109');
  });

  it('recovers every host from its directory after a restart of all three', async () => {
    const before = (await set(2, 'survivor', 'yes')).logPosition!;
    await closeHosts();
    await openHosts();
    // Replica 2 flushed its applied state on close: a local read answers without the log.
    expect(await read(2, 'survivor', 'local')).toBe('yes');
    expect(await read(3, 'survivor')).toBe('yes');
    expect(await read(1, 'key-7')).toBe('value-37');
    const after = await set(1, 'survivor', 'again');
    expect(after).toMatchObject({ applied: true, version: 2 });
    expect(after.logPosition).toBeGreaterThan(before);
  });
});
