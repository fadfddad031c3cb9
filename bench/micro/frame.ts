/**
 * Micro-benchmark: the peer frame path of src/transport for one batch of 64 small Paxos-like
 * messages — msgpackr-encode each message, build the frame (header, CRC32C, optional lz4),
 * then decode it incrementally and unpack the messages, as PeerLinks does on both ends.
 * Run: `npx tsc -p . && node dist/bench/micro/frame.js`.
 */

import { Packr } from 'msgpackr';
import { Bench } from 'tinybench';
import { encodeMessageFrame, FrameDecoder } from '../../src/transport/frame.js';
import { Random } from '../../src/util/random.js';

const MESSAGES_PER_BATCH = 64;

function sampleMessages(random: Random): unknown[] {
  return Array.from({ length: MESSAGES_PER_BATCH }, (_, index) => ({
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

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchFrame();
  console.table(bench.table());
}
