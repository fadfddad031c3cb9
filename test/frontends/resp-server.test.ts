import { execFile } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KeyOperation, KeyResult, RequestId } from '../../src/api/operations.js';
import { type RespServer, type RespServerOptions, startRespServer } from '../../src/frontends/resp/server.js';
import type { Router, RouterInfo } from '../../src/router/types.js';
import { Random } from '../../src/util/random.js';
import { MemoryRouter } from '../helpers/memory-router.js';
import { DecodedError, encodeCommand, RawClient, text } from './resp-test-client.js';

// The server with real clients (ioredis, Debian's redis-cli and redis-benchmark), raw sockets for
// pipelining and garbage, and a gated router for backpressure and graceful close.

const run = promisify(execFile);

const gatedRouters: GatedRouter[] = [];

/** Holds every call until open() (or the end of the file), counting calls and the peak in flight. */
class GatedRouter implements Router {
  readonly inner = new MemoryRouter();
  calls = 0;
  inFlight = 0;
  inFlightPeak = 0;
  private release: () => void = () => {};
  private gate = new Promise<void>((resolve) => (this.release = resolve));

  constructor() {
    gatedRouters.push(this);
  }

  async execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    this.calls++;
    this.inFlight++;
    this.inFlightPeak = Math.max(this.inFlightPeak, this.inFlight);
    try {
      await this.gate;
      return await this.inner.execute(key, operation, requestId);
    } finally {
      this.inFlight--;
    }
  }

  info(): RouterInfo {
    return this.inner.info();
  }

  open(): void {
    this.release();
  }
}

const servers: RespServer[] = [];
const start = async (options: Partial<RespServerOptions> & { router: Router }) => {
  const server = await startRespServer({ port: 0, ...options });
  servers.push(server);
  return server;
};
afterAll(async () => {
  // A failed assertion must not leave a call parked forever (close() would wait out its timeout).
  for (const router of gatedRouters) router.open();
  await Promise.all(servers.map((server) => server.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RESP server with real clients', () => {
  let server: RespServer;
  let router: MemoryRouter;
  beforeAll(async () => {
    router = new MemoryRouter({ random: new Random(11), delayMsMax: 1 });
    server = await start({ router });
  });

  it('serves ioredis: commands, errors, a 500-command pipeline, the CAS extension', async () => {
    const redis = new Redis({ port: server.port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    await redis.connect();
    try {
      expect(await redis.set('io:a', 'hello')).toBe('OK');
      expect(await redis.get('io:a')).toBe('hello');
      expect(await redis.incrby('io:n', 5)).toBe(5);
      expect(await redis.mget('io:a', 'io:none', 'io:n')).toEqual(['hello', null, '5']);
      await expect(redis.incr('io:a')).rejects.toThrow('ERR value is not an integer or out of range');
      const pipeline = redis.pipeline();
      for (let i = 0; i < 250; i++) pipeline.set(`io:p${i % 10}`, String(i)).get(`io:p${i % 10}`);
      const results = (await pipeline.exec())!;
      expect(results.every(([error]) => error === null)).toBe(true);
      expect(results.filter((_, index) => index % 2 === 1).map(([, value]) => Number(value))).toEqual(
        Array.from({ length: 250 }, (_, i) => i),
      );
      expect(await redis.call('PAXOS.CAS', 'io:cas', '0', 'v1')).toBe(1);
      expect(await redis.call('PAXOS.GET', 'io:cas')).toEqual(['v1', 1]);
      expect(await redis.call('CLIENT', 'READMODE', 'local')).toBe('OK');
      expect(await redis.get('io:a')).toBe('hello');
    } finally {
      redis.disconnect();
    }
  });

  it('serves redis-cli (argument mode, --no-raw, and stdin mode, which loads COMMAND DOCS first)', async () => {
    const cli = (...args: string[]) => run('/usr/bin/redis-cli', ['-p', String(server.port), ...args]).then((out) => out.stdout.trim());
    expect(await cli('set', 'cli:a', 'b')).toBe('OK');
    expect(await cli('get', 'cli:a')).toBe('b');
    expect(await cli('--no-raw', 'get', 'cli:a')).toBe('"b"');
    expect(await cli('incr', 'cli:n')).toBe('1');
    expect(await cli('--no-raw', 'mget', 'cli:a', 'cli:n', 'cli:x')).toBe('1) "b"\n2) "1"\n3) (nil)');
    expect(await cli('paxos.get', 'cli:a')).toBe('b\n1');
    expect(await cli('--no-raw', 'get')).toBe("(error) ERR wrong number of arguments for 'get' command");
    const piped = new Promise<string>((resolve, reject) => {
      const child = execFile('/usr/bin/redis-cli', ['-p', String(server.port)], (error, stdout) => (error ? reject(error) : resolve(stdout)));
      child.stdin!.end('set cli:s "two words"\nget cli:s\nping\n');
    });
    expect((await piped).trim()).toBe('OK\ntwo words\nPONG');
  });

  it('completes a short redis-benchmark run without errors, with and without pipelining', async () => {
    for (const pipeline of ['1', '16']) {
      const { stdout, stderr } = await run('/usr/bin/redis-benchmark', [
        '-p', String(server.port), '-t', 'set,get', '-n', '2000', '-c', '10', '-r', '1000', '-P', pipeline, '-q',
      ]);
      const output = `${stdout}\n${stderr}`;
      expect(output).toMatch(/SET: [\d.]+ requests per second/);
      expect(output).toMatch(/GET: [\d.]+ requests per second/);
      expect(output).not.toMatch(/error|ERR/i);
    }
  });

  it('answers 1000 pipelined commands sent in one write, in order, coalesced into few writes', async () => {
    const coalescing = await start({ router: new MemoryRouter() });
    const client = await RawClient.connect(coalescing.port);
    let chunks = 0;
    client.socket.on('data', () => chunks++);
    const commands: Buffer[] = [];
    for (let i = 0; i < 500; i++) commands.push(encodeCommand('SET', `raw:${i}`, `v${i}`), encodeCommand('GET', `raw:${i}`));
    client.write(Buffer.concat(commands));
    const replies = (await client.read(1000)).map(text);
    expect(replies).toEqual(Array.from({ length: 1000 }, (_, i) => (i % 2 === 0 ? 'OK' : `v${(i - 1) / 2}`)));
    // One reply write per input chunk: the kernel may still split a write, but not into ~1000 pieces.
    expect(chunks).toBeLessThanOrEqual(8);
    client.close();
  });
});

describe('RESP server robustness', () => {
  it('closes a connection that sends garbage, while other connections keep working', async () => {
    const server = await start({ router: new MemoryRouter() });
    const healthy = await RawClient.connect(server.port);
    expect(text(await healthy.command('SET', 'g', '1'))).toBe('OK');

    const framing = await RawClient.connect(server.port);
    framing.write('*2\r\n$3\r\nGET\r\n!!!garbage\r\n');
    expect(text((await framing.read(1))[0])).toBe("(error) ERR Protocol error: expected '$', got '!'");
    await framing.waitClosed();

    const random = new Random(99);
    for (let round = 0; round < 5; round++) {
      const noise = await RawClient.connect(server.port);
      // Binary noise with a leading '*' (multibulk framing) so it cannot pass as inline commands.
      noise.write(Buffer.concat([Buffer.from('*'), Buffer.from(random.bytes(20_000))]));
      await noise.waitClosed();
    }
    expect(text(await healthy.command('GET', 'g'))).toBe('1');
    healthy.close();
  });

  it('refuses oversized frames with a protocol error, but a value just over the store limit only gets an error reply', async () => {
    const server = await start({ router: new MemoryRouter({ valueBytesMax: 1024 }) });
    const huge = await RawClient.connect(server.port);
    huge.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$999999999999\r\n');
    expect(text((await huge.read(1))[0])).toBe('(error) ERR Protocol error: invalid bulk length');
    await huge.waitClosed();
    const many = await RawClient.connect(server.port);
    many.write(`*${1024 * 1024 + 1}\r\n`);
    expect(text((await many.read(1))[0])).toBe('(error) ERR Protocol error: invalid multibulk length');
    await many.waitClosed();
    const inline = await RawClient.connect(server.port);
    inline.write(Buffer.alloc(70 * 1024, 0x61));
    expect(text((await inline.read(1))[0])).toBe('(error) ERR Protocol error: too big inline request');
    await inline.waitClosed();

    const client = await RawClient.connect(server.port);
    expect(text(await client.command('SET', 'k', Buffer.alloc(1025)))).toBe('(error) ERR value is 1025 bytes; the limit is 1024');
    expect(text(await client.command('PING'))).toBe('PONG');
    client.close();
  });

  it('replies before a protocol error are delivered, then the error, then the close', async () => {
    const server = await start({ router: new MemoryRouter({ random: new Random(5), delayMsMax: 3 }) });
    const client = await RawClient.connect(server.port);
    client.write(Buffer.concat([encodeCommand('SET', 'e', '1'), encodeCommand('GET', 'e'), Buffer.from('*1\r\n$x\r\n'), encodeCommand('PING')]));
    const replies = (await client.read(3)).map(text);
    expect(replies).toEqual(['OK', '1', '(error) ERR Protocol error: invalid bulk length']);
    await client.waitClosed();
  });

  it('refuses HTTP requests sent to the RESP port', async () => {
    const server = await start({ router: new MemoryRouter() });
    const client = await RawClient.connect(server.port);
    client.write('POST /v1/kv HTTP/1.1\r\nHost: localhost\r\n\r\n');
    expect((await client.read(1))[0]).toBeInstanceOf(DecodedError);
    await client.waitClosed();
  });

  it('answers commands sent before the client half-closes its side', async () => {
    const server = await start({ router: new MemoryRouter({ random: new Random(6), delayMsMax: 5 }) });
    const client = await RawClient.connect(server.port);
    client.socket.end(Buffer.concat([encodeCommand('SET', 'h', 'x'), encodeCommand('GET', 'h')]));
    expect((await client.read(2)).map(text)).toEqual(['OK', 'x']);
    await client.waitClosed();
  });

  it('stops pulling commands at inFlightCommandsMax and resumes as they complete, in order', async () => {
    const router = new GatedRouter();
    const server = await start({ router, limits: { inFlightCommandsMax: 4 } });
    const client = await RawClient.connect(server.port);
    const commands: Buffer[] = [];
    for (let i = 0; i < 100; i++) commands.push(encodeCommand('INCR', `bp:${i % 10}`));
    client.write(Buffer.concat(commands));
    await sleep(100);
    expect(router.inFlight).toBe(4);
    router.open();
    const replies = (await client.read(100)).map(text);
    expect(replies).toEqual(Array.from({ length: 100 }, (_, i) => Math.floor(i / 10) + 1));
    expect(router.inFlightPeak).toBe(4);
    client.close();
  });

  it('stops reading while a slow reader leaves replies unwritten, then delivers them all', async () => {
    const router = new MemoryRouter();
    // A small in-flight limit makes the server dispatch in batches, so the unwritten-bytes check runs
    // between batches (within one batch, replies are bounded by inFlightCommandsMax × reply size).
    const server = await start({ router, limits: { writeBufferBytesMax: 256 * 1024, inFlightCommandsMax: 8 } });
    const client = await RawClient.connect(server.port);
    expect(text(await client.command('SET', 'big', Buffer.alloc(256 * 1024, 0x62)))).toBe('OK');
    client.socket.pause();
    const gets = 200;
    client.write(Buffer.concat(Array.from({ length: gets }, () => encodeCommand('GET', 'big'))));
    await sleep(300);
    const readsWhilePaused = router.info().counters.reads;
    expect(readsWhilePaused).toBeLessThan(gets / 2);
    client.socket.resume();
    const replies = await client.read(gets, 20_000);
    expect(replies.every((value) => Buffer.isBuffer(value) && value.length === 256 * 1024)).toBe(true);
    expect(router.info().counters.reads).toBe(gets);
    client.close();
  });

  it('round-trips a 1 MiB binary value (split across reads on the way in, passed by reference on the way out)', async () => {
    const server = await start({ router: new MemoryRouter() });
    const client = await RawClient.connect(server.port);
    const value = Buffer.from(new Random(3).bytes(1024 * 1024));
    expect(text(await client.command('SET', 'large', value))).toBe('OK');
    const fetched = await client.command('GET', 'large');
    expect(Buffer.isBuffer(fetched) && fetched.equals(value)).toBe(true);
    client.close();
  });

  it('keeps a connection whose command is still in flight past idleTimeoutMs, and closes it once idle', async () => {
    const router = new GatedRouter();
    const server = await start({ router, limits: { idleTimeoutMs: 150 } });
    const client = await RawClient.connect(server.port);
    client.write(encodeCommand('SET', 'slow', 'v'));
    await sleep(400);
    expect(client.closed).toBe(false);
    router.open();
    expect(text((await client.read(1))[0])).toBe('OK');
    await client.waitClosed(2000);
  });

  it('refuses connections beyond connectionsMax and closes idle ones after idleTimeoutMs', async () => {
    const server = await start({ router: new MemoryRouter(), limits: { connectionsMax: 2, idleTimeoutMs: 300 } });
    const first = await RawClient.connect(server.port);
    const second = await RawClient.connect(server.port);
    const third = await RawClient.connect(server.port);
    expect(text((await third.read(1))[0])).toBe('(error) ERR max number of clients reached');
    await third.waitClosed();
    expect(text(await first.command('PING'))).toBe('PONG');
    await Promise.all([first.waitClosed(2000), second.waitClosed(2000)]);
  });

  it('closes gracefully: stops accepting, finishes in-flight commands, then closes connections', async () => {
    const router = new GatedRouter();
    const server = await startRespServer({ router, port: 0 });
    const client = await RawClient.connect(server.port);
    client.write(encodeCommand('SET', 'gc', 'v'));
    await sleep(50);
    expect(router.inFlight).toBe(1);
    const closed = server.close();
    await sleep(50);
    await expect(
      new Promise((resolve, reject) => net.connect(server.port, '127.0.0.1').on('connect', resolve).on('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
    router.open();
    expect(text((await client.read(1))[0])).toBe('OK');
    await client.waitClosed();
    await closed;
    expect(server.connectionCount).toBe(0);
  });
});
