import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClassicLevel } from 'classic-level';
import { open as openLmdb } from 'lmdb';
import { Bench } from 'tinybench';
import { LsmTree } from '../src/storage/lsm/index.js';
import { Random } from '../src/util/random.js';

/**
 * 100-key range scans over one data set loaded into each engine (DESIGN.md §9, issue 2):
 *
 *   LSM           for (const entry of tree.iterate({ start, limit: 100 }))
 *   classic-level await db.iterator({ gte: start, limit: 100 }).all()   (and nextv(100), the faster is kept)
 *   lmdb          for (const entry of db.getRange({ start, limit: 100 }))
 *
 * Keys are 16 bytes (`key:` + 12 digits), values 100 random bytes; every engine gets the same
 * keys in the same order (ascending, in batches of LOAD_BATCH), is settled (LSM: compactAll,
 * everything merged into one sorted level; classic-level: compactRange; lmdb: flushed), and then scans from
 * the same sequence of random start keys. Each figure is the median of ROUNDS alternating
 * rounds, because the machine is shared. Run after `npx tsc -p .`:
 * `node dist/bench/storage-scan.js`; SCAN_KEYS and SCAN_TIME_MS change the size and the time per round.
 * Data lives in `.bench-tmp/` in the repository and is removed at the end.
 */

const KEYS = Number(process.env.SCAN_KEYS ?? 1_000_000);
const TIME_MS = Number(process.env.SCAN_TIME_MS ?? 2000);
const SCAN_LENGTH = 100;
const VALUE_BYTES = 100;
const LOAD_BATCH = 10_000;
const ROUNDS = 3;
const STARTS = 1 << 16;

const repositoryRoot = join(fileURLToPath(new URL('.', import.meta.url)), '..', '..');
const root = join(repositoryRoot, '.bench-tmp', `scan-${process.pid}`);
const keyOf = (index: number): Uint8Array => new TextEncoder().encode(`key:${String(index).padStart(12, '0')}`);

type ScanTask = [name: string, scan: (start: Uint8Array) => number | Promise<number>];

function values(): Uint8Array[] {
  const random = new Random(42);
  // A pool of distinct values reused across keys keeps memory flat while data stays incompressible.
  return Array.from({ length: 4096 }, () => random.bytes(VALUE_BYTES));
}

async function timed(label: string, work: () => Promise<void>): Promise<void> {
  const started = performance.now();
  await work();
  console.log(`  loaded ${label} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

async function loadLsm(pool: Uint8Array[]): Promise<LsmTree> {
  const tree = await LsmTree.open({ directory: join(root, 'lsm') });
  await timed('LSM', async () => {
    for (let first = 0; first < KEYS; first += LOAD_BATCH) {
      const batch = [];
      for (let index = first; index < Math.min(KEYS, first + LOAD_BATCH); index++) batch.push({ type: 'put' as const, key: keyOf(index), value: pool[index & 4095] });
      await tree.batch(batch);
    }
    await tree.compactAll();
  });
  return tree;
}

async function loadClassicLevel(pool: Uint8Array[]): Promise<ClassicLevel<Uint8Array, Uint8Array>> {
  const db = new ClassicLevel<Uint8Array, Uint8Array>(join(root, 'classic-level'), { keyEncoding: 'view', valueEncoding: 'view' });
  await db.open();
  await timed('classic-level', async () => {
    for (let first = 0; first < KEYS; first += LOAD_BATCH) {
      const batch = [];
      for (let index = first; index < Math.min(KEYS, first + LOAD_BATCH); index++) batch.push({ type: 'put' as const, key: keyOf(index), value: pool[index & 4095] });
      await db.batch(batch, { sync: true });
    }
    await db.compactRange(keyOf(0), keyOf(KEYS));
  });
  return db;
}

async function loadLmdb(pool: Uint8Array[]): Promise<ReturnType<typeof openLmdb>> {
  const db = openLmdb({ path: join(root, 'lmdb'), keyEncoding: 'binary', encoding: 'binary' });
  await timed('lmdb', async () => {
    for (let first = 0; first < KEYS; first += LOAD_BATCH) {
      let last: Promise<unknown> = Promise.resolve();
      for (let index = first; index < Math.min(KEYS, first + LOAD_BATCH); index++) last = db.put(Buffer.from(keyOf(index)), pool[index & 4095]);
      await last;
    }
    await db.flushed;
  });
  return db;
}

/** Alternating rounds, median ops/s per task: background noise on a shared machine hits every engine alike. */
async function measure(tasks: ScanTask[], starts: Uint8Array[]): Promise<Map<string, number>> {
  const samples = new Map<string, number[]>(tasks.map(([name]) => [name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, scan] of tasks) {
      let next = 0;
      const bench = new Bench({ time: TIME_MS, warmupTime: 300 });
      bench.add(name, () => scan(starts[next++ & (STARTS - 1)]));
      await bench.run();
      const result = bench.tasks[0].result;
      if (result.state !== 'completed') throw new Error(`${name}: ${result.state} ${'error' in result ? String(result.error) : ''}`);
      samples.get(name)!.push(1000 / result.period);
    }
  }
  const medians = new Map<string, number>();
  for (const [name, list] of samples) {
    list.sort((a, b) => a - b);
    medians.set(name, list[Math.floor(list.length / 2)]);
    console.log(`  ${name}: ${list.map((value) => Math.round(value).toLocaleString('en-US')).join(' / ')} scans/s`);
  }
  return medians;
}

function checkScan(name: string, count: number): number {
  if (count !== SCAN_LENGTH) throw new Error(`${name} returned ${count} entries instead of ${SCAN_LENGTH}`);
  return count;
}

async function main(): Promise<void> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  console.log(`100-key range scans over ${KEYS.toLocaleString('en-US')} keys (16-byte keys, ${VALUE_BYTES}-byte values), Node ${process.version}`);
  const pool = values();
  const random = new Random(7);
  const starts = Array.from({ length: STARTS }, () => keyOf(random.int(KEYS - SCAN_LENGTH)));
  const lsm = await loadLsm(pool);
  const level = await loadClassicLevel(pool);
  const lmdb = await loadLmdb(pool);
  console.log(`  LSM levels: ${JSON.stringify(Object.fromEntries(Object.entries(lsm.stats()).filter(([name, value]) => name.endsWith('Tables') && value > 0)))}`);
  try {
    const tasks: ScanTask[] = [
      [
        'LSM iterate',
        (start) => {
          let count = 0;
          for (const [, value] of lsm.iterate({ start, limit: SCAN_LENGTH })) count += value.length > 0 ? 1 : 0;
          return checkScan('LSM', count);
        },
      ],
      ['classic-level iterator.all', async (start) => checkScan('classic-level', (await level.iterator({ gte: start, limit: SCAN_LENGTH }).all()).length)],
      [
        'classic-level iterator.nextv',
        async (start) => {
          const iterator = level.iterator({ gte: start, limit: SCAN_LENGTH });
          const entries = await iterator.nextv(SCAN_LENGTH);
          await iterator.close();
          return checkScan('classic-level', entries.length);
        },
      ],
      [
        'lmdb getRange',
        (start) => {
          let count = 0;
          for (const entry of lmdb.getRange({ start: Buffer.from(start), limit: SCAN_LENGTH })) count += (entry.value as Uint8Array).length > 0 ? 1 : 0;
          return checkScan('lmdb', count);
        },
      ],
    ];
    const medians = await measure(tasks, starts);
    const lsmRate = medians.get('LSM iterate')!;
    const classicBest = Math.max(medians.get('classic-level iterator.all')!, medians.get('classic-level iterator.nextv')!);
    console.log(`\n100-key range scans, ${KEYS.toLocaleString('en-US')} keys, median of ${ROUNDS} rounds (${new Date().toISOString().slice(0, 10)})`);
    console.log('| engine | scans/s | keys/s | LSM ÷ engine |');
    console.log('|---|---:|---:|---:|');
    for (const [name, rate] of medians) {
      const ratio = name === 'LSM iterate' ? '—' : `${(lsmRate / rate).toFixed(2)}×`;
      console.log(`| ${name} | ${Math.round(rate).toLocaleString('en-US')} | ${Math.round(rate * SCAN_LENGTH).toLocaleString('en-US')} | ${ratio} |`);
    }
    console.log(`\ntarget LSM ≥ 1.0× classic-level (best variant): ${(lsmRate / classicBest).toFixed(2)}× → ${lsmRate >= classicBest ? 'met' : 'MISSED'}`);
  } finally {
    await lsm.close();
    await level.close();
    await lmdb.close();
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
