/**
 * A shard worker stand-in that answers every request from its ring without storage: the ring
 * and channel tests and the ring micro-benchmark run it in a real worker thread. It echoes the
 * request back so that the caller can check each reply against its own request:
 * get → the key, set/append → the value, incr → the delta in ASCII, delete → null; version =
 * the request's sequence number. A key starting with `fail` is answered with WRONG_TYPE.
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { KeyResult } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import { type ChannelBuffers, ShardWorkerChannel } from './channel.js';
import type { RequestFrame } from './ring-frame.js';

const FAIL_PREFIX = new TextEncoder().encode('fail');

function echo(request: RequestFrame): KeyResult {
  const { key, operation, requestId } = request;
  if (key.length >= FAIL_PREFIX.length && FAIL_PREFIX.every((byte, index) => key[index] === byte)) {
    throw new PaxosStoreError('WRONG_TYPE', 'echo worker refuses keys starting with fail', { sequence: requestId.sequence });
  }
  const version = requestId.sequence;
  switch (operation.kind) {
    case 'get':
      return { applied: true, version, value: key };
    case 'set':
    case 'append':
      return { applied: true, version, value: operation.value };
    case 'incr':
      return { applied: true, version, value: new TextEncoder().encode(operation.delta.toString()) };
    case 'delete':
      return { applied: operation.ifVersion === undefined, version, value: null };
  }
}

let served = 0;
const channel = new ShardWorkerChannel(workerData as ChannelBuffers, {
  onRequest: (request, reply) => {
    served++;
    reply({ ok: true, value: echo(request) });
  },
  stats: () => ({ served }),
});
await channel.done;
parentPort?.postMessage({ served });
