import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import type { KeyOperation, RequestId } from '../../src/api/operations.js';
import { PaxosStoreError } from '../../src/errors.js';
import { type ChannelBuffers, createChannelBuffers, ShardClientChannel } from '../../src/ipc/channel.js';
import { echoWorkerFile } from '../../src/ipc/echo.js';
import { RingFrameCodec } from '../../src/ipc/ring-frame.js';
import { Random } from '../../src/util/random.js';

// These tests run the compiled echo worker: `npx tsc -p .` (or `npm test`) first.

const encoder = { encode: (text: string): Buffer => Buffer.from(text) };
const workers: Worker[] = [];

function requestId(sequence: number): RequestId {
  return { clientId: 'test-client', timestampMs: 1_700_000_000_123, sequence };
}

function startEcho(buffers: ChannelBuffers): { worker: Worker; exited: Promise<number> } {
  const worker = new Worker(echoWorkerFile, { workerData: buffers });
  workers.push(worker);
  const exited = new Promise<number>((resolve) => worker.once('exit', resolve));
  return { worker, exited };
}

/** Byte fields compared by content: binary ring frames decode them as plain Uint8Arrays, msgpack ones as Buffers. */
function plainBytes(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plainBytes);
  if (value !== null && typeof value === 'object' && !(value instanceof Error)) {
    return Object.fromEntries(Object.entries(value).map(([field, inner]) => [field, plainBytes(inner)]));
  }
  return value;
}

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.terminate();
});

describe('ring frame codec', () => {
  it('round-trips every frame type, bigint deltas beyond 2^53, binary as Uint8Array, errors as PaxosStoreError', () => {
    const codec = new RingFrameCodec();
    const key = encoder.encode('k');
    const operations: KeyOperation[] = [
      { kind: 'get', consistency: 'linearizable' },
      { kind: 'get', consistency: 'local' },
      { kind: 'set', value: encoder.encode('v'), ifVersion: 7, onlyIfAbsent: true },
      { kind: 'set', value: Buffer.alloc(0), onlyIfPresent: true },
      { kind: 'delete' },
      { kind: 'delete', ifVersion: 0 },
      { kind: 'incr', delta: -(2n ** 63n) },
      { kind: 'incr', delta: 2n ** 60n + 1n },
      { kind: 'append', value: encoder.encode('tail') },
    ];
    for (const operation of operations) {
      const decoded = codec.decode(codec.encode({ type: 'request', id: 3, key, operation, requestId: requestId(9) }));
      expect(plainBytes(decoded)).toEqual(plainBytes({ type: 'request', id: 3, key, operation, requestId: requestId(9) }));
    }
    const reply = codec.decode(codec.encode({ type: 'reply', id: 1, result: { applied: false, version: 2 ** 40, value: key } }));
    expect(reply).toEqual({ type: 'reply', id: 1, result: { applied: false, version: 2 ** 40, value: key } });
    const failure = codec.decode(codec.encode({ type: 'failure', id: 2, error: new PaxosStoreError('CONTENTION', 'busy key', { tries: 3 }) }));
    expect(failure.type === 'failure' && failure.error).toBeInstanceOf(PaxosStoreError);
    expect(failure.type === 'failure' && [failure.error.code, failure.error.message, failure.error.details]).toEqual(['CONTENTION', 'busy key', { tries: 3 }]);
    for (const frame of [{ type: 'shutdown' }, { type: 'closed' }, { type: 'ping', id: 4 }, { type: 'stats', id: 5, counters: { a: 1 } }] as const) {
      expect(codec.decode(codec.encode(frame))).toEqual(frame);
    }
  });

  it('uses the binary form for plain requests and replies, msgpack for the rest, and rejects every malformed binary frame', () => {
    const codec = new RingFrameCodec();
    const key = encoder.encode('key:1');
    const request = { type: 'request', id: 2 ** 40, key, operation: { kind: 'set', value: encoder.encode('v'), ifVersion: 0 }, requestId: requestId(5) } as const;
    const encoded = Buffer.from(codec.encode(request));
    expect(encoded[0]).toBe(0xc1);
    expect(plainBytes(codec.decode(encoded))).toEqual(plainBytes(request));
    const reply = { type: 'reply', id: 7, result: { applied: true, version: 3, value: null } } as const;
    expect(codec.encode(reply)[0]).toBe(0xc1);
    expect(codec.decode(codec.encode(reply))).toEqual(reply);
    // Outside the binary form: a log group, a log position, a negative timestamp.
    const grouped = { ...request, logGroup: 'kv' };
    const positioned = { type: 'reply', id: 7, result: { applied: true, version: 3, value: null, logPosition: 9 } } as const;
    const negative = { ...request, requestId: { ...requestId(5), timestampMs: -1 } };
    for (const frame of [grouped, positioned, negative]) {
      const bytes = codec.encode(frame);
      expect(bytes[0]).not.toBe(0xc1);
      expect(codec.decode(bytes)).toEqual(frame);
    }
    for (let length = 1; length < encoded.length; length++) {
      expect(() => codec.decode(encoded.subarray(0, length))).toThrow(PaxosStoreError);
    }
    expect(() => codec.decode(Buffer.concat([encoded, Buffer.from([0])]))).toThrow(/trailing bytes/);
    expect(() => codec.decode(Buffer.from([0xc1, 0x07]))).toThrow(/unknown binary frame kind 7/);
    const badFlag = Buffer.from(codec.encode(reply));
    badFlag[3] = 2; // applied
    expect(() => codec.decode(badFlag)).toThrow(/flag byte 2/);
  });

  it('rejects garbage with PROTOCOL_ERROR', () => {
    const codec = new RingFrameCodec();
    expect(() => codec.decode(new Uint8Array([0x93, 0x01]))).toThrow(/undecodable ring frame/);
    expect(() => codec.decode(new Uint8Array([0x07]))).toThrow(/not a tuple/);
    expect(() => codec.decode(new Uint8Array([0x93, 0x63, 0x01, 0x02]))).toThrow(/unknown frame tag 99/);
    expect(() => codec.decode(new Uint8Array([0x92, 0x01, 0xa1, 0x78]))).toThrow(PaxosStoreError);
  });
});

describe('shard channel with a real worker thread', () => {
  it('round-trips 100k requests through the echo worker, in small rings that wrap and fill', async () => {
    const buffers = createChannelBuffers({ requestRingBytes: 64 * 1024, replyRingBytes: 64 * 1024 });
    const { worker, exited } = startEcho(buffers);
    const served = new Promise((resolve) => worker.once('message', resolve));
    const client = new ShardClientChannel(buffers, { inFlightMax: 4096 });
    const random = new Random(2024);
    const total = 100_000;
    // Values are random slices of one random pool: random sizes without generating 100 MB.
    const pool = Buffer.from(random.bytes(64 * 1024));
    let checked = 0;
    let mismatches = 0;
    let overflowSeen = 0;
    const window = 2000;
    for (let start = 0; start < total; start += window) {
      const calls: Promise<void>[] = [];
      for (let sequence = start; sequence < start + window; sequence++) {
        // Random sizes up to 2 KiB: records land on every offset and the rings wrap constantly.
        const offset = random.int(pool.length - 2048);
        const value = pool.subarray(offset, offset + random.int(2048));
        calls.push(
          client.execute(encoder.encode(`key${sequence}`), { kind: 'set', value }, requestId(sequence)).then((result) => {
            if (result.version !== sequence || Buffer.compare(result.value!, value) !== 0) mismatches++;
            checked++;
          }),
        );
      }
      overflowSeen = Math.max(overflowSeen, client.overflowFrames);
      await Promise.all(calls);
    }
    expect(checked).toBe(total);
    expect(mismatches).toBe(0);
    // 2000 requests of ~1 KiB cannot fit in a 64 KiB ring: the backpressure path was exercised.
    expect(overflowSeen).toBeGreaterThan(0);
    expect(await client.stats()).toEqual({ served: total });
    await client.shutdown();
    expect(await served).toEqual({ served: total });
    expect(await exited).toBe(0);
  });

  it('carries bigint deltas, errors with their code, pings, and rejects oversized frames clearly', async () => {
    const buffers = createChannelBuffers({ requestRingBytes: 4096, replyRingBytes: 4096 });
    const { exited } = startEcho(buffers);
    const client = new ShardClientChannel(buffers);
    await client.ping();
    const incr = await client.execute(encoder.encode('n'), { kind: 'incr', delta: -(2n ** 62n) }, requestId(1));
    expect(new TextDecoder().decode(incr.value!)).toBe((-(2n ** 62n)).toString());
    const get = await client.execute(encoder.encode('plain'), { kind: 'get', consistency: 'local' }, requestId(2));
    expect(get.value).toBeInstanceOf(Uint8Array);
    expect(new TextDecoder().decode(get.value!)).toBe('plain');
    const failure = await client.execute(encoder.encode('fail-me'), { kind: 'delete' }, requestId(3)).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(PaxosStoreError);
    expect((failure as PaxosStoreError).code).toBe('WRONG_TYPE');
    expect((failure as PaxosStoreError).details).toEqual({ sequence: 3 });
    const tooLarge = await client.execute(encoder.encode('big'), { kind: 'set', value: new Uint8Array(3000) }, requestId(4)).catch((error: unknown) => error);
    expect((tooLarge as PaxosStoreError).code).toBe('REQUEST_TOO_LARGE');
    expect(client.inFlight).toBe(0);
    await client.shutdown();
    expect(await exited).toBe(0);
    await expect(client.execute(encoder.encode('late'), { kind: 'delete' }, requestId(5))).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('fails fast with OVERLOADED beyond inFlightMax, and answers in-flight requests before a shutdown completes', async () => {
    const buffers = createChannelBuffers({ requestRingBytes: 4096, replyRingBytes: 4096 });
    const { exited } = startEcho(buffers);
    const client = new ShardClientChannel(buffers, { inFlightMax: 3 });
    const calls = [0, 1, 2].map((sequence) => client.execute(encoder.encode('k'), { kind: 'delete' }, requestId(sequence)));
    await expect(client.execute(encoder.encode('k'), { kind: 'delete' }, requestId(3))).rejects.toMatchObject({ code: 'OVERLOADED' });
    // Shut down with the three still in flight: the worker answers them before it confirms.
    const shutdowns = [client.shutdown(), client.shutdown()];
    await expect(client.execute(encoder.encode('k'), { kind: 'delete' }, requestId(4))).rejects.toMatchObject({ code: 'CLOSED' });
    expect((await Promise.all(calls)).map((result) => result.version)).toEqual([0, 1, 2]);
    await Promise.all(shutdowns);
    expect(await exited).toBe(0);
  });

  it('lets a whole process exit on its own after shutdown (no handle left behind)', async () => {
    const channelModule = fileURLToPath(new URL('../../dist/src/ipc/channel.js', import.meta.url));
    const script = `
      import { Worker } from 'node:worker_threads';
      import { createChannelBuffers, ShardClientChannel } from ${JSON.stringify(channelModule)};
      const buffers = createChannelBuffers({ requestRingBytes: 4096, replyRingBytes: 4096 });
      new Worker(${JSON.stringify(echoWorkerFile)}, { workerData: buffers, execArgv: [] });
      const client = new ShardClientChannel(buffers);
      const results = await Promise.all(Array.from({ length: 500 }, (_, sequence) =>
        client.execute(Buffer.from('k'), { kind: 'delete' }, { clientId: 'c', timestampMs: 0, sequence })));
      await client.shutdown();
      console.log(results.length);
    `;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout) =>
        error ? reject(error) : resolve(stdout),
      );
    });
    expect(output.trim()).toBe('500');
  });
});
