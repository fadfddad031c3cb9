import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { afterEach, describe, expect, it } from 'vitest';
import { encodeFrame, encodeMessageFrame, FLAG_HANDSHAKE, FrameDecoder } from '../../src/transport/frame.js';
import { computeProof, decodeHandshake, encodeHandshake, type LinkIdentity, newNonce } from '../../src/transport/handshake.js';
import { PeerLinks, type PeerLinksOptions, type TransportLogger } from '../../src/transport/peer-links.js';
import { Random } from '../../src/util/random.js';

/** Polls until the expectation holds; generous, because the test machine may be heavily loaded. */
const eventually = <T>(read: () => T) => expect.poll(read, { timeout: 10_000, interval: 5 });

interface TestMessage {
  readonly from: number;
  readonly sequence: number;
  readonly payload?: Uint8Array;
}

function isTestMessage(value: unknown): value is TestMessage {
  const message = value as TestMessage | null;
  return typeof message === 'object' && message !== null && typeof message.from === 'number' && typeof message.sequence === 'number';
}

class CapturingLogger implements TransportLogger {
  readonly events: { level: string; event: string; fields: Record<string, unknown> }[] = [];
  info(event: string, fields: Record<string, unknown>): void {
    this.events.push({ level: 'info', event, fields });
  }
  warn(event: string, fields: Record<string, unknown>): void {
    this.events.push({ level: 'warn', event, fields });
  }
  has(event: string, reason: RegExp): boolean {
    return this.events.some((entry) => entry.event === event && reason.test(String(entry.fields.reason)));
  }
}

const SECRET = 'correct horse battery staple';

/** A payload that makes `{from, sequence, payload}` encode to exactly `totalBytes` (sequence 1000..65535). */
function payloadForEncodedSize(totalBytes: number): Uint8Array {
  const overhead = new Packr({ useRecords: false }).pack({ from: 1, sequence: 1000, payload: new Uint8Array(0) }).length;
  return new Uint8Array(totalBytes - overhead);
}
const CLUSTER = 'test-cluster';
const open: PeerLinks<TestMessage>[] = [];

interface Node {
  readonly links: PeerLinks<TestMessage>;
  readonly port: number;
  readonly received: TestMessage[];
  readonly frames: { peerId: number; messages: TestMessage[] }[];
  readonly logger: CapturingLogger;
}

type Overrides = Partial<PeerLinksOptions<TestMessage>>;

async function startNode(replicaId: number, peerIds: number[], overrides: Overrides = {}): Promise<Node> {
  const received: TestMessage[] = [];
  const frames: { peerId: number; messages: TestMessage[] }[] = [];
  const logger = new CapturingLogger();
  const links = new PeerLinks<TestMessage>({
    identity: { clusterId: CLUSTER, replicaId, shardIndex: 0, shardCount: 1 },
    secret: SECRET,
    listenHost: '127.0.0.1',
    listenPort: 0,
    peers: peerIds.map((id) => ({ replicaId: id })),
    isMessage: isTestMessage,
    onMessages: (peerId, messages) => {
      frames.push({ peerId, messages });
      received.push(...messages);
    },
    logger,
    reconnectDelayMsMin: 10,
    reconnectDelayMsMax: 100,
    random: new Random(replicaId),
    ...overrides,
  });
  open.push(links);
  const port = await links.start();
  return { links, port, received, frames, logger };
}

/** Starts a fully connected cluster of `count` nodes with ids 1..count. */
async function startCluster(count: number, overrides: Overrides = {}): Promise<Node[]> {
  const ids = Array.from({ length: count }, (_, index) => index + 1);
  const nodes = await Promise.all(ids.map((id) => startNode(id, ids.filter((other) => other !== id), overrides)));
  for (const node of nodes) for (const [index, other] of nodes.entries()) if (other !== node) node.links.setPeerAddress(index + 1, { host: '127.0.0.1', port: other.port });
  return nodes;
}

async function allConnected(nodes: Node[], sockets: number): Promise<void> {
  for (const [index, node] of nodes.entries()) {
    for (const peerId of nodes.keys()) {
      if (peerId !== index) await eventually(() => node.links.peerStatus(peerId + 1).connectedSockets).toBe(sockets);
    }
  }
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((links) => links.close()));
});

describe('PeerLinks on loopback', () => {
  it('delivers every message between three replicas, in order over a single socket', async () => {
    const nodes = await startCluster(3, { socketsPerPeer: 1 });
    await allConnected(nodes, 1);
    for (let sequence = 0; sequence < 2000; sequence++) {
      for (const [index, node] of nodes.entries()) {
        for (const peer of [1, 2, 3]) if (peer !== index + 1) node.links.send(peer, { from: index + 1, sequence });
      }
      if (sequence % 100 === 99) for (const node of nodes) node.links.flush();
    }
    for (const node of nodes) node.links.flush();
    for (const node of nodes) await eventually(() => node.received.length).toBe(4000);
    for (const [index, node] of nodes.entries()) {
      for (const peer of [1, 2, 3]) {
        if (peer === index + 1) continue;
        const fromPeer = node.received.filter((message) => message.from === peer).map((message) => message.sequence);
        expect(fromPeer).toEqual(Array.from({ length: 2000 }, (_, sequence) => sequence));
      }
      const counters = node.links.counters();
      expect(counters.messagesSent).toBe(4000);
      expect(counters.messagesReceived).toBe(4000);
      // 20 flushes per peer of 100 messages each, at least: batching happened.
      expect(counters.framesSent).toBeLessThanOrEqual(80);
      expect(counters.messagesDropped).toBe(0);
    }
  });

  it('spreads successive frames round-robin over socketsPerPeer sockets', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 3 });
    await allConnected([a, b], 3);
    for (let sequence = 0; sequence < 30; sequence++) {
      a.links.send(2, { from: 1, sequence });
      a.links.flush();
    }
    await eventually(() => b.received.length).toBe(30);
    expect(a.links.peerStatus(2).framesSentPerSocket).toEqual([10, 10, 10]);
    expect(b.links.counters().framesReceived).toBe(30);
    expect(new Set(b.received.map((message) => message.sequence)).size).toBe(30);
  });

  it('cuts frames at batchMaxBytes and holds a partial batch until flush', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 1, batchMaxBytes: 1000, batchMaxDelayUs: 60_000_000 });
    await allConnected([a, b], 1);
    // Each message encodes to 100 bytes exactly: 10 fit in a 1000-byte batch.
    const payload = payloadForEncodedSize(100);
    for (let sequence = 0; sequence < 95; sequence++) a.links.send(2, { from: 1, sequence: 1000 + sequence, payload });
    await eventually(() => b.received.length).toBe(90);
    expect(b.frames.map((frame) => frame.messages.length)).toEqual(new Array(9).fill(10));
    expect(a.links.peerStatus(2)).toMatchObject({ queuedMessages: 5, queuedBytes: 500 });
    a.links.flush();
    await eventually(() => b.received.length).toBe(95);
    expect(b.frames.at(-1)!.messages.length).toBe(5);
    // Buckets: nine frames of 10 messages (bucket 3: 8..15) and one of 5 (bucket 2: 4..7).
    expect(a.links.counters().framesByMessageCount.slice(0, 5)).toEqual([0, 0, 1, 9, 0]);
  });

  it('sends a partial batch once batchMaxDelayUs has elapsed', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 1, batchMaxDelayUs: 150_000 });
    await allConnected([a, b], 1);
    const sentAt = performance.now();
    a.links.send(2, { from: 1, sequence: 1 });
    a.links.send(2, { from: 1, sequence: 2 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.received.length).toBe(0);
    await eventually(() => b.received.length).toBe(2);
    expect(performance.now() - sentAt).toBeGreaterThanOrEqual(140);
    expect(b.frames.length).toBe(1);
  });

  it('compresses large batches with lz4 and delivers them intact', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 2, compressionThresholdBytes: 512 });
    await allConnected([a, b], 2);
    const payload = new Uint8Array(2000).fill(42);
    for (let sequence = 0; sequence < 50; sequence++) a.links.send(2, { from: 1, sequence, payload });
    a.links.flush();
    await eventually(() => b.received.length).toBe(50);
    expect(b.received.every((message) => message.payload instanceof Uint8Array && message.payload.length === 2000 && message.payload[1999] === 42)).toBe(true);
    const counters = a.links.counters();
    expect(counters.framesCompressed).toBe(counters.framesSent);
    expect(counters.bytesSent).toBeLessThan(50 * 2000 / 10);
  });

  it('refuses a peer with the wrong secret or a mis-wired shard, and logs why', async () => {
    const a = await startNode(1, [2, 3]);
    const impostor = await startNode(2, [1], { secret: 'wrong secret', reconnectDelayMsMin: 1000, reconnectDelayMsMax: 1000 });
    const miswired = await startNode(3, [1], { identity: { clusterId: CLUSTER, replicaId: 3, shardIndex: 1, shardCount: 1 } });
    impostor.links.setPeerAddress(1, { host: '127.0.0.1', port: a.port });
    miswired.links.setPeerAddress(1, { host: '127.0.0.1', port: a.port });
    impostor.links.send(1, { from: 2, sequence: 1 });
    impostor.links.flush();
    await eventually(() => a.logger.has('peer connection refused', /wrong cluster secret/)).toBe(true);
    await eventually(() => a.logger.has('peer connection refused', /shard index 1 is not 0/)).toBe(true);
    await eventually(() => impostor.logger.has('peer link dropped', /refused by the peer: authentication failed/)).toBe(true);
    expect(a.links.counters().authFailures).toBeGreaterThanOrEqual(2);
    expect(impostor.links.peerStatus(1)).toMatchObject({ connectedSockets: 0, queuedMessages: 1 });
    expect(a.received).toEqual([]);
  });

  it('reports a busy listen port as a typed error', async () => {
    const a = await startNode(1, [2]);
    await expect(startNode(3, [2], { listenPort: a.port })).rejects.toMatchObject({ code: 'IO_ERROR', message: expect.stringMatching(/EADDRINUSE/) });
  });

  it('hangs up on a connection that does not authenticate within authTimeoutMs', async () => {
    const a = await startNode(1, [2], { authTimeoutMs: 150 });
    const silent = net.connect({ host: '127.0.0.1', port: a.port });
    silent.on('error', () => {});
    silent.resume();
    const openedAt = performance.now();
    await new Promise((resolve) => silent.once('close', resolve));
    expect(performance.now() - openedAt).toBeGreaterThanOrEqual(140);
    expect(a.logger.has('peer connection refused', /no authentication within 150 ms/)).toBe(true);
  });

  it('drops an acceptor that cannot prove the secret (the connector verifies too)', async () => {
    // A fake acceptor that answers the handshake correctly except for its own proof.
    const fake = net.createServer((socket) => {
      socket.on('error', () => {});
      const decoder = new FrameDecoder(1 << 20);
      socket.on('data', (chunk: Buffer) => {
        decoder.push(chunk);
        for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
          const message = decodeHandshake(frame.payload);
          const reply =
            message.kind === 'hello'
              ? ({ kind: 'challenge', identity: { ...message.identity, replicaId: 2 }, nonce: newNonce() } as const)
              : ({ kind: 'accepted', proof: new Uint8Array(32) } as const);
          socket.write(encodeFrame(encodeHandshake(reply), FLAG_HANDSHAKE));
        }
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve));
    try {
      const a = await startNode(1, [2], { socketsPerPeer: 1 });
      a.links.setPeerAddress(2, { host: '127.0.0.1', port: (fake.address() as net.AddressInfo).port });
      a.links.send(2, { from: 1, sequence: 1 });
      await eventually(() => a.logger.has('peer link dropped', /failed to prove the cluster secret/)).toBe(true);
      expect(a.links.peerStatus(2)).toMatchObject({ connectedSockets: 0, queuedMessages: 1 });
      expect(a.links.counters().linksEstablished).toBe(0);
    } finally {
      fake.close();
    }
  });

  it('drops garbage and malformed frames per connection while the legitimate link keeps working', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 1 });
    await allConnected([a, b], 1);
    const garbage = net.connect({ host: '127.0.0.1', port: a.port });
    garbage.on('error', () => {});
    garbage.write('*1\r\n$4\r\nPING\r\n'.repeat(10));
    await new Promise((resolve) => garbage.once('close', resolve));
    expect(a.logger.has('peer connection dropped', /bad frame magic/)).toBe(true);

    // Authenticated connections that then send a malformed frame: each one is dropped.
    const identity = { clusterId: CLUSTER, replicaId: 2, shardIndex: 0, shardCount: 1 };
    const validMessage = Buffer.from([0x81, 0xa1, 0x78, 0x01]); // {x: 1}: fails isTestMessage
    const cases: [string, () => Buffer, RegExp][] = [
      ['checksum', () => flipLastBit(encodeMessageFrame([validMessage], 4, 1 << 30).frame), /checksum mismatch/],
      ['validation', () => encodeMessageFrame([validMessage], 4, 1 << 30).frame, /failed validation/],
      ['msgpack', () => encodeFrame(Buffer.from([0x92, 0x01]), 0), /not msgpack/],
      ['oversize', () => oversizeHeader(), /exceeds frameBytesMax/],
    ];
    for (const [, build, reason] of cases) {
      const socket = await authenticatedSocket(a.port, identity, 1);
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.write(build());
      await closed;
      expect(a.logger.has('peer connection dropped', reason)).toBe(true);
    }
    expect(a.links.counters().malformedFrames).toBe(1 + cases.length);

    b.links.send(1, { from: 2, sequence: 7 });
    b.links.flush();
    await eventually(() => a.received).toEqual([{ from: 2, sequence: 7 }]);
  });

  it('reconnects after the remote restarts and delivers what was queued meanwhile', async () => {
    const [a, b] = await startCluster(2, { socketsPerPeer: 2 });
    await allConnected([a, b], 2);
    await b.links.close();
    await eventually(() => a.links.peerStatus(2).connectedSockets).toBe(0);
    for (let sequence = 0; sequence < 10; sequence++) a.links.send(2, { from: 1, sequence });
    a.links.flush();
    expect(a.links.peerStatus(2).queuedMessages).toBe(10);
    const restarted = await startNode(2, [1], { listenPort: b.port });
    await eventually(() => restarted.received.length).toBe(10);
    expect(restarted.received.map((message) => message.sequence)).toEqual(Array.from({ length: 10 }, (_, index) => index));
    expect(a.links.counters().reconnectAttempts).toBeGreaterThan(0);
    expect(a.logger.events.some((entry) => entry.event === 'peer link lost')).toBe(true);
  });

  it('bounds the queue of a dead peer, dropping the oldest messages', async () => {
    const deadPort = await unusedPort();
    const a = await startNode(1, [2], { sendQueueBytesMax: 10_000 });
    a.links.setPeerAddress(2, { host: '127.0.0.1', port: deadPort });
    const payload = payloadForEncodedSize(100);
    for (let sequence = 0; sequence < 1000; sequence++) a.links.send(2, { from: 1, sequence: 1000 + sequence, payload });
    a.links.flush();
    expect(a.links.peerStatus(2)).toMatchObject({ queuedMessages: 100, queuedBytes: 10_000 });
    expect(a.links.counters()).toMatchObject({ messagesDropped: 900, bytesDropped: 90_000 });
    const b = await startNode(2, [1], { listenPort: deadPort });
    await eventually(() => b.received.length).toBe(100);
    expect(b.received[0].sequence).toBe(1900);
    expect(b.received.at(-1)!.sequence).toBe(1999);
  });
  it('closes cleanly: a process exits on its own after close (no timer or socket left)', async () => {
    const module = fileURLToPath(new URL('../../dist/src/transport/peer-links.js', import.meta.url));
    const script = `
      import { PeerLinks } from ${JSON.stringify(module)};
      const logger = { info() {}, warn() {} };
      let received = 0;
      const make = (replicaId) => new PeerLinks({
        identity: { clusterId: 'c', replicaId, shardIndex: 0, shardCount: 1 }, secret: 's',
        listenHost: '127.0.0.1', listenPort: 0, peers: [{ replicaId: 3 - replicaId }, { replicaId: 9 }],
        isMessage: (value) => typeof value === 'number', onMessages: (_, messages) => { received += messages.length; },
        logger, socketsPerPeer: 3, batchMaxDelayUs: 5000,
      });
      const [a, b] = [make(1), make(2)];
      const [portA, portB] = [await a.start(), await b.start()];
      a.setPeerAddress(2, { host: '127.0.0.1', port: portB });
      b.setPeerAddress(1, { host: '127.0.0.1', port: portA });
      a.setPeerAddress(9, { host: '127.0.0.1', port: 1 }); // never answers: reconnect timers run
      while (a.peerStatus(2).connectedSockets < 3) await new Promise((resolve) => setTimeout(resolve, 5));
      for (let sequence = 0; sequence < 100; sequence++) a.send(2, sequence);
      while (received < 100) await new Promise((resolve) => setTimeout(resolve, 5));
      a.send(2, 100); // still queued behind the batch timer when close starts
      await a.close();
      await b.close();
      console.log(received);
    `;
    const output = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (error, stdout) => (error ? reject(error) : resolve(stdout)));
    });
    expect(Number(output.trim())).toBeGreaterThanOrEqual(100);
  });
});

function flipLastBit(frame: Buffer): Buffer {
  frame[frame.length - 1] ^= 0x01;
  return frame;
}

/** A well-formed header announcing a 2 GiB payload. */
function oversizeHeader(): Buffer {
  const frame = encodeFrame(Buffer.alloc(0), 0);
  frame.writeUInt32BE(0x7fffffff, 4);
  return frame;
}

async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs the connector side of the handshake by hand and returns the authenticated socket. */
async function authenticatedSocket(port: number, identity: LinkIdentity, acceptorReplicaId: number): Promise<net.Socket> {
  const socket = net.connect({ host: '127.0.0.1', port });
  socket.on('error', () => {});
  const decoder = new FrameDecoder(1 << 20);
  const nextHandshake = () =>
    new Promise<ReturnType<typeof decodeHandshake>>((resolve) => {
      const onData = (chunk: Buffer) => {
        decoder.push(chunk);
        const frame = decoder.next();
        if (frame === undefined) return;
        socket.off('data', onData);
        resolve(decodeHandshake(frame.payload));
      };
      socket.on('data', onData);
    });
  const connectorNonce = newNonce();
  socket.write(encodeFrame(encodeHandshake({ kind: 'hello', protocol: 1, identity, nonce: connectorNonce }), FLAG_HANDSHAKE));
  const challenge = await nextHandshake();
  if (challenge.kind !== 'challenge') throw new Error(`expected a challenge, got ${challenge.kind}`);
  const proof = computeProof(Buffer.from(SECRET), 'connector', { connector: identity, acceptorReplicaId, connectorNonce, acceptorNonce: challenge.nonce });
  socket.write(encodeFrame(encodeHandshake({ kind: 'proof', proof }), FLAG_HANDSHAKE));
  const accepted = await nextHandshake();
  if (accepted.kind !== 'accepted') throw new Error(`expected accepted, got ${accepted.kind}`);
  return socket;
}
