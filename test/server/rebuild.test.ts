import { rmSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type TestCluster, startTestCluster } from './harness.js';

let cluster: TestCluster;
const client = (replicaId: number): Redis => cluster.redis(replicaId);

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 1 });
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
});

describe('a replica that lost its disk', () => {
  it('rejoins with --rebuilding, serves every acknowledged value and accepts writes again', async () => {
    const r1 = client(1);
    const values = new Map<string, string>();
    for (let i = 0; i < 200; i++) {
      await r1.set(`wiped:${i}`, `v${i}`);
      values.set(`wiped:${i}`, `v${i}`);
    }
    for (let i = 0; i < 50; i++) {
      await r1.set(`wiped:${i}`, `w${i}`); // a second version on some keys
      values.set(`wiped:${i}`, `w${i}`);
    }
    await cluster.kill(3, 'SIGKILL');
    rmSync(cluster.configs[2].dataDir, { recursive: true, force: true });
    await cluster.start(3, { rebuilding: true });
    const r3 = client(3);
    const keys = [...values.keys()];
    expect(await r3.mget(...keys)).toEqual(keys.map((key) => values.get(key)));
    // A rebuilding replica votes on a key only past the entry it probed (it may have promised
    // anything before the loss), and proposes only where it may vote: once another replica has
    // written the key again, writes through the rebuilt replica go through as well.
    const r2 = client(2);
    for (let i = 0; i < 20; i++) await r2.set(`wiped:${i}`, `y${i}`);
    for (let i = 0; i < 20; i++) expect(await r3.set(`wiped:${i}`, `x${i}`)).toBe('OK');
    expect(await r2.mget(...keys.slice(0, 20))).toEqual(keys.slice(0, 20).map((_, i) => `x${i}`));
  }, 60_000);
});
