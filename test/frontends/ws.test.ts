import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { KeyOperation, KeyResult, RequestId } from '../../src/api/operations.js';
import { encodeClientFrame, WebSocketConnection } from '../../src/client/websocket.js';
import type { HttpLimits } from '../../src/frontends/http/limits.js';
import { type HttpServer, startHttpServer } from '../../src/frontends/http/server.js';
import {
  type ClientFrame,
  decodeMsgpack,
  encodeFrame,
  parseServerFrame,
  type ServerFrame,
} from '../../src/frontends/http/ws-protocol.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import type { Router } from '../../src/router/types.js';
import { Random } from '../../src/util/random.js';
import { MemoryRouter } from '../helpers/memory-router.js';
import { parsePrometheusText, sampleValue } from '../metrics/prometheus-parser.js';

const servers: HttpServer[] = [];
const sockets: WebSocketConnection[] = [];

afterEach(async () => {
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(router: Router, limits: Partial<HttpLimits> = {}) {
  const metrics = new MetricsRegistry();
  const server = await startHttpServer({ port: 0, router, metrics, limits });
  servers.push(server);
  return { server, metrics };
}

/** A raw protocol connection: frames in, every reply collected, close reported. */
async function open(port: number) {
  const replies: ServerFrame[] = [];
  const waiters: (() => void)[] = [];
  let closeInfo: { code: number; reason: string } | undefined;
  let reportClose!: (info: { code: number; reason: string }) => void;
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    reportClose = resolve;
  });
  const wakeAll = () => {
    for (const wake of waiters.splice(0)) wake();
  };
  const socket = await WebSocketConnection.connect(
    new URL(`ws://127.0.0.1:${port}/v1/ws`),
    {
      onMessage: (data) => {
        replies.push(parseServerFrame(decodeMsgpack(data)));
        wakeAll();
      },
      onClose: (code, reason) => {
        closeInfo = { code, reason };
        reportClose(closeInfo);
        wakeAll();
      },
    },
    { connectTimeoutMs: 2000, maxMessageBytes: 64 * 1024 * 1024 },
  );
  sockets.push(socket);
  const waitForReplies = async (count: number) => {
    while (replies.length < count) {
      if (closeInfo !== undefined) throw new Error(`closed ${closeInfo.code} ${closeInfo.reason} after ${replies.length} replies`);
      await new Promise<void>((resolve) => waiters.push(resolve));
    }
    return replies;
  };
  const send = (frame: ClientFrame) => socket.send(encodeFrame(frame));
  return { socket, replies, closed, waitForReplies, send };
}

const text = (value: string) => new TextEncoder().encode(value);

/** A router whose calls wait until the test opens the gate. */
class GatedRouter implements Router {
  private gate: Promise<void>;
  private openGate!: () => void;
  executed = 0;
  constructor(private readonly inner: MemoryRouter) {
    this.gate = new Promise((resolve) => {
      this.openGate = resolve;
    });
  }
  async execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    this.executed += 1;
    await this.gate;
    return this.inner.execute(key, operation, requestId);
  }
  info() {
    return this.inner.info();
  }
  release(): void {
    this.openGate();
  }
}

describe('WebSocket front end', () => {
  test('pipelined requests are answered once each, out of order, matched by id', async () => {
    const router = new MemoryRouter({ random: new Random(7), delayMsMax: 15 });
    const { server } = await start(router);
    const client = await open(server.port);
    const count = 200;
    for (let id = 1; id <= count; id++) {
      client.send({ id, op: 'set', key: text(`key-${id}`), value: text(`value-${id}`) });
    }
    const replies = await client.waitForReplies(count);
    const ids = replies.map((reply) => reply.id);
    expect(new Set(ids).size).toBe(count);
    expect([...ids].sort((a, b) => a! - b!)).toEqual(Array.from({ length: count }, (_, index) => index + 1));
    expect(ids).not.toEqual([...ids].sort((a, b) => a! - b!)); // completion order, not request order
    for (const reply of replies) expect(reply).toMatchObject({ ok: true, result: { applied: true, version: 1, value: null } });

    client.send({ id: 1000, op: 'mget', keys: [text('key-1'), text('key-200'), text('absent')] });
    client.send({ id: 1001, op: 'mset', entries: [[text('m1'), text('a')], [text('m2'), text('b')]] });
    client.send({ id: 1002, op: 'incr', key: text('n'), delta: -3n });
    client.send({ id: 1003, op: 'ping' });
    const more = await client.waitForReplies(count + 4);
    const byId = new Map(more.map((reply) => [reply.id, reply]));
    expect(byId.get(1000)).toEqual({
      id: 1000,
      ok: true,
      results: [
        { ok: true, result: { applied: true, version: 1, value: Buffer.from('value-1') } },
        { ok: true, result: { applied: true, version: 1, value: Buffer.from('value-200') } },
        { ok: true, result: { applied: true, version: 0, value: null } },
      ],
    });
    expect(byId.get(1001)).toMatchObject({ ok: true, results: [{ ok: true }, { ok: true }] });
    expect(byId.get(1002)).toMatchObject({ ok: true, result: { value: Buffer.from('-3'), version: 1 } });
    expect(byId.get(1003)).toEqual({ id: 1003, ok: true });
    expect(Buffer.from(router.peek('m2').value!)).toEqual(Buffer.from('b'));
  });

  test('invalid requests with an id get error replies and the connection stays usable', async () => {
    const { server } = await start(new MemoryRouter(), { keyBytesMax: 8 });
    const client = await open(server.port);
    client.socket.send(encodeFrame({ id: 1, op: 'frobnicate' } as unknown as ClientFrame));
    client.socket.send(encodeFrame({ id: 2, op: 'set', key: text('a') } as unknown as ClientFrame));
    client.send({ id: 3, op: 'get', key: text('much-too-long-key') });
    client.socket.send(encodeFrame({ id: 4, op: 'get', key: 'a', consistency: 'eventual' } as unknown as ClientFrame));
    client.send({ id: 5, op: 'get', key: text('a') });
    const replies = await client.waitForReplies(5);
    const codes = new Map(replies.map((reply) => [reply.id, reply.ok ? 'ok' : reply.error.code]));
    expect(codes).toEqual(
      new Map([
        [1, 'UNKNOWN_COMMAND'],
        [2, 'INVALID_ARGUMENT'],
        [3, 'KEY_TOO_LARGE'],
        [4, 'INVALID_ARGUMENT'],
        [5, 'ok'],
      ]),
    );
  });

  test('undecodable msgpack and frames without an id close that connection only (1007 with a reason)', async () => {
    const { server, metrics } = await start(new MemoryRouter());
    const bystander = await open(server.port);
    const garbage = await open(server.port);
    garbage.socket.send(new Uint8Array([0x92, 0x01])); // an array of 2 with 1 element
    expect(await garbage.closed).toMatchObject({ code: 1007, reason: expect.stringContaining('malformed msgpack') });
    const noId = await open(server.port);
    noId.socket.send(encodeFrame({ op: 'ping' } as unknown as ClientFrame));
    expect(await noId.closed).toMatchObject({ code: 1007, reason: expect.stringContaining('request id') });

    bystander.send({ id: 9, op: 'set', key: text('still'), value: text('here') });
    expect((await bystander.waitForReplies(1))[0]).toMatchObject({ id: 9, ok: true });
    const families = parsePrometheusText(metrics.render());
    const problems = (kind: string) => sampleValue(families, 'paxosstore_ws_protocol_errors_total', 'paxosstore_ws_protocol_errors_total', { kind });
    expect(problems('malformed_msgpack')).toBe(1);
    expect(problems('missing_id')).toBe(1);
  });

  test('an oversized frame closes that connection; others keep working', async () => {
    const { server } = await start(new MemoryRouter(), { wsFrameBytesMax: 1024, valueBytesMax: 512 });
    const bystander = await open(server.port);
    const big = await open(server.port);
    big.send({ id: 1, op: 'set', key: text('k'), value: new Uint8Array(600) });
    expect((await big.waitForReplies(1))[0]).toMatchObject({ id: 1, ok: false, error: { code: 'VALUE_TOO_LARGE' } });
    big.send({ id: 2, op: 'set', key: text('k'), value: new Uint8Array(4096) });
    const { code } = await big.closed;
    expect(code).not.toBe(1000);
    bystander.send({ id: 1, op: 'ping' });
    expect((await bystander.waitForReplies(1))[0]).toEqual({ id: 1, ok: true });
  });

  test('requests beyond wsInFlightMax are answered OVERLOADED at once', async () => {
    const router = new GatedRouter(new MemoryRouter());
    const { server, metrics } = await start(router, { wsInFlightMax: 4 });
    const client = await open(server.port);
    for (let id = 1; id <= 6; id++) client.send({ id, op: 'get', key: text(`k${id}`) });
    const early = await client.waitForReplies(2);
    expect(early.map((reply) => [reply.id, !reply.ok && reply.error.code])).toEqual([
      [5, 'OVERLOADED'],
      [6, 'OVERLOADED'],
    ]);
    const families = parsePrometheusText(metrics.render());
    expect(sampleValue(families, 'paxosstore_ws_in_flight_requests', 'paxosstore_ws_in_flight_requests', {})).toBe(4);
    router.release();
    const all = await client.waitForReplies(6);
    expect(all.slice(2).every((reply) => reply.ok)).toBe(true);
  });

  test('replies to a connection that closed meanwhile are dropped quietly', async () => {
    const router = new GatedRouter(new MemoryRouter());
    const { server } = await start(router);
    const leaving = await open(server.port);
    for (let id = 1; id <= 5; id++) leaving.send({ id, op: 'set', key: text(`k${id}`), value: text('v') });
    while (router.executed < 5) await new Promise((resolve) => setTimeout(resolve, 2));
    leaving.socket.destroy();
    await new Promise((resolve) => setTimeout(resolve, 50));
    router.release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const staying = await open(server.port);
    staying.send({ id: 1, op: 'get', key: text('k5') });
    expect((await staying.waitForReplies(1))[0]).toMatchObject({ ok: true, result: { version: 1 } });
  });

  test('a client that stops reading stops getting work done for it; others are unaffected', async () => {
    const router = new MemoryRouter();
    const valueBytes = 512 * 1024;
    await router.execute(text('big'), { kind: 'set', value: randomBytes(valueBytes) }, { clientId: 't', timestampMs: 0, sequence: 1 });
    const { server } = await start(router, { wsSendHighWaterBytes: 256 * 1024 });
    const requests = 60;
    const slow = await rawPausedConnection(server.port);
    for (let id = 1; id <= requests; id++) slow.write(encodeClientFrame(2, encodeFrame({ id, op: 'get', key: text('big') })));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const readsWhilePaused = router.info().counters.reads;
    // The kernel buffers absorb a few replies; after that the server parks the rest.
    expect(readsWhilePaused).toBeLessThan(requests / 2);

    const bystander = await open(server.port);
    bystander.send({ id: 1, op: 'get', key: text('big') });
    expect((await bystander.waitForReplies(1))[0]).toMatchObject({ ok: true, result: { version: 1 } });

    const received = new Promise<number>((resolve) => {
      let bytes = 0;
      slow.on('data', (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes >= requests * valueBytes) resolve(bytes);
      });
    });
    slow.resume();
    expect(await received).toBeGreaterThanOrEqual(requests * valueBytes);
    expect(router.info().counters.reads).toBe(requests + 1);
    slow.destroy();
  });
});

/** Completes a WebSocket handshake on a raw socket and pauses it: replies pile up unread. */
function rawPausedConnection(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      if (head.indexOf('\r\n\r\n') < 0) return;
      socket.off('data', onData);
      socket.pause();
      expect(head.toString('latin1')).toMatch(/^HTTP\/1\.1 101/);
      resolve(socket);
    };
    socket.on('data', onData);
    socket.on('error', reject);
    socket.write(
      `GET /v1/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    );
  });
}
