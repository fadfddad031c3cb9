import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../src/client/index.js';
import { type TestCluster, startTestCluster } from './harness.js';

let cluster: TestCluster;

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 1 });
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
});

describe('the TypeScript client against real replicas', () => {
  it('fails over when its replica is killed mid-stream, with no lost or duplicated write', async () => {
    const endpoints = [1, 2, 3].map((id) => `ws://127.0.0.1:${cluster.httpPort(id)}`);
    const client = await connect({ endpoints, timeoutMs: 15_000 });
    const writes = 300;
    const killAt = 100;
    let expected = '';
    try {
      for (let i = 0; i < writes; i++) {
        if (i === killAt) void cluster.kill(1, 'SIGKILL'); // the client's first endpoint dies with requests in flight
        // APPEND and INCR are not idempotent: a retry that applied twice would show in the value.
        const [appended, counted] = await Promise.all([client.append('stream', `|${i}`), client.incr('count')]);
        expected += `|${i}`;
        expect(appended.version).toBe(i + 1);
        expect(counted.value).toBe(BigInt(i + 1));
      }
      const stream = await client.get('stream');
      expect(new TextDecoder().decode(stream.value!)).toBe(expected);
      expect(stream.version).toBe(writes);
      expect((await client.get('count')).version).toBe(writes);
    } finally {
      await client.close();
    }
  }, 60_000);
});
