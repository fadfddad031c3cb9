import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Bitcask, closeMergePool } from '../../src/storage/bitcask/bitcask.js';
import { KEY_BYTES_MAX } from '../../src/storage/engine.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';

/**
 * Targeted Bitcask scenarios (the randomized model test covers the interleavings): real disk
 * with hints and a merge on the piscina worker (run `npx tsc -p .` first so the worker's
 * compiled file exists), validation, group commit, torn tails, corruption, ENOSPC and failed
 * syncs on the simulated disk.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const key = (index: number): Uint8Array => encoder.encode(`key-${index}`);
const value = (index: number, round = 0): Uint8Array => encoder.encode(`value-${index}-${round}-${'x'.repeat(index % 50)}`);
const text = (bytes: Uint8Array | undefined): string | undefined => (bytes === undefined ? undefined : decoder.decode(bytes));

async function openSimulated(disk: SimulatedFileSystem, fileSizeBytesMax = 4096): Promise<Bitcask> {
  return Bitcask.open({ directory: '/db', fileSystem: disk, fileSizeBytesMax, mergeTriggerDeadRatio: Number.POSITIVE_INFINITY });
}

function expectCode(code: string): ReturnType<typeof expect.objectContaining> {
  return expect.objectContaining({ code });
}

const temporaryDirectories: string[] = [];
afterAll(async () => {
  await closeMergePool();
  for (const directory of temporaryDirectories) rmSync(directory, { recursive: true, force: true });
});

describe('bitcask on the real disk', () => {
  it('survives reopen via hints and merges on the worker while reads and writes continue', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'bitcask-test-'));
    temporaryDirectories.push(directory);
    const options = { directory, fileSizeBytesMax: 16 * 1024, mergeTriggerDeadRatio: Number.POSITIVE_INFINITY };
    let engine = await Bitcask.open(options);
    for (let round = 0; round < 4; round++) {
      await Promise.all(Array.from({ length: 500 }, (_, index) => engine.put(key(index), value(index, round))));
    }
    await engine.batch([
      { type: 'delete', key: key(1) },
      { type: 'put', key: key(2), value: encoder.encode('batched') },
    ]);
    await engine.close();

    engine = await Bitcask.open(options);
    expect(engine.recovery.hintsUsed).toBeGreaterThan(5);
    expect(engine.recovery.filesScanned).toBe(1);
    expect(text(engine.get(key(1)))).toBeUndefined();
    expect(text(engine.get(key(2)))).toBe('batched');
    expect(text(engine.get(key(3)))).toBe(text(value(3, 3)));

    const before = engine.stats();
    const merging = engine.merge();
    // Reads and writes during the merge; the keys written now must not be repointed by it.
    const during = Promise.all(Array.from({ length: 50 }, (_, index) => engine.put(key(index + 10), value(index + 10, 9))));
    expect(text(engine.get(key(100)))).toBe(text(value(100, 3)));
    const summary = await merging;
    await during;
    expect(summary.merged).toBe(true);
    expect(summary.bytesAfter).toBeLessThan(summary.bytesBefore / 2);
    expect(engine.stats().dataBytes).toBeLessThan(before.dataBytes);
    for (let index = 0; index < 500; index++) {
      const expected = index === 1 ? undefined : index === 2 ? 'batched' : text(value(index, index >= 10 && index < 60 ? 9 : 3));
      expect(text(engine.get(key(index))), `key ${index}`).toBe(expected);
    }
    await engine.close();
    expect(readdirSync(directory).some((name) => name.endsWith('.commit'))).toBe(true);

    engine = await Bitcask.open(options);
    expect(engine.recovery.garbageFilesRemoved).toBe(0);
    expect(text(engine.get(key(49)))).toBe(text(value(49, 9)));
    expect(text(engine.get(key(450)))).toBe(text(value(450, 3)));
    expect([...engine.entries()].length).toBe(499);
    await engine.close();
  });
});

describe('bitcask on the simulated disk', () => {
  it('refuses bad input with typed errors and writes nothing', async () => {
    const disk = new SimulatedFileSystem();
    const engine = await Bitcask.open({ directory: '/db', fileSystem: disk, valueBytesMax: 100 });
    const appendedBefore = disk.counters.appendedBytes;
    await expect(engine.put(new Uint8Array(KEY_BYTES_MAX + 1), value(1))).rejects.toThrow(expectCode('KEY_TOO_LARGE'));
    await expect(engine.put(key(1), new Uint8Array(101))).rejects.toThrow(expectCode('VALUE_TOO_LARGE'));
    await expect(engine.put('key' as unknown as Uint8Array, value(1))).rejects.toThrow(expectCode('INVALID_ARGUMENT'));
    await expect(engine.batch([{ type: 'put', key: key(1), value: value(1) }, { type: 'put', key: key(2), value: new Uint8Array(101) }])).rejects.toThrow(
      expectCode('VALUE_TOO_LARGE'),
    );
    await expect(engine.batch([{ type: 'upsert', key: key(1) } as never, { type: 'delete', key: key(2) }])).rejects.toThrow(expectCode('INVALID_ARGUMENT'));
    expect(() => engine.get(42 as unknown as Uint8Array)).toThrow(expectCode('INVALID_ARGUMENT'));
    expect(disk.counters.appendedBytes).toBe(appendedBefore);
    expect(engine.get(key(1))).toBeUndefined();
    await expect(Bitcask.open({ directory: '/other', fileSystem: disk, fileSizeBytesMax: 0 })).rejects.toThrow(expectCode('INVALID_ARGUMENT'));
    await engine.close();
    expect(() => engine.get(key(1))).toThrow(expectCode('CLOSED'));
    await expect(engine.put(key(1), value(1))).rejects.toThrow(expectCode('CLOSED'));
  });

  it('commits many concurrent writes with one sync', async () => {
    const disk = new SimulatedFileSystem();
    const engine = await openSimulated(disk, 1 << 20);
    const syncsBefore = disk.counters.syncs;
    await Promise.all(Array.from({ length: 200 }, (_, index) => engine.put(key(index), value(index))));
    expect(disk.counters.syncs - syncsBefore).toBe(1);
    expect(text(engine.get(key(199)))).toBe(text(value(199)));
    await engine.close();
  });

  it('appends a whole group with one write and serves its records from the buffer until then', async () => {
    const disk = new SimulatedFileSystem();
    const engine = await openSimulated(disk, 1 << 20);
    const appendsBefore = disk.counters.appends;
    const writes = Array.from({ length: 50 }, (_, index) => engine.put(key(index), value(index)));
    writes.push(engine.batch([{ type: 'put', key: key(60), value: value(60) }, { type: 'delete', key: key(0) }]));
    expect(disk.counters.appends - appendsBefore).toBe(0);
    expect(text(engine.get(key(49)))).toBe(text(value(49)));
    expect(text(engine.get(key(60)))).toBe(text(value(60)));
    expect(engine.get(key(0))).toBeUndefined();
    await Promise.all(writes);
    expect(disk.counters.appends - appendsBefore).toBe(1);
    expect(text(engine.get(key(49)))).toBe(text(value(49)));
    await engine.close();
  });

  it('on ENOSPC for a group append rejects exactly that group and undoes its keydir changes', async () => {
    const disk = new SimulatedFileSystem();
    const engine = await openSimulated(disk, 1 << 20);
    await Promise.all([engine.put(key(1), value(1)), engine.put(key(2), value(2))]);
    disk.capacityBytes = disk.counters.appendedBytes + 100;
    const group = [
      engine.put(key(1), value(1, 1)),
      engine.delete(key(2)),
      engine.put(key(3), value(3)),
      engine.put(key(1), value(1, 2)),
      engine.batch([{ type: 'put', key: key(4), value: value(4) }, { type: 'delete', key: key(1) }]),
    ];
    // Reads-your-writes before the append.
    expect(engine.get(key(1))).toBeUndefined();
    expect(text(engine.get(key(3)))).toBe(text(value(3)));
    const outcomes = await Promise.allSettled(group);
    for (const outcome of outcomes) expect(outcome).toMatchObject({ status: 'rejected', reason: expectCode('NO_SPACE') });
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    expect(text(engine.get(key(2)))).toBe(text(value(2)));
    expect(engine.get(key(3))).toBeUndefined();
    expect(engine.get(key(4))).toBeUndefined();
    expect(engine.stats()).toMatchObject({ keys: 2, writesWithdrawn: 5, deadBytes: 0 });
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    await engine.put(key(3), value(3, 1));
    disk.crash(new Random(2));
    const reopened = await openSimulated(disk, 1 << 20);
    expect(text(reopened.get(key(1)))).toBe(text(value(1)));
    expect(text(reopened.get(key(2)))).toBe(text(value(2)));
    expect(text(reopened.get(key(3)))).toBe(text(value(3, 1)));
    expect(reopened.get(key(4))).toBeUndefined();
    expect(reopened.stats().deadBytes).toBe(0);
    await reopened.close();
  });

  it('cuts a torn tail at open and reports it', async () => {
    const disk = new SimulatedFileSystem();
    let engine = await openSimulated(disk);
    await engine.put(key(1), value(1));
    await engine.put(key(2), value(2));
    const activePath = disk.allFiles().find((path) => path.endsWith('.data'))!;
    const torn = disk.open(activePath, 'append');
    torn.append(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25]));
    await torn.sync();
    await engine.close();
    engine = await openSimulated(disk);
    expect(engine.recovery.bytesTruncated).toBe(25);
    expect(text(engine.get(key(2)))).toBe(text(value(2)));
    await engine.put(key(3), value(3));
    await engine.close();
    engine = await openSimulated(disk);
    expect(engine.recovery.bytesTruncated).toBe(0);
    expect(text(engine.get(key(3)))).toBe(text(value(3)));
    await engine.close();
  });

  it('throws CORRUPTION for a damaged record in a sealed file and never returns its bytes', async () => {
    const disk = new SimulatedFileSystem();
    let engine = await openSimulated(disk, 512);
    for (let index = 0; index < 40; index++) await engine.put(key(index), value(index));
    await engine.close();
    const sealed = disk.allFiles().filter((path) => path.endsWith('.data'))[0];
    const content = disk.readFile(sealed);
    const needle = encoder.encode('value-0-0-');
    const at = content.findIndex((_, index) => needle.every((byte, offset) => content[index + offset] === byte));
    disk.flipBit(sealed, at + 3, 2);
    engine = await openSimulated(disk, 512);
    expect(engine.recovery.hintsUsed).toBeGreaterThan(0);
    expect(() => engine.get(key(0))).toThrow(expectCode('CORRUPTION'));
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    await expect(engine.merge()).rejects.toThrow(expectCode('CORRUPTION'));
    // Overwriting the damaged key moves it out of the sealed file; then merge succeeds.
    await engine.put(key(0), value(0, 1));
    expect((await engine.merge()).merged).toBe(true);
    expect(text(engine.get(key(0)))).toBe(text(value(0, 1)));
    expect(text(engine.get(key(39)))).toBe(text(value(39)));
    await engine.close();
  });

  it('falls back to scanning when a hint is damaged', async () => {
    const disk = new SimulatedFileSystem();
    let engine = await openSimulated(disk, 512);
    for (let index = 0; index < 40; index++) await engine.put(key(index), value(index));
    await engine.close();
    const hint = disk.allFiles().find((path) => path.endsWith('.hint'))!;
    disk.flipBit(hint, 20, 1);
    engine = await openSimulated(disk, 512);
    expect(engine.recovery.hintsRejected).toBe(1);
    for (let index = 0; index < 40; index++) expect(text(engine.get(key(index)))).toBe(text(value(index)));
    await engine.close();
  });

  it('rejects writes with NO_SPACE when the disk is full, keeps serving reads, and recovers when space is back', async () => {
    const disk = new SimulatedFileSystem();
    let engine = await openSimulated(disk);
    await engine.put(key(1), value(1));
    disk.capacityBytes = disk.counters.appendedBytes + 10;
    await expect(engine.put(key(2), value(2))).rejects.toThrow(expectCode('NO_SPACE'));
    await expect(engine.batch([{ type: 'put', key: key(3), value: value(3) }, { type: 'delete', key: key(1) }])).rejects.toThrow(expectCode('NO_SPACE'));
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    expect(engine.get(key(2))).toBeUndefined();
    disk.capacityBytes = Number.POSITIVE_INFINITY;
    await engine.put(key(2), value(2));
    disk.crash(new Random(1));
    engine = await openSimulated(disk);
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    expect(text(engine.get(key(2)))).toBe(text(value(2)));
    expect(engine.get(key(3))).toBeUndefined();
    await engine.close();
  });

  it('stops accepting writes after a failed sync, keeps serving reads, and recovers on reopen', async () => {
    const disk = new SimulatedFileSystem();
    let engine = await openSimulated(disk);
    await engine.put(key(1), value(1));
    disk.failNextSyncs = 1;
    await expect(engine.put(key(2), value(2))).rejects.toThrow(expectCode('IO_ERROR'));
    await expect(engine.put(key(3), value(3))).rejects.toThrow(expectCode('IO_ERROR'));
    await expect(engine.flush()).rejects.toThrow(expectCode('IO_ERROR'));
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    expect(engine.stats().writeFailed).toBe(1);
    await engine.close();
    engine = await openSimulated(disk);
    expect(text(engine.get(key(1)))).toBe(text(value(1)));
    await engine.put(key(3), value(3));
    expect(text(engine.get(key(3)))).toBe(text(value(3)));
    await engine.close();
  });
});
