import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PaxosStoreError } from '../../src/errors.js';
import { compareBytes, KEY_BYTES_MAX } from '../../src/storage/engine.js';
import { decodeStoredBlock, encodeStoredBlock } from '../../src/storage/lsm/block.js';
import { BlockCache } from '../../src/storage/lsm/block-cache.js';
import { bloomMayContain, buildBloomFilter, hash32 } from '../../src/storage/lsm/bloom.js';
import { KIND_PUT, KIND_TOMBSTONE, SEQUENCE_MAX } from '../../src/storage/lsm/codec.js';
import { LsmTree } from '../../src/storage/lsm/index.js';
import { decodeManifest, encodeManifest } from '../../src/storage/lsm/manifest.js';
import { Memtable } from '../../src/storage/lsm/memtable.js';
import { Table, TableIterator, TableWriter } from '../../src/storage/lsm/sstable.js';
import { encodeWalRecord, readWal } from '../../src/storage/lsm/wal.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';

const encoder = new TextEncoder();
const bytes = (text: string) => encoder.encode(text);
const text = (data: Uint8Array | undefined) => (data === undefined ? undefined : new TextDecoder().decode(data));
const keyOf = (index: number) => bytes(`key${String(index).padStart(6, '0')}`);

function expectCode(action: () => unknown, code: string): void {
  try {
    action();
  } catch (error) {
    expect(error).toBeInstanceOf(PaxosStoreError);
    expect((error as PaxosStoreError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('bloom filter', () => {
  it('never misses a key and keeps false positives near the theory', () => {
    const random = new Random(11);
    const keys = Array.from({ length: 10_000 }, () => random.bytes(random.range(4, 24)));
    const hashes = Uint32Array.from(keys, (key) => hash32(key));
    const filter = buildBloomFilter(hashes, hashes.length, 10);
    for (const hash of hashes) expect(bloomMayContain(filter, hash)).toBe(true);
    let falsePositives = 0;
    const probes = 20_000;
    for (let index = 0; index < probes; index++) if (bloomMayContain(filter, hash32(random.bytes(30)))) falsePositives++;
    const rate = falsePositives / probes;
    console.log(`bloom 10 bits/key: false positive rate ${(rate * 100).toFixed(2)} %`);
    expect(rate).toBeLessThan(0.02);
    expect(rate).toBeGreaterThan(0.002);
  });
});

describe('memtable', () => {
  it('orders by key, newest version first, and reads at a sequence', () => {
    const memtable = new Memtable();
    memtable.add(bytes('b'), 1, bytes('b1'));
    memtable.add(bytes('a'), 2, bytes('a2'));
    memtable.add(bytes('b'), 3, null);
    memtable.add(bytes('b'), 4, bytes('b4'));
    memtable.add(bytes(''), 5, bytes('empty'));
    expect(text((memtable.get(bytes('b'), 2) as { value: Uint8Array }).value)).toBe('b1');
    expect(memtable.get(bytes('b'), 3).kind).toBe('deleted');
    expect(text((memtable.get(bytes('b'), SEQUENCE_MAX) as { value: Uint8Array }).value)).toBe('b4');
    expect(memtable.get(bytes('c'), SEQUENCE_MAX).kind).toBe('absent');
    const iterator = memtable.iterator();
    const seen: string[] = [];
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) seen.push(`${text(iterator.key())}@${iterator.sequence()}`);
    expect(seen).toEqual(['@5', 'a@2', 'b@4', 'b@3', 'b@1']);
    const backwards: string[] = [];
    for (iterator.seekToLast(); iterator.valid(); iterator.prev()) backwards.push(`${text(iterator.key())}@${iterator.sequence()}`);
    expect(backwards).toEqual([...seen].reverse());
    iterator.seekBefore(bytes('b'));
    expect(text(iterator.key())).toBe('a');
  });

  it('stays sorted under many random inserts', () => {
    const random = new Random(5);
    const memtable = new Memtable();
    const keys: Uint8Array[] = [];
    for (let sequence = 1; sequence <= 5000; sequence++) {
      const key = random.bytes(random.range(0, 6));
      keys.push(key);
      memtable.add(key, sequence, random.bytes(3));
    }
    const iterator = memtable.iterator();
    let previous: [Uint8Array, number] | null = null;
    let count = 0;
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
      if (previous) {
        const order = compareBytes(previous[0], iterator.key());
        expect(order < 0 || (order === 0 && previous[1] > iterator.sequence())).toBe(true);
      }
      previous = [iterator.key(), iterator.sequence()];
      count++;
    }
    expect(count).toBe(5000);
  });
});

describe('stored blocks and SSTables', () => {
  it('compresses only when it pays and detects any flipped bit', () => {
    const compressible = new Uint8Array(4096).fill(7);
    const stored = encodeStoredBlock(compressible, true);
    expect(stored.length).toBeLessThan(200);
    expect(new Uint8Array(decodeStoredBlock(stored, 'test'))).toEqual(compressible);
    const random = new Random(3).bytes(4096);
    expect(encodeStoredBlock(random, true).length).toBe(4096 + 5);
    for (let position = 0; position < stored.length; position += 7) {
      const broken = stored.slice();
      broken[position] ^= 0x10;
      expectCode(() => decodeStoredBlock(broken, 'test'), 'CORRUPTION');
    }
  });

  it('round-trips entries, seeks by internal key, and iterates both ways', async () => {
    const fileSystem = new SimulatedFileSystem();
    fileSystem.makeDirectory('/t');
    const writer = new TableWriter(fileSystem, '/t/1.sst', 1, { blockBytes: 128, bloomBitsPerKey: 10, compress: true });
    const expected: string[] = [];
    for (let index = 0; index < 300; index++) {
      // Three versions per key, newest first, so versions of one key straddle block boundaries.
      for (const sequence of [900 + index, 500 + index, 100 + index]) {
        const tombstone = sequence === 500 + index && index % 5 === 0;
        writer.add(tombstone ? KIND_TOMBSTONE : KIND_PUT, sequence, keyOf(index), tombstone ? null : bytes(`v${sequence}`));
        expected.push(`${text(keyOf(index))}@${sequence}${tombstone ? 'x' : ''}`);
      }
    }
    const metadata = await writer.finish();
    expect(metadata.entryCount).toBe(900);
    const table = Table.open(fileSystem, '/t/1.sst', 1, new BlockCache(1 << 20));
    expect(table.blockCount).toBeGreaterThan(10);
    expect(text(table.smallestKey)).toBe('key000000');
    expect(text(table.largestKey)).toBe('key000299');
    const iterator = new TableIterator(table);
    const seen: string[] = [];
    for (iterator.seekToFirst(); iterator.valid(); iterator.next()) {
      seen.push(`${text(iterator.key())}@${iterator.sequence()}${iterator.isTombstone() ? 'x' : ''}`);
    }
    expect(seen).toEqual(expected);
    const backwards: string[] = [];
    for (iterator.seekToLast(); iterator.valid(); iterator.prev()) {
      backwards.push(`${text(iterator.key())}@${iterator.sequence()}${iterator.isTombstone() ? 'x' : ''}`);
    }
    expect(backwards).toEqual([...expected].reverse());
    const hash = Table.hashKey(keyOf(10));
    expect(text((table.get(keyOf(10), hash, SEQUENCE_MAX) as { value: Uint8Array }).value)).toBe('v910');
    expect(table.get(keyOf(10), hash, 700).kind).toBe('deleted');
    expect(text((table.get(keyOf(10), hash, 300) as { value: Uint8Array }).value)).toBe('v110');
    expect(table.get(keyOf(10), hash, 50).kind).toBe('absent');
    expect(table.get(bytes('nope'), Table.hashKey(bytes('nope')), SEQUENCE_MAX).kind).toBe('absent');
    iterator.seekBefore(keyOf(100));
    expect(`${text(iterator.key())}@${iterator.sequence()}`).toBe('key000099@199');
    table.close();
  });

  it('refuses a table whose footer or index is damaged', async () => {
    const fileSystem = new SimulatedFileSystem();
    fileSystem.makeDirectory('/t');
    const writer = new TableWriter(fileSystem, '/t/2.sst', 2, { blockBytes: 256, bloomBitsPerKey: 10, compress: false });
    for (let index = 0; index < 50; index++) writer.add(KIND_PUT, index + 1, keyOf(index), bytes('value'));
    const { sizeBytes } = await writer.finish();
    for (const position of [sizeBytes - 1, sizeBytes - 20, sizeBytes - 60]) {
      fileSystem.flipBit('/t/2.sst', position, 3);
      expectCode(() => Table.open(fileSystem, '/t/2.sst', 2, null), 'CORRUPTION');
      fileSystem.flipBit('/t/2.sst', position, 3);
    }
    Table.open(fileSystem, '/t/2.sst', 2, null).close();
  });
});

describe('WAL and manifest codecs', () => {
  it('reads whole records and drops a torn or corrupt tail', () => {
    const records = [1, 2, 3].map((sequence) => encodeWalRecord([{ kind: KIND_PUT, sequence, key: keyOf(sequence), value: bytes('v') }]));
    const whole = new Uint8Array(records.reduce((sum, record) => sum + record.length, 0));
    let offset = 0;
    for (const record of records) {
      whole.set(record, offset);
      offset += record.length;
    }
    expect(readWal(whole, 'wal').records.length).toBe(3);
    const torn = readWal(whole.subarray(0, whole.length - 3), 'wal');
    expect(torn.records.length).toBe(2);
    expect(torn.droppedBytes).toBe(records[2].length - 3);
    const flipped = whole.slice();
    flipped[records[0].length + 12] ^= 1;
    const corrupt = readWal(flipped, 'wal');
    expect(corrupt.records.length).toBe(1);
    expect(corrupt.droppedBytes).toBe(records[1].length + records[2].length);
  });

  it('manifest round-trips and detects damage', () => {
    const state = {
      nextTableNumber: 9,
      nextWalNumber: 4,
      walNumberMin: 3,
      lastSequence: 2 ** 40 + 7,
      tables: [{ level: 1, table: { number: 8, sizeBytes: 1234, entryCount: 10, smallestKey: bytes('a'), largestKey: bytes('z') } }],
    };
    const encoded = encodeManifest(state);
    expect(decodeManifest(encoded, 'm')).toEqual(state);
    for (let position = 0; position < encoded.length; position += 5) {
      const broken = encoded.slice();
      broken[position] ^= 4;
      expectCode(() => decodeManifest(broken, 'm'), 'CORRUPTION');
    }
  });
});

describe('LSM tree boundaries and faults', () => {
  it('rejects bad input with a typed error and writes nothing', async () => {
    const fileSystem = new SimulatedFileSystem();
    const tree = await LsmTree.open({ directory: '/db', fileSystem, valueBytesMax: 1000 });
    await tree.put(bytes('k'), bytes('v'));
    const before = tree.stats().writesCommitted;
    const cases: [() => Promise<void>, string][] = [
      [() => tree.put(new Uint8Array(KEY_BYTES_MAX + 1), bytes('v')), 'KEY_TOO_LARGE'],
      [() => tree.put(bytes('k'), new Uint8Array(1001)), 'VALUE_TOO_LARGE'],
      [() => tree.put('k' as unknown as Uint8Array, bytes('v')), 'INVALID_ARGUMENT'],
      [() => tree.put(bytes('k'), 42 as unknown as Uint8Array), 'INVALID_ARGUMENT'],
      [() => tree.batch([{ type: 'put', key: bytes('k'), value: bytes('new') }, { type: 'delete', key: new Uint8Array(KEY_BYTES_MAX + 1) }]), 'KEY_TOO_LARGE'],
      [() => tree.batch([{ type: 'merge' } as never]), 'INVALID_ARGUMENT'],
      [() => tree.batch([null as never]), 'INVALID_ARGUMENT'],
      [() => tree.batch('nope' as never), 'INVALID_ARGUMENT'],
    ];
    for (const [action, code] of cases) await expect(action()).rejects.toMatchObject({ code });
    expectCode(() => tree.get('k' as unknown as Uint8Array), 'INVALID_ARGUMENT');
    expectCode(() => [...tree.iterate({ start: 'a' as unknown as Uint8Array })], 'INVALID_ARGUMENT');
    await tree.put(new Uint8Array(KEY_BYTES_MAX), new Uint8Array(1000));
    expect(tree.stats().writesCommitted).toBe(before + 1);
    expect(text(tree.get(bytes('k')))).toBe('v');
    await tree.close();
    await expect(tree.put(bytes('k'), bytes('v'))).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('drops a corrupt WAL record on open, reports it, and keeps everything before it', async () => {
    const fileSystem = new SimulatedFileSystem();
    const tree = await LsmTree.open({ directory: '/db', fileSystem });
    for (let index = 0; index < 10; index++) await tree.put(keyOf(index), bytes(`v${index}`));
    const wal = fileSystem.allFiles().find((name) => name.endsWith('.wal'))!;
    const data = fileSystem.readFile(wal);
    const recordBytes = data.length / 10;
    fileSystem.flipBit(wal, Math.floor(recordBytes * 6.5));
    fileSystem.crash(new Random(1), { tornTailProbability: 0 });
    const reopened = await LsmTree.open({ directory: '/db', fileSystem });
    expect(reopened.recovery.walBytesDropped).toBe(recordBytes * 4);
    expect([...reopened.iterate()].map(([key]) => text(key))).toEqual(Array.from({ length: 6 }, (_, index) => text(keyOf(index))));
    await reopened.close();
  });

  it('refuses to open over a damaged manifest or a missing table', async () => {
    const fileSystem = new SimulatedFileSystem();
    const tree = await LsmTree.open({ directory: '/db', fileSystem });
    for (let index = 0; index < 100; index++) await tree.put(keyOf(index), bytes('v'));
    await tree.flushMemtable();
    await tree.close();
    fileSystem.flipBit('/db/MANIFEST', 20);
    await expect(LsmTree.open({ directory: '/db', fileSystem })).rejects.toMatchObject({ code: 'CORRUPTION' });
    fileSystem.flipBit('/db/MANIFEST', 20);
    const table = fileSystem.allFiles().find((name) => name.endsWith('.sst'))!;
    const saved = fileSystem.readFile(table);
    fileSystem.remove(table);
    await expect(LsmTree.open({ directory: '/db', fileSystem })).rejects.toMatchObject({ code: 'CORRUPTION' });
    const handle = fileSystem.open(table, 'create');
    handle.append(saved);
    const reopened = await LsmTree.open({ directory: '/db', fileSystem });
    expect(text(reopened.get(keyOf(42)))).toBe('v');
    await reopened.close();
  });

  it('keeps serving reads on a full disk and recovers every acknowledged write', async () => {
    const fileSystem = new SimulatedFileSystem();
    const tree = await LsmTree.open({ directory: '/db', fileSystem, memtableBytesMax: 2000 });
    for (let index = 0; index < 100; index++) await tree.put(keyOf(index), bytes(`v${index}`));
    fileSystem.capacityBytes = fileSystem.counters.appendedBytes + 500;
    const results = await Promise.allSettled(Array.from({ length: 50 }, (_, index) => tree.put(keyOf(100 + index), bytes('x'.repeat(40)))));
    const failed = results.filter((result) => result.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const result of failed) expect((result as PromiseRejectedResult).reason).toMatchObject({ code: 'NO_SPACE' });
    const acknowledged = results.flatMap((result, index) => (result.status === 'fulfilled' ? [100 + index] : []));
    expect(text(tree.get(keyOf(7)))).toBe('v7');
    expect([...tree.iterate({ limit: 5 })].length).toBe(5);
    fileSystem.capacityBytes = Number.POSITIVE_INFINITY;
    await tree.put(keyOf(999), bytes('after'));
    fileSystem.crash(new Random(2));
    const reopened = await LsmTree.open({ directory: '/db', fileSystem });
    for (const index of acknowledged) expect(text(reopened.get(keyOf(index)))).toBe('x'.repeat(40));
    for (let index = 0; index < 100; index++) expect(text(reopened.get(keyOf(index)))).toBe(`v${index}`);
    expect(text(reopened.get(keyOf(999)))).toBe('after');
    await reopened.close();
  });

  it('a snapshot pins its tables through flushes and compactions until released', async () => {
    const fileSystem = new SimulatedFileSystem();
    const tree = await LsmTree.open({ directory: '/db', fileSystem, memtableBytesMax: 1000, tableBytesTarget: 1000, level0CompactionTrigger: 2 });
    for (let index = 0; index < 200; index++) await tree.put(keyOf(index), bytes('old'));
    await tree.flushMemtable();
    const snapshot = tree.snapshot();
    const pinned = fileSystem.allFiles().filter((name) => name.endsWith('.sst'));
    for (let index = 0; index < 200; index++) await (index % 2 ? tree.delete(keyOf(index)) : tree.put(keyOf(index), bytes('new')));
    await tree.flushMemtable();
    expect(tree.stats().compactions).toBeGreaterThan(0);
    for (const name of pinned) expect(fileSystem.exists(name)).toBe(true);
    expect([...snapshot.iterate()].length).toBe(200);
    expect(text(snapshot.get(keyOf(1)))).toBe('old');
    expect(tree.get(keyOf(1))).toBeUndefined();
    snapshot.release();
    expectCode(() => snapshot.get(keyOf(1)), 'CLOSED');
    await tree.flushMemtable();
    expect(pinned.some((name) => fileSystem.exists(name))).toBe(false);
    await tree.close();
  });

  it('runs flushes and compactions on a piscina worker on the real disk', async () => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'lsm-worker-'));
    try {
      const tree = await LsmTree.open({ directory, memtableBytesMax: 4096, tableBytesTarget: 4096, level0CompactionTrigger: 2 });
      await Promise.all(Array.from({ length: 400 }, (_, index) => tree.put(keyOf(index), bytes(`value${index}`))));
      await tree.flushMemtable();
      const stats = tree.stats();
      expect(stats.flushes).toBeGreaterThan(0);
      expect(stats.compactions).toBeGreaterThan(0);
      expect(stats.groupCommits).toBeLessThan(400);
      expect([...tree.iterate({ prefix: bytes('key0001'), reverse: true })].map(([key]) => text(key))[0]).toBe('key000199');
      await tree.close();
      const reopened = await LsmTree.open({ directory });
      expect(text(reopened.get(keyOf(321)))).toBe('value321');
      await reopened.close();
    } finally {
      fs.rmSync(directory, { recursive: true, force: true });
    }
  });
});
