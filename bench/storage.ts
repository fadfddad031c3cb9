import { mkdirSync, rmSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { open as openLmdb } from 'lmdb';
import { Bench } from 'tinybench';
import { Bitcask, closeMergePool } from '../src/storage/bitcask/bitcask.js';
import { Random } from '../src/util/random.js';

/**
 * Bitcask against lmdb-js and classic-level, same data, same run (DESIGN.md §9):
 *
 * 1. Durable puts of 100-byte values, group-committed in batches of PUT_BATCH: each iteration
 *    issues PUT_BATCH puts and waits until all are durable.
 *      Bitcask       PUT_BATCH concurrent `put` calls → one group commit (one fdatasync)
 *      lmdb          PUT_BATCH concurrent async `put` calls → one write transaction (lmdb
 *                    batches the puts of one turn; commit is synced since noSync is off)
 *      classic-level one `batch` of PUT_BATCH puts with `{ sync: true }`
 * 2. Random point gets over GET_KEYS keys loaded into each store: Bitcask `get` vs lmdb
 *    `getBinary` vs classic-level `getSync`, the same random key sequence for each.
 *
 * Each figure is the median of 3 alternating rounds. Run: `npm run bench:storage` (or
 * `node dist/bench/storage.js`); BENCH_GET_KEYS and BENCH_TIME_MS (per round) override the sizes. Data goes to `.bench-tmp/` in the repo and is removed.
 */

const PUT_BATCH = 100;
const VALUE_BYTES = 100;
const GET_KEYS = Number(process.env.BENCH_GET_KEYS ?? 1_000_000);
const GETS_PER_ITERATION = 1000;
const TIME_MS = Number(process.env.BENCH_TIME_MS ?? 1500);
const ROUNDS = 3;
const LOAD_CHUNK = 10_000;

const repositoryRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const root = join(repositoryRoot, '.bench-tmp', `storage-${process.pid}`);

const keyOf = (index: number): Buffer => Buffer.from(`key:${String(index).padStart(12, '0')}`);

interface Row {
  name: string;
  opsPerSecond: number;
}

type Task = [name: string, run: () => unknown];

/**
 * Runs the tasks in ROUNDS alternating rounds and keeps each task's median throughput: the
 * machine is shared, and alternating spreads background noise over all engines alike.
 */
async function measure(rows: Row[], operationsPerIteration: number, tasks: Task[]): Promise<void> {
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, run] of tasks) {
      const bench = new Bench({ time: TIME_MS, warmupTime: 200 });
      bench.add(name, run);
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state !== 'completed') throw new Error(`${name}: ${result.state} ${'error' in result ? String(result.error) : ''}`);
      samples.get(name)!.push((operationsPerIteration / result.period) * 1000);
    }
  }
  for (const [name] of tasks) {
    const sorted = samples.get(name)!.sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    rows.push({ name, opsPerSecond: median });
    console.log(`  ${name}: ${sorted.map((value) => Math.round(value).toLocaleString('en-US')).join(' / ')} ops/s (rounds), median ${Math.round(median).toLocaleString('en-US')}`);
  }
}

function table(title: string, rows: Row[], subject: string): void {
  const subjectRow = rows.find((row) => row.name.startsWith(subject))!;
  console.log(`\n${title}`);
  console.log('| engine | ops/s | Bitcask ÷ engine |');
  console.log('|---|---:|---:|');
  for (const row of rows) {
    const ratio = row === subjectRow ? '—' : `${(subjectRow.opsPerSecond / row.opsPerSecond).toFixed(2)}×`;
    console.log(`| ${row.name} | ${Math.round(row.opsPerSecond).toLocaleString('en-US')} | ${ratio} |`);
  }
}

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  console.log(`storage bench: ${cpus().length} cores, Node ${process.version}, ${new Date().toISOString()}`);
  // One value buffer, built once and never mutated, shared by every put of every engine: no
  // engine pays for a per-put copy the others skip (lmdb and classic-level want a Buffer).
  const value = Buffer.from(new Random(1).bytes(VALUE_BYTES));
  const bitcask = await Bitcask.open({ directory: join(root, 'bitcask'), mergeTriggerDeadRatio: Number.POSITIVE_INFINITY });
  const lmdb = openLmdb<Buffer, Buffer>({ path: join(root, 'lmdb'), encoding: 'binary', keyEncoding: 'binary' });
  const level = new ClassicLevel<Buffer, Buffer>(join(root, 'level'), { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await level.open();
  try {
    // ── 1. durable group-committed puts ──
    console.log(`\ndurable puts, ${VALUE_BYTES}-byte values, batches of ${PUT_BATCH}`);
    const putRows: Row[] = [];
    let next = GET_KEYS; // distinct from the keys of the get test
    const batchKeys = (): Buffer[] => Array.from({ length: PUT_BATCH }, () => keyOf(next++));
    await measure(putRows, PUT_BATCH, [
      ['Bitcask put ×100 concurrent, one group commit', () => Promise.all(batchKeys().map((key) => bitcask.put(key, value)))],
      ['lmdb async put ×100 concurrent, one transaction', () => Promise.all(batchKeys().map((key) => lmdb.put(key, value)))],
      [
        'classic-level batch(100, {sync: true})',
        () => level.batch(batchKeys().map((key) => ({ type: 'put' as const, key, value: value })), { sync: true }),
      ],
    ]);

    // ── 2. random point gets over GET_KEYS keys ──
    console.log(`\nloading ${GET_KEYS.toLocaleString('en-US')} keys into each store`);
    for (let start = 0; start < GET_KEYS; start += LOAD_CHUNK) {
      const keys = Array.from({ length: Math.min(LOAD_CHUNK, GET_KEYS - start) }, (_, offset) => keyOf(start + offset));
      await Promise.all(keys.map((key) => bitcask.put(key, value)));
      await lmdb.transaction(() => {
        for (const key of keys) lmdb.put(key, value);
      });
      await level.batch(keys.map((key) => ({ type: 'put' as const, key, value: value })));
    }
    const random = new Random(2);
    const sequence = Array.from({ length: 1 << 16 }, () => keyOf(random.int(GET_KEYS)));
    let cursor = 0;
    const getRows: Row[] = [];
    const getLoop = (get: (key: Buffer) => Uint8Array | undefined) => () => {
      for (let index = 0; index < GETS_PER_ITERATION; index++) {
        const found = get(sequence[cursor++ & 0xffff]);
        if (found === undefined || found.length !== VALUE_BYTES) throw new Error('bench: a loaded key is missing');
      }
    };
    console.log(`\nrandom point gets over ${GET_KEYS.toLocaleString('en-US')} keys`);
    await measure(getRows, GETS_PER_ITERATION, [
      ['Bitcask get', getLoop((key) => bitcask.get(key))],
      ['lmdb getBinary', getLoop((key) => lmdb.getBinary(key))],
      ['classic-level getSync', getLoop((key) => level.getSync(key))],
    ]);

    table(`durable puts (${VALUE_BYTES}-byte values, batches of ${PUT_BATCH})`, putRows, 'Bitcask');
    table(`random point gets over ${GET_KEYS.toLocaleString('en-US')} keys`, getRows, 'Bitcask');
    const keydir = bitcask.stats();
    console.log(`\nBitcask keydir: ${keydir.keys} keys, ${(keydir.keydirBytes / keydir.keys).toFixed(1)} bytes/key including key bytes`);
  } finally {
    await bitcask.close();
    await closeMergePool();
    await lmdb.close();
    await level.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
