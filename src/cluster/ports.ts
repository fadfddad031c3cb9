import * as net from 'node:net';
import { PaxosStoreError } from '../errors.js';

/**
 * Finding a free block of loopback ports for a local cluster (tests, benchmark sweeps). The port
 * plan of src/cluster/local-cluster.ts gives replica r the block base + (r-1)*100: front ends at
 * +0 and +1, peer links of worker k at +10+k.
 */

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/** Bases stay below Linux's ephemeral range (32768+), where other processes' client sockets could take a port between this check and the listen. */
const BASE_PORT_MIN = 20_000;
const BASE_PORT_LIMIT = 32_000;

/** A base port whose whole plan (every replica's front ends and `shards` peer ports) is free right now. */
export async function findFreeBasePort(replicas: number, shards: number): Promise<number> {
  const blocks = Math.floor((BASE_PORT_LIMIT - BASE_PORT_MIN - replicas * 100) / 100);
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = BASE_PORT_MIN + 100 * Math.floor(Math.random() * blocks);
    const ports: number[] = [];
    for (let replica = 0; replica < replicas; replica++) {
      ports.push(base + replica * 100, base + replica * 100 + 1);
      for (let shard = 0; shard < shards; shard++) ports.push(base + replica * 100 + 10 + shard);
    }
    if ((await Promise.all(ports.map(portIsFree))).every(Boolean)) return base;
  }
  throw new PaxosStoreError('IO_ERROR', 'no free block of loopback ports found for a local cluster');
}
