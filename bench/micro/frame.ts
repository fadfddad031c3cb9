/**
 * Micro-benchmarks of src/transport:
 * - `benchFrame`: the frame path for one batch of 64 consensus `paxos` messages (64-byte values) —
 *   encode each message, build the frame (header, CRC32C, optional lz4), then decode it
 *   incrementally and decode the messages, as PeerLinks does on both ends (tinybench). Once with
 *   the binary wire codec the shard workers use, once with msgpackr of the plain objects (the
 *   codec before 2026-11-22), for comparison in the same run.
 * - `measurePeerLinksThroughput`: messages per second from one PeerLinks to another over
 *   loopback TCP (2 sockets, default batching, binary codec), sent in bursts of 1000 with a flush
 *   after each.
 * Run: `npx tsc -p . && node dist/bench/micro/frame.js`.
 */

import { Bench } from 'tinybench';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { decodePeerMessages, encodePeerMessage } from '../../src/consensus/wire-codec.js';
import { encodeMessageFrame, FrameDecoder } from '../../src/transport/frame.js';
import { type MessageCodec, msgpackCodec, PeerLinks } from '../../src/transport/peer-links.js';
import { Random } from '../../src/util/random.js';

const MESSAGES_PER_BATCH = 64;

function sampleMessages(random: Random, count = MESSAGES_PER_BATCH): PeerMessage[] {
  return Array.from({ length: count }, (_, index) => ({
    type: 'paxos' as const,
    key: new Uint8Array(random.bytes(16)),
    chosenId: 999 + index,
    entryId: 1000 + index,
    sender: {
      promised: { round: 3, replicaId: 1 },
      accepted: {
        ballot: { round: 3, replicaId: 1 },
        payload: { value: new Uint8Array(64).fill(index), proposerId: 1, requestId: { clientId: 'client-7', timestampMs: 1_763_800_000_000, sequence: index }, sessions: [] },
      },
    },
    viewOfReceiver: { promised: { round: 2, replicaId: 2 }, acceptedBallot: null },
  }));
}

const binaryCodec: MessageCodec<PeerMessage> = { encode: encodePeerMessage, decodeAll: (payload) => decodePeerMessages(payload) };
const msgpackrCodec = msgpackCodec((value): value is PeerMessage => typeof value === 'object' && value !== null);

function roundTrip(codec: MessageCodec<PeerMessage>, messages: readonly PeerMessage[], compressionThresholdBytes: number): number {
  const encoded = messages.map((message) => codec.encode(message));
  let bytes = 0;
  for (const message of encoded) bytes += message.length;
  const { frame } = encodeMessageFrame(encoded, bytes, compressionThresholdBytes);
  const decoder = new FrameDecoder(1 << 24);
  decoder.push(frame);
  return codec.decodeAll(decoder.next()!.payload).length;
}

export async function benchFrame(timeMs = 1000): Promise<Bench> {
  const messages = sampleMessages(new Random(1));
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  for (const [name, codec] of [
    ['binary codec', binaryCodec],
    ['msgpackr objects', msgpackrCodec],
  ] as const) {
    bench
      .add(`frame encode+decode, ${MESSAGES_PER_BATCH} paxos messages, ${name}, uncompressed`, () => {
        if (roundTrip(codec, messages, Number.MAX_SAFE_INTEGER) !== MESSAGES_PER_BATCH) throw new Error('lost messages');
      })
      .add(`frame encode+decode, ${MESSAGES_PER_BATCH} paxos messages, ${name}, lz4`, () => {
        if (roundTrip(codec, messages, 0) !== MESSAGES_PER_BATCH) throw new Error('lost messages');
      });
  }
  await bench.run();
  return bench;
}

const BURST_MESSAGES = 1000;

export async function measurePeerLinksThroughput(totalMessages = 200_000): Promise<{ messagesPerSecond: number; framesSent: number; bytesSent: number }> {
  let received = 0;
  const logger = { info: () => {}, warn: (event: string, fields: Record<string, unknown>) => console.warn(event, fields) };
  const links = [1, 2].map(
    (replicaId) =>
      new PeerLinks<PeerMessage>({
        identity: { clusterId: 'bench', replicaId, shardIndex: 0, shardCount: 1 },
        secret: 'bench secret',
        listenHost: '127.0.0.1',
        listenPort: 0,
        peers: [{ replicaId: 3 - replicaId }],
        codec: binaryCodec,
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
