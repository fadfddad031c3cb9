/**
 * Micro-benchmark: request/reply round trips between the main thread and a real worker thread
 * through the SharedArrayBuffer rings (src/ipc), against the echo worker. Two shapes: one request
 * at a time (latency, a doorbell wake-up each way) and windows of 256 pipelined requests
 * (throughput, what a pipelining front end produces). Run: `npx tsc -p . && node dist/bench/micro/ring.js`.
 */

import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import type { RequestId } from '../../src/api/operations.js';
import { createChannelBuffers, ShardClientChannel } from '../../src/ipc/channel.js';
import { echoWorkerFile } from '../../src/ipc/echo.js';

const PIPELINE_WINDOW = 256;

export async function benchRing(timeMs = 1000): Promise<Bench> {
  const buffers = createChannelBuffers();
  const worker = new Worker(echoWorkerFile, { workerData: buffers });
  const client = new ShardClientChannel(buffers);
  const key = Buffer.from('bench-key');
  const value = Buffer.alloc(64, 7);
  let sequence = 0;
  const requestId = (): RequestId => ({ clientId: 'bench', timestampMs: 0, sequence: sequence++ });
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench
    .add('ring round trip, 1 in flight (64-byte set)', async () => {
      await client.execute(key, { kind: 'set', value }, requestId());
    })
    .add(`ring round trips, ${PIPELINE_WINDOW} pipelined (64-byte set), per window`, async () => {
      const calls = [];
      for (let index = 0; index < PIPELINE_WINDOW; index++) calls.push(client.execute(key, { kind: 'set', value }, requestId()));
      await Promise.all(calls);
    });
  await bench.run();
  await client.shutdown();
  await new Promise((resolve) => worker.once('exit', resolve));
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchRing();
  console.table(bench.table());
}
