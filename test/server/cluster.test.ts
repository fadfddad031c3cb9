import { execFileSync } from 'node:child_process';
import { connect as connectTcp } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { PeerLinks } from '../../src/transport/peer-links.js';
import { type TestCluster, startTestCluster } from './harness.js';

let cluster: TestCluster;
const client = (replicaId: number): Redis => cluster.redis(replicaId);

beforeAll(async () => {
  cluster = await startTestCluster({ shards: 2 });
}, 60_000);

afterAll(async () => {
  await cluster?.stopAll();
});

describe('a three-replica cluster of real processes', () => {
  it('reads through one replica what was written through another', async () => {
    const r1 = client(1);
    const r3 = client(3);
    expect(await r1.set('greeting', 'hello')).toBe('OK');
    expect(await r3.get('greeting')).toBe('hello');
    expect(await client(2).incr('counter')).toBe(1);
    expect(await r3.incr('counter')).toBe(2);
    expect(await r1.incrby('counter', 10)).toBe(12);
  });

  it('spreads MSET/MGET across shards and pipelines', async () => {
    const r2 = client(2);
    const pairs: string[] = [];
    for (let i = 0; i < 40; i++) pairs.push(`multi:${i}`, `value-${i}`);
    expect(await r2.mset(...pairs)).toBe('OK');
    const keys = Array.from({ length: 40 }, (_, i) => `multi:${i}`);
    expect(await client(1).mget(...keys)).toEqual(keys.map((_, i) => `value-${i}`));
    const pipeline = client(3).pipeline();
    for (let i = 0; i < 200; i++) pipeline.set(`pipe:${i}`, String(i));
    for (let i = 0; i < 200; i++) pipeline.get(`pipe:${i}`);
    const results = await pipeline.exec();
    // The SET replies first: a GET can only be expected to see its key if its SET succeeded.
    expect(results!.slice(0, 200).map(([error, value]) => error?.message ?? value)).toEqual(Array.from({ length: 200 }, () => 'OK'));
    expect(results!.slice(200).map(([, value]) => value)).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it("talks to Debian's redis-cli", () => {
    const port = String(cluster.respPort(2));
    expect(execFileSync('redis-cli', ['-p', port, 'set', 'cli-key', 'cli value'], { encoding: 'utf8' }).trim()).toBe('OK');
    expect(execFileSync('redis-cli', ['-p', String(cluster.respPort(1)), 'get', 'cli-key'], { encoding: 'utf8' }).trim()).toBe('cli value');
    expect(execFileSync('redis-cli', ['-p', port, 'ping'], { encoding: 'utf8' }).trim()).toBe('PONG');
    expect(execFileSync('redis-cli', ['-p', port, 'nosuchcommand'], { encoding: 'utf8' })).toMatch(/unknown command/);
  });

  it('answers garbage on the RESP port with an error and keeps serving others', async () => {
    const reply = await new Promise<string>((resolve) => {
      const socket = connectTcp(cluster.respPort(1), '127.0.0.1');
      let received = '';
      socket.on('data', (chunk) => (received += chunk.toString()));
      socket.on('close', () => resolve(received));
      socket.on('error', () => resolve(received));
      socket.write(Buffer.from('*2\r\n$3\r\nGET\r\n$-7\r\n\x00\xff garbage'));
    });
    expect(reply).toMatch(/^-ERR Protocol error/);
    expect(await client(1).get('greeting')).toBe('hello');
  });

  it('refuses a peer with the wrong secret and drops garbage on a peer port, and keeps serving', async () => {
    const config = cluster.configs[0];
    const impostor = new PeerLinks<PeerMessage>({
      identity: { clusterId: config.clusterId, replicaId: 2, shardIndex: 0, shardCount: config.shards },
      secret: 'not-the-secret',
      listenHost: '127.0.0.1',
      listenPort: 0,
      peers: [{ replicaId: 1, address: { host: '127.0.0.1', port: config.replicas[0].peerPort } }],
      isMessage: (value): value is PeerMessage => typeof value === 'object' && value !== null,
      onMessages: () => {},
      logger: { info: () => {}, warn: () => {} },
      reconnectDelayMsMin: 50,
      reconnectDelayMsMax: 100,
    });
    await impostor.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(impostor.peerStatus(1).connectedSockets).toBe(0);
    expect(impostor.counters().linksEstablished).toBe(0);
    await impostor.close();

    await new Promise<void>((resolve) => {
      const socket = connectTcp(config.replicas[0].peerPort + 1, '127.0.0.1');
      socket.on('connect', () => socket.write(Buffer.alloc(4096, 0xab)));
      socket.on('close', () => resolve());
      socket.on('error', () => resolve());
    });
    expect(await client(1).set('after-garbage', 'ok')).toBe('OK');
    expect(await client(3).get('after-garbage')).toBe('ok');
  });

  it('loses no acknowledged write when a replica is killed under load, and the restarted replica catches up', async () => {
    const acknowledged = new Map<string, string>();
    const writers = [client(1), client(2)];
    let stopWriting = false;
    let failures = 0;
    const writerLoops = writers.map(async (redis, index) => {
      for (let i = 0; !stopWriting; i++) {
        const key = `load:${index}:${i}`;
        try {
          await redis.set(key, `v${i}`);
          acknowledged.set(key, `v${i}`);
        } catch {
          failures++;
        }
      }
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await cluster.kill(3, 'SIGKILL');
    const beforeKill = acknowledged.size;
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const afterKill = acknowledged.size - beforeKill;
    stopWriting = true;
    await Promise.all(writerLoops);
    // The two survivors are a majority: writes must keep succeeding while replica 3 is down.
    expect(afterKill).toBeGreaterThan(20);
    expect(failures).toBe(0);

    await cluster.start(3);
    const r3 = client(3);
    // Linearizable reads through the restarted replica see every acknowledged write (and pull
    // each key's chosen entry from its peers as they go).
    const keys = [...acknowledged.keys()];
    for (let start = 0; start < keys.length; start += 100) {
      const batch = keys.slice(start, start + 100);
      expect(await r3.mget(...batch)).toEqual(batch.map((key) => acknowledged.get(key)));
    }
    // …after which replica 3's own copy is current, key by key: local reads need no peer.
    await r3.call('CLIENT', 'READMODE', 'local');
    for (let start = 0; start < keys.length; start += 100) {
      const batch = keys.slice(start, start + 100);
      expect(await r3.mget(...batch)).toEqual(batch.map((key) => acknowledged.get(key)));
    }
  }, 60_000);

  it('shuts down gracefully when the same SIGTERM arrives twice at once (Ctrl-C signals the whole group), and restarts', async () => {
    expect(await client(2).set('before-double-term', 'kept')).toBe('OK');
    await cluster.kill(2, 'SIGTERM', 2);
    expect(cluster.output(2)).toMatch(/SIGTERM: shutting down/);
    expect(cluster.output(2)).toMatch(/stopped/);
    expect(cluster.output(2)).not.toMatch(/exiting without waiting/);
    await cluster.start(2);
    expect(await cluster.redis(2).get('before-double-term')).toBe('kept');
  }, 30_000);
});
