/**
 * Micro-benchmark: Bitcask appends on the real disk (a temporary directory). Two shapes: one put
 * appended without waiting for durability (the encode + append + keydir cost), and a group of 64
 * puts sharing one fdatasync (what one scheduler turn's group commit costs).
 * Run: `npx tsc -p . && node dist/bench/micro/bitcask.js`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { Bitcask, closeMergePool } from '../../src/storage/bitcask/bitcask.js';

const GROUP = 64;
const KEYS = 10_000;

export async function benchBitcask(timeMs = 1000): Promise<Bench> {
  const directory = mkdtempSync(join(tmpdir(), 'paxosstore-bench-bitcask-'));
  const bitcask = await Bitcask.open({ directory });
  const keys = Array.from({ length: KEYS }, (_, index) => Buffer.from(`key-${index}`));
  const value = Buffer.alloc(100, 7);
  let next = 0;
  const pending: Promise<void>[] = [];
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench
    .add('bitcask put, 100-byte value, appended (durability not awaited)', async () => {
      pending.push(bitcask.put(keys[next++ % KEYS], value));
      // Let the group commits catch up now and then, so the sync queue stays bounded.
      if (pending.length >= 4096) await Promise.all(pending.splice(0));
    })
    .add(`bitcask group commit: ${GROUP} puts + one fdatasync`, async () => {
      const writes: Promise<void>[] = [];
      for (let index = 0; index < GROUP; index++) writes.push(bitcask.put(keys[next++ % KEYS], value));
      await Promise.all(writes);
    });
  try {
    await bench.run();
    await Promise.all(pending);
  } finally {
    await bitcask.close();
    await closeMergePool();
    rmSync(directory, { recursive: true, force: true });
  }
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchBitcask();
  console.table(bench.table());
}
