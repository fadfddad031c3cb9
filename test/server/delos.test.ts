/**
 * The Delos log group "kv" in real replica processes on loopback: HTTP routes /v1/delos/kv/:key
 * through every replica, a kill -9 under load, a restart of the whole cluster (state recovered
 * from each worker's LSM), and the ObserverEngine summaries in /metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePrometheusText } from '../metrics/prometheus-parser.js';
import { type TestCluster, startTestCluster } from './harness.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 2 });
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
});

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  readonly bytes: Uint8Array;
  json(): Record<string, unknown>;
}

async function request(replicaId: number, method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(`http://127.0.0.1:${cluster.httpPort(replicaId)}${path}`, { method, body, headers });
  const bytes = new Uint8Array(await response.arrayBuffer());
  return { status: response.status, headers: response.headers, bytes, json: () => JSON.parse(new TextDecoder().decode(bytes)) };
}

const keyPath = (key: string): string => `/v1/delos/kv/${encodeURIComponent(key)}`;
const text = (reply: Reply): string => new TextDecoder().decode(reply.bytes);

async function put(replicaId: number, key: string, value: string): Promise<Record<string, unknown>> {
  const reply = await request(replicaId, 'PUT', keyPath(key), value);
  if (reply.status !== 200) throw new Error(`PUT ${key} via ${replicaId}: ${reply.status} ${text(reply)}`);
  return reply.json();
}

/** Reads every key through `replicaId`, 16 at a time, and returns the values found. */
async function readAll(replicaId: number, keys: readonly string[]): Promise<Map<string, string | null>> {
  const found = new Map<string, string | null>();
  for (let start = 0; start < keys.length; start += 16) {
    await Promise.all(
      keys.slice(start, start + 16).map(async (key) => {
        const reply = await request(replicaId, 'GET', keyPath(key));
        found.set(key, reply.status === 200 ? text(reply) : reply.status === 404 ? null : `HTTP ${reply.status}: ${text(reply)}`);
      }),
    );
  }
  return found;
}

const acknowledged = new Map<string, string>();

describe('the Delos KV log group in a three-replica cluster', () => {
  it('reads through replica 2 what was written through replica 1, with versions, log positions and the /v1/kv error catalogue', async () => {
    const first = await put(1, 'greeting', 'hello');
    expect(first).toMatchObject({ applied: true, version: 1 });
    expect(typeof first.logPosition).toBe('number');
    const second = await put(3, 'greeting', 'hello again');
    expect(second).toMatchObject({ applied: true, version: 2 });
    expect(second.logPosition as number).toBeGreaterThan(first.logPosition as number);

    const read = await request(2, 'GET', keyPath('greeting'));
    expect(read.status).toBe(200);
    expect(text(read)).toBe('hello again');
    expect(read.headers.get('x-version')).toBe('2');

    // Compare-and-set on the version, as on /v1/kv.
    const stale = await request(2, 'PUT', keyPath('greeting'), 'lost', { 'If-Match': '1' });
    expect(stale.status).toBe(412);
    expect(stale.json()).toMatchObject({ error: { code: 'PRECONDITION_FAILED', version: 2 } });
    const created = await request(1, 'PUT', keyPath('fresh'), 'x', { 'If-None-Match': '*' });
    expect(created.status).toBe(200);
    expect(created.headers.get('x-log-position')).toBe(String(created.json().logPosition));

    // Binary keys and values travel as they are.
    const value = new Uint8Array([0, 200, 17, 255]);
    expect((await request(1, 'PUT', `/v1/delos/kv/%00%01%FF`, value)).status).toBe(200);
    const binary = await request(3, 'GET', `/v1/delos/kv/%00%01%FF`);
    expect([...binary.bytes]).toEqual([...value]);

    const deleted = await request(2, 'DELETE', keyPath('greeting'));
    expect(deleted.json()).toMatchObject({ applied: true, version: 3 });
    const gone = await request(1, 'GET', keyPath('greeting'));
    expect(gone.status).toBe(404);
    expect(gone.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });

    const incremented = await request(3, 'POST', `${keyPath('counter')}?op=incr&delta=5`);
    expect(text(incremented)).toBe('5');
    expect(text(await request(1, 'GET', `${keyPath('counter')}?consistency=linearizable`))).toBe('5');

    // A retry with the same X-Client-Id / X-Request-Sequence, through another replica, is applied once.
    const retryHeaders = { 'X-Client-Id': 'delos-test', 'X-Request-Sequence': '7' };
    const original = await request(1, 'POST', `${keyPath('counter')}?op=incr&delta=2`, undefined, retryHeaders);
    const retried = await request(2, 'POST', `${keyPath('counter')}?op=incr&delta=2`, undefined, retryHeaders);
    expect([text(original), text(retried)]).toEqual(['7', '7']);
    expect(retried.headers.get('x-version')).toBe(original.headers.get('x-version'));
    expect(text(await request(3, 'GET', keyPath('counter')))).toBe('7');

    const tooLarge = await request(1, 'PUT', keyPath('big'), new Uint8Array(40 * 1024));
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json()).toMatchObject({ error: { code: 'VALUE_TOO_LARGE' } });

    // The per-key PaxosStore keyspace is a different one.
    expect((await request(1, 'GET', '/v1/kv/fresh')).status).toBe(404);
    acknowledged.set('fresh', 'x');
    acknowledged.set('counter', '7');
  });

  it('exports the ObserverEngine latencies as Prometheus summaries per layer', async () => {
    let family: ReturnType<typeof parsePrometheusText> extends Map<string, infer F> ? F | undefined : never;
    // Workers ship their metrics once a second.
    for (let attempt = 0; attempt < 40; attempt++) {
      const metrics = await request(1, 'GET', '/metrics');
      family = parsePrometheusText(text(metrics)).get('paxosstore_delos_layer_duration_seconds');
      const counts = family?.samples.filter((sample) => sample.name.endsWith('_count') && sample.value > 0) ?? [];
      if (counts.length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(family?.type).toBe('summary');
    for (const layer of ['propose', 'sync', 'apply']) {
      const samples = family!.samples.filter((sample) => sample.labels.layer === layer && sample.labels.group === 'kv');
      const quantiles = samples.filter((sample) => sample.labels.quantile !== undefined).map((sample) => Number(sample.labels.quantile));
      expect(quantiles).toEqual(expect.arrayContaining([0.5, 0.99]));
      const count = samples.find((sample) => sample.name === 'paxosstore_delos_layer_duration_seconds_count')!.value;
      const sum = samples.find((sample) => sample.name === 'paxosstore_delos_layer_duration_seconds_sum')!.value;
      // Replica 1 proposed (PUTs) and synced (GETs) through its own stack, and applied everything.
      expect(count, `${layer}: ${JSON.stringify(samples)}`).toBeGreaterThan(0);
      expect(sum).toBeGreaterThan(0);
      const median = samples.find((sample) => sample.labels.quantile === '0.5')!.value;
      expect(median).toBeGreaterThan(0);
      expect(median).toBeLessThan(5);
    }
  });

  it('keeps serving when a replica is killed with SIGKILL while writing, loses no acknowledged write, and the restarted replica catches up', async () => {
    let stopWriting = false;
    let failures = 0;
    const writers = [1, 2].map(async (replicaId) => {
      for (let i = 0; !stopWriting; i++) {
        const key = `load:${replicaId}:${i}`;
        try {
          await put(replicaId, key, `v${i}`);
          acknowledged.set(key, `v${i}`);
        } catch {
          failures++;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await cluster.kill(3, 'SIGKILL');
    const beforeKill = acknowledged.size;
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const afterKill = acknowledged.size - beforeKill;
    stopWriting = true;
    await Promise.all(writers);
    // Replicas 1 and 2 are a majority: writes keep succeeding while replica 3 is down.
    expect(afterKill).toBeGreaterThan(20);
    expect(failures).toBe(0);

    await cluster.start(3);
    const keys = [...acknowledged.keys()];
    const found = await readAll(3, keys);
    expect(keys.filter((key) => found.get(key) !== acknowledged.get(key))).toEqual([]);
  }, 60_000);

  it('recovers every entry from the LSM after all three replicas are killed and restarted', async () => {
    await Promise.all([1, 2, 3].map((replicaId) => cluster.kill(replicaId, 'SIGKILL')));
    await Promise.all([1, 2, 3].map((replicaId) => cluster.start(replicaId)));
    const keys = [...acknowledged.keys()];
    for (const replicaId of [2, 1]) {
      const found = await readAll(replicaId, keys);
      expect(keys.filter((key) => found.get(key) !== acknowledged.get(key))).toEqual([]);
    }
    // Local reads (no log round trip) see the same: replica 3 applied everything while syncing above.
    const local = await request(3, 'GET', `${keyPath('fresh')}?consistency=local`);
    expect(text(local)).toBe('x');
    // And the log still takes writes after the restart.
    expect(await put(2, 'after-restart', 'yes')).toMatchObject({ applied: true, version: 1 });
    expect(text(await request(3, 'GET', keyPath('after-restart')))).toBe('yes');
  }, 60_000);
});
