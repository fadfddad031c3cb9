/**
 * Micro-benchmark: the RESP front end's pure CPU work per pipelined batch, without sockets or the
 * router. Parse a buffer of 1000 pipelined `SET key:<i> <64-byte value>` commands (what
 * `redis-benchmark -P 1000` would send), the same split into 1460-byte TCP-segment-sized chunks,
 * and encode 1000 replies (+OK, and 64-byte bulks for GET). Run:
 * `npx tsc -p . && node dist/bench/micro/resp.js`.
 */

import { Bench } from 'tinybench';
import { encodeReplies, type Reply, reply } from '../../src/frontends/resp/encoder.js';
import { RespParser } from '../../src/frontends/resp/parser.js';

const COMMANDS_PER_BATCH = 1000;
const SEGMENT_BYTES = 1460;

export function pipelinedSets(count: number, valueBytes: number): Buffer {
  const value = 'v'.repeat(valueBytes);
  const parts: string[] = [];
  for (let i = 0; i < count; i++) {
    const key = `key:${i}`;
    parts.push(`*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`);
  }
  return Buffer.from(parts.join(''));
}

function parseChunks(chunks: readonly Buffer[]): number {
  const parser = new RespParser();
  let commands = 0;
  for (const chunk of chunks) {
    parser.append(chunk);
    while (parser.next() !== undefined) commands++;
  }
  if (commands !== COMMANDS_PER_BATCH) throw new Error(`parsed ${commands} commands, expected ${COMMANDS_PER_BATCH}`);
  return commands;
}

export async function benchResp(timeMs = 1000): Promise<Bench> {
  const batch = pipelinedSets(COMMANDS_PER_BATCH, 64);
  const segments: Buffer[] = [];
  for (let offset = 0; offset < batch.length; offset += SEGMENT_BYTES) segments.push(batch.subarray(offset, offset + SEGMENT_BYTES));
  const okReplies: Reply[] = Array.from({ length: COMMANDS_PER_BATCH }, () => reply.ok);
  const value = Buffer.alloc(64, 0x76);
  const bulkReplies: Reply[] = Array.from({ length: COMMANDS_PER_BATCH }, () => reply.bulk(value));

  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench
    .add(`parse ${COMMANDS_PER_BATCH} pipelined SETs (one ${batch.length}-byte chunk), per batch`, () => {
      parseChunks([batch]);
    })
    .add(`parse ${COMMANDS_PER_BATCH} pipelined SETs in ${segments.length} ${SEGMENT_BYTES}-byte chunks, per batch`, () => {
      parseChunks(segments);
    })
    .add(`encode ${COMMANDS_PER_BATCH} +OK replies, per batch`, () => {
      encodeReplies(okReplies);
    })
    .add(`encode ${COMMANDS_PER_BATCH} 64-byte bulk replies, per batch`, () => {
      encodeReplies(bulkReplies);
    });
  await bench.run();
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchResp();
  console.table(bench.table());
}
