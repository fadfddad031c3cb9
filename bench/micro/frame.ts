/**
 * Micro-benchmarks of src/transport:
 * - `benchFrame`: the frame path for one batch of 64 small Paxos-like messages — msgpackr-encode
 *   each message, build the frame (header, CRC32C, optional lz4), then decode it incrementally
 *   and unpack the messages, as PeerLinks does on both ends (tinybench).
 * - `measurePeerLinksThroughput`: messages per second from one PeerLinks to another over
 *   loopback TCP (2 sockets, default batching), sent in bursts of 1000 with a flush after each.
 * Run: `npx tsc -p . && node dist/bench/micro/frame.js`.
 */

import { Packr } from 'msgpackr';
import { Bench } from 'tinybench';
import { encodeMessageFrame, FrameDecoder } from '../../src/transport/frame.js';
import { PeerLinks } from '../../src/transport/peer-links.js';
import { Random } from '../../src/util/random.js';

const MESSAGES_PER_BATCH = 64;

function sampleMessages(random: Random, count = MESSAGES_PER_BATCH): object[] {
  return Array.from({ length: count }, (_, index) => ({
    kind: 'state',
    key: Buffer.from(random.bytes(16)),
    entry: 1000 + index,
    chosen: 999 + index,
    sender: { promised: [3, 1], accepted: { ballot: [3, 1], value: Buffer.alloc(64, index) } },
    view: { promised: [2, 2], accepted: null },
  }));
}

function roundTrip(packr: Packr, messages: unknown[], compressionThresholdBytes: number): number {
  const encoded = messages.map((message) => packr.pack(message));
  let bytes = 0;
  for (const message of encoded) bytes += message.length;
  const { frame } = encodeMessageFrame(encoded, bytes, compressionThresholdBytes);
  const decoder = new FrameDecoder(1 << 24);
  decoder.push(frame);
  const decoded = packr.unpack(decoder.next()!.payload) as unknown[];
  return decoded.length;
}

export async function benchFrame(timeMs = 1000): Promise<Bench> {
  const packr = new Packr({ useRecords: false, useBigIntExtension: true, copyBuffers: true });
  const messages = sampleMessages(new Random(1));
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench
    .add(`frame encode+decode, ${MESSAGES_PER_BATCH} messages, uncompressed`, () => {
      if (roundTrip(packr, messages, Number.MAX_SAFE_INTEGER) !== MESSAGES_PER_BATCH) throw new Error('lost messages');
    })
    .add(`frame encode+decode, ${MESSAGES_PER_BATCH} messages, lz4`, () => {
      if (roundTrip(packr, messages, 0) !== MESSAGES_PER_BATCH) throw new Error('lost messages');
    });
  await bench.run();
  return bench;
}

const BURST_MESSAGES = 1000;

export async function measurePeerLinksThroughput(totalMessages = 200_000): Promise<{ messagesPerSecond: number; framesSent: number; bytesSent: number }> {
  let received = 0;
  const logger = { info: () => {}, warn: (event: string, fields: Record<string, unknown>) => console.warn(event, fields) };
  const links = [1, 2].map(
    (replicaId) =>
      new PeerLinks<object>({
        identity: { clusterId: 'bench', replicaId, shardIndex: 0, shardCount: 1 },
        secret: 'bench secret',
        listenHost: '127.0.0.1',
        listenPort: 0,
        peers: [{ replicaId: 3 - replicaId }],
        isMessage: (value): value is object => typeof value === 'object' && value !== null,
        onMessages: (_peer, messages) => {
          received += messages.length;
        },
        logger,
      }),
  );
  const ports = await Promise.all(links.map((link) => link.start()));
  links[0].setPeerAddress(2, { host: '127.0.0.1', port: ports[1] });
  links[1].setPeerAddress(1, { host: '127.0.0.1', port: ports[0] });
  while (links[0].peerStatus(2).connectedSockets < 2) await new Promise((resolve) => setTimeout(resolve, 5));
  // Distinct messages, so that lz4 does not flatter the figure with identical copies.
  const messages = sampleMessages(new Random(2), BURST_MESSAGES);
  const startMs = performance.now();
  for (let sent = 0; sent < totalMessages; sent += BURST_MESSAGES) {
    for (const message of messages) links[0].send(2, message);
    links[0].flush();
    await new Promise((resolve) => setImmediate(resolve));
  }
  while (received < totalMessages) await new Promise((resolve) => setTimeout(resolve, 1));
  const elapsedMs = performance.now() - startMs;
  const { framesSent, bytesSent } = links[0].counters();
  await Promise.all(links.map((link) => link.close()));
  return { messagesPerSecond: Math.round((totalMessages / elapsedMs) * 1000), framesSent, bytesSent };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchFrame();
  console.table(bench.table());
  console.log('PeerLinks loopback throughput', await measurePeerLinksThroughput());
}
