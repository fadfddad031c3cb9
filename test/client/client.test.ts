import { createHash } from 'node:crypto';
import * as net from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import type { KeyOperation, KeyResult, RequestId } from '../../src/api/operations.js';
import { type HttpServer, startHttpServer } from '../../src/frontends/http/server.js';
import { type Client, connect, PaxosStoreError } from '../../src/index.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import type { Router } from '../../src/router/types.js';
import { Random } from '../../src/util/random.js';
import { MemoryRouter } from '../helpers/memory-router.js';

const servers: HttpServer[] = [];
const clients: Client[] = [];

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(router: Router): Promise<string> {
  const server = await startHttpServer({ port: 0, router, metrics: new MetricsRegistry() });
  servers.push(server);
  return `ws://127.0.0.1:${server.port}`;
}

async function client(endpoints: string[], options: { timeoutMs?: number } = {}): Promise<Client> {
  const connected = await connect({ endpoints, ...options });
  clients.push(connected);
  return connected;
}

const text = (value: Uint8Array | null) => (value === null ? null : Buffer.from(value).toString('utf8'));

/** Wraps a router: calls wait for `gate` before running (when set), and apply-then-delay when `replyDelayMs` is set. */
class ControlledRouter implements Router {
  gate: Promise<void> | undefined;
  replyDelayMs = 0;
  appliedAwaitingReply = 0;
  constructor(readonly inner: MemoryRouter) {}
  async execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    if (this.gate !== undefined) await this.gate;
    const result = await this.inner.execute(key, operation, requestId);
    if (this.replyDelayMs > 0) {
      this.appliedAwaitingReply += 1;
      await new Promise((resolve) => setTimeout(resolve, this.replyDelayMs));
      this.appliedAwaitingReply -= 1;
    }
    return result;
  }
  info() {
    return this.inner.info();
  }
}

describe('client round trips', () => {
  test('every operation, with typed results and versions', async () => {
    const db = await client([await serve(new MemoryRouter())]);
    expect(await db.get('missing')).toEqual({ value: null, version: 0 });
    expect(await db.set('greeting', 'hello')).toEqual({ applied: true, version: 1, previous: null });
    const read = await db.get('greeting');
    expect(text(read.value)).toBe('hello');
    expect(read.version).toBe(1);
    expect(text((await db.get('greeting', { consistency: 'local' })).value)).toBe('hello');

    const swapped = await db.cas('greeting', 1, 'hi');
    expect(swapped.applied).toBe(true);
    expect(text(swapped.previous)).toBe('hello');
    const lost = await db.cas('greeting', 1, 'too late');
    expect(lost).toMatchObject({ applied: false, version: 2 });
    expect(text(lost.previous)).toBe('hi');
    expect((await db.set('greeting', 'x', { onlyIfAbsent: true })).applied).toBe(false);
    expect((await db.set('fresh', 'x', { onlyIfPresent: true })).applied).toBe(false);

    const binaryKey = new Uint8Array([0, 255, 10]);
    const binaryValue = new Uint8Array(300).map((_, index) => index % 256);
    await db.set(binaryKey, binaryValue);
    expect(Buffer.from((await db.get(binaryKey)).value!)).toEqual(Buffer.from(binaryValue));

    expect(await db.incr('counter')).toEqual({ value: 1n, version: 1 });
    expect(await db.incr('counter', -10)).toEqual({ value: -9n, version: 2 });
    expect(await db.incr('counter', 2n ** 40n)).toEqual({ value: 2n ** 40n - 9n, version: 3 });
    const appended = await db.append('log', 'a');
    expect(text(appended.value)).toBe('a');
    expect(text((await db.append('log', 'b')).value)).toBe('ab');

    const written = await db.mset([
      ['m1', 'one'],
      ['m2', 'two'],
    ]);
    expect(written.map((result) => result.version)).toEqual([1, 1]);
    const many = await db.mget(['m1', 'm2', 'nope']);
    expect(many.map((result) => text(result.value))).toEqual(['one', 'two', null]);

    expect(await db.delete('m1', { ifVersion: 5 })).toMatchObject({ applied: false, version: 1 });
    expect(await db.delete('m1')).toMatchObject({ applied: true, version: 2 });
    expect(await db.delete('m1')).toMatchObject({ applied: false, version: 2 });
    await db.ping();

    await expect(db.incr('greeting')).rejects.toMatchObject({ code: 'WRONG_TYPE' });
    await expect(db.incr('greeting')).rejects.toBeInstanceOf(PaxosStoreError);
  });

  test('request ids are compact: a short random clientId with sequences from 1; an explicit clientId starts at the clock', async () => {
    const seen: RequestId[] = [];
    const inner = new MemoryRouter();
    const recording: Router = {
      execute: (key, operation, requestId) => {
        seen.push(requestId);
        return inner.execute(key, operation, requestId);
      },
      info: () => inner.info(),
    };
    const endpoint = await serve(recording);
    const db = await client([endpoint]);
    await db.set('a', '1');
    await db.delete('a');
    await db.mset([
      ['b', '2'],
      ['c', '3'],
    ]);
    expect(seen.map((id) => id.sequence)).toEqual([1, 2, 3, 4]);
    expect(new Set(seen.map((id) => id.clientId)).size).toBe(1);
    expect(seen[0].clientId.length).toBeLessThanOrEqual(16);
    // Two generated ids never collide (72 random bits each).
    const other = await client([endpoint]);
    await other.set('a', '1');
    expect(seen[4].clientId).not.toBe(seen[0].clientId);

    const beforeMs = Date.now();
    const named = await connect({ endpoints: [endpoint], clientId: 'restarted-app' });
    clients.push(named);
    await named.set('a', '2');
    expect(seen[5].clientId).toBe('restarted-app');
    expect(seen[5].sequence).toBeGreaterThan(beforeMs * 1000);
  });

  test('per-call timeouts, AbortSignal, and a late reply that is ignored', async () => {
    const router = new ControlledRouter(new MemoryRouter());
    const db = await client([await serve(router)], { timeoutMs: 150 });
    let release!: () => void;
    router.gate = new Promise((resolve) => {
      release = resolve;
    });
    const started = performance.now();
    await expect(db.set('k', 'v')).rejects.toMatchObject({ code: 'TIMEOUT' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    await expect(db.get('k', { timeoutMs: 30 })).rejects.toMatchObject({ code: 'TIMEOUT' });

    const controller = new AbortController();
    const aborted = db.get('k', { signal: controller.signal, timeoutMs: 10_000 });
    controller.abort(new Error('user gave up'));
    await expect(aborted).rejects.toThrow('user gave up');
    await expect(db.get('k', { signal: AbortSignal.abort(new Error('already')) })).rejects.toThrow('already');

    router.gate = undefined;
    release();
    // The timed-out set was applied (its reply arrives late and is dropped); the client carries on.
    expect(await db.get('k')).toMatchObject({ version: 1 });
    expect(await db.set('k', 'w')).toMatchObject({ applied: true, version: 2 });
  });

  test('a retryable error is retried with the same request id, so an applied write is not applied twice', async () => {
    const router = new MemoryRouter();
    const db = await client([await serve(router)]);
    router.injectFailures('NO_QUORUM', 2, { applied: true });
    expect(await db.incr('once')).toEqual({ value: 1n, version: 1 });
    expect(router.info().counters.writesDeduplicated).toBe(2);
    router.injectFailures('CONTENTION');
    await expect(db.incr('once')).rejects.toMatchObject({ code: 'CONTENTION' });
  });

  test('connect errors and close', async () => {
    const closedPort = await freePort();
    await expect(connect({ endpoints: [`ws://127.0.0.1:${closedPort}`], connectTimeoutMs: 500 })).rejects.toMatchObject({
      code: 'IO_ERROR',
    });
    await expect(connect({ endpoints: [] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(connect({ endpoints: ['http://127.0.0.1:1'] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });

    const live = await serve(new MemoryRouter());
    const db = await client([`ws://127.0.0.1:${closedPort}`, live]);
    expect(db.endpoint).toBe(`${live}/v1/ws`);
    const router = new ControlledRouter(new MemoryRouter());
    router.gate = new Promise(() => {});
    const stuck = await client([await serve(router)]);
    const pending = stuck.get('k');
    await stuck.close();
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    await expect(stuck.get('k')).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('client failover', () => {
  test('a replica that hangs with its connection open is detected by keep-alive and left', async () => {
    const hung = await silentReplica();
    const live = await serve(new MemoryRouter());
    const db = await connect({ endpoints: [hung, live], pingIntervalMs: 40, timeoutMs: 3000 });
    clients.push(db);
    expect(db.endpoint).toBe(`${hung}/v1/ws`);
    const started = performance.now();
    expect(await db.set('k', 'v')).toMatchObject({ applied: true, version: 1 });
    expect(performance.now() - started).toBeLessThan(1000);
    expect(db.endpoint).toBe(`${live}/v1/ws`);
  });

  test('a replica closed mid-stream: every write acknowledged exactly once, none lost or duplicated', async () => {
    // Two front ends over one store, like two replicas of one cluster.
    const store = new MemoryRouter({ random: new Random(11), delayMsMax: 3 });
    const first = new ControlledRouter(store);
    const second = new ControlledRouter(store);
    const endpointA = await serve(first);
    const endpointB = await serve(second);
    const db = await client([endpointA, endpointB], { timeoutMs: 10_000 });

    const writers = 6;
    const incrementsPerWriter = 60;
    const versions: number[][] = Array.from({ length: writers }, () => []);
    let completed = 0;
    const run = async (writer: number) => {
      for (let i = 0; i < incrementsPerWriter; i++) {
        const { value, version } = await db.incr(`counter-${writer}`);
        expect(value).toBe(BigInt(version));
        versions[writer].push(version);
        completed += 1;
      }
    };
    const running = Promise.all(Array.from({ length: writers }, (_, writer) => run(writer)));

    // Let the stream get going, then make A apply writes but hold their replies, and kill it.
    while (completed < 100) await new Promise((resolve) => setTimeout(resolve, 1));
    first.replyDelayMs = 50;
    while (first.appliedAwaitingReply < 3) await new Promise((resolve) => setTimeout(resolve, 1));
    const appliedButUnanswered = first.appliedAwaitingReply;
    await servers[0].close();
    await running;

    expect(db.endpoint).toBe(`${endpointB}/v1/ws`);
    for (let writer = 0; writer < writers; writer++) {
      // Versions 1..N in order: nothing applied twice (a gap would show), nothing lost.
      expect(versions[writer]).toEqual(Array.from({ length: incrementsPerWriter }, (_, index) => index + 1));
      expect(store.peek(`counter-${writer}`)).toMatchObject({ version: incrementsPerWriter });
      expect(text(store.peek(`counter-${writer}`).value)).toBe(String(incrementsPerWriter));
    }
    // The writes applied on A whose replies were lost came back from B's deduplication.
    expect(store.info().counters.writesDeduplicated).toBeGreaterThanOrEqual(appliedButUnanswered);
  });
});

/** Accepts WebSocket handshakes, then never says another word (a replica hung, its TCP still open). */
async function silentReplica(): Promise<string> {
  const server = net.createServer((socket) => {
    socket.once('data', (request) => {
      const key = /sec-websocket-key: *(\S+)/i.exec(request.toString('latin1'))![1];
      const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    });
  });
  silentServers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `ws://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

const silentServers: net.Server[] = [];

afterEach(async () => {
  for (const server of silentServers.splice(0)) {
    server.close();
    server.unref();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = net.createServer();
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
