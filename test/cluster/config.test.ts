import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseServerConfig } from '../../src/cluster/config.js';
import { prepareDataDirectory, recordedShardCount } from '../../src/cluster/data-directory.js';
import { loadShardHasher, shardOf } from '../../src/router/shard-hash.js';

const directories: string[] = [];
afterEach(() => {
  for (const directory of directories.splice(0)) rmSync(directory, { recursive: true, force: true });
});

function baseConfig(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const dataDir = mkdtempSync(join(tmpdir(), 'paxosstore-config-'));
  directories.push(dataDir);
  return {
    replicaId: 1,
    replicas: [
      { id: 1, peerPort: 7110 },
      { id: 2, peerPort: 7210 },
      { id: 3, peerPort: 7310 },
    ],
    secret: 's3cret',
    dataDir,
    resp: { port: 7100 },
    http: { port: 7101 },
    ...overrides,
  };
}

describe('parseServerConfig', () => {
  it('fills defaults', () => {
    const config = parseServerConfig(baseConfig());
    expect(config.shards).toBe(1);
    expect(config.transport.socketsPerPeer).toBe(2);
    expect(config.resp).toEqual({ host: '127.0.0.1', port: 7100 });
  });
  it('names the offending field', () => {
    expect(() => parseServerConfig(baseConfig({ shards: 0 }))).toThrow(/shards must be in/);
    expect(() => parseServerConfig(baseConfig({ replicaId: 9 }))).toThrow(/replicaId 9 is not listed/);
    expect(() => parseServerConfig(baseConfig({ transport: { socketsPerPeer: 'x' } }))).toThrow(/transport.socketsPerPeer must be an integer/);
    expect(() => parseServerConfig(baseConfig({ replicas: [{ id: 1, peerPort: 1 }, { id: 2, peerPort: 2 }] }))).toThrow(/odd count/);
  });
});

describe('data directory identity', () => {
  it('pins the shard count and replica set', async () => {
    const config = parseServerConfig(baseConfig());
    expect(await prepareDataDirectory(config)).toBe('created');
    expect(await prepareDataDirectory(config)).toBe('existing');
    const other = parseServerConfig({ ...baseConfig(), dataDir: config.dataDir, shards: 3 });
    await expect(prepareDataDirectory(other)).rejects.toMatchObject({ code: 'CONFIG_MISMATCH', message: expect.stringMatching(/shards is 1, config says 3/) });
  });

  it('tells a restart the shard count the directory was created with', async () => {
    const config = parseServerConfig(baseConfig({ shards: 4 }));
    expect(recordedShardCount(config.dataDir)).toBeUndefined();
    await prepareDataDirectory(config);
    expect(recordedShardCount(config.dataDir)).toBe(4);
  });
});

describe('shardOf', () => {
  it('is xxhash64 mod shards and spreads keys', async () => {
    await loadShardHasher();
    // xxh64("a", seed 0) = 0xd24ec4f1a98c6e5b, a published test value.
    expect(shardOf(new TextEncoder().encode('a'), 1000)).toBe(Number(0xd24ec4f1a98c6e5bn % 1000n));
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) counts[shardOf(new TextEncoder().encode(`key:${i}`), 4)]++;
    for (const count of counts) expect(count).toBeGreaterThan(850);
  });
});

describe('data directory lock', () => {
  it('refuses a second live holder and takes over a stale lock', async () => {
    const { lockDataDirectory } = await import('../../src/cluster/data-directory.js');
    const { writeFileSync } = await import('node:fs');
    const config = parseServerConfig(baseConfig());
    await prepareDataDirectory(config);
    // pid 1 is always alive: a lock held by it must be refused.
    writeFileSync(join(config.dataDir, 'LOCK'), '1\n');
    expect(() => lockDataDirectory(config.dataDir)).toThrow(/in use by process 1/);
    // a pid that cannot exist is stale
    writeFileSync(join(config.dataDir, 'LOCK'), '2147483646\n');
    const unlock = lockDataDirectory(config.dataDir);
    unlock();
  });
});
