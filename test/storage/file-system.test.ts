import { describe, expect, it } from 'vitest';
import { crc32c } from '../../src/storage/crc32c.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';

describe('crc32c', () => {
  it('matches the standard check value', () => {
    expect(crc32c(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });
  it('is incremental and agrees with the bytewise path', () => {
    const random = new Random(7);
    const data = random.bytes(1000);
    expect(crc32c(data, crc32c(data, 0, 0, 333), 333)).toBe(crc32c(data));
    let slow = ~0 >>> 0;
    for (const byte of data) {
      slow ^= byte;
      for (let bit = 0; bit < 8; bit++) slow = slow & 1 ? (slow >>> 1) ^ 0x82f63b78 : slow >>> 1;
    }
    expect(crc32c(data)).toBe(~slow >>> 0);
  });
});

describe('SimulatedFileSystem', () => {
  it('keeps synced bytes and named files across a crash, and loses unsynced ones', async () => {
    const fs = new SimulatedFileSystem();
    fs.makeDirectory('/d');
    const handle = fs.open('/d/a', 'create');
    handle.append(new Uint8Array([1, 2, 3]));
    await handle.sync();
    await fs.syncDirectory('/d');
    handle.append(new Uint8Array([4, 5, 6]));
    fs.crash(new Random(1), { tornTailProbability: 0 });
    expect([...fs.readFile('/d/a')]).toEqual([1, 2, 3]);
    expect(() => handle.size()).toThrow(/crash/);
  });
  it('forgets a file whose directory was never synced when the change does not survive', async () => {
    const fs = new SimulatedFileSystem();
    fs.makeDirectory('/d');
    const handle = fs.open('/d/b', 'create');
    handle.append(new Uint8Array([9]));
    await handle.sync();
    fs.crash(new Random(1), { namespaceChangeSurvivesProbability: 0 });
    expect(fs.exists('/d/b')).toBe(false);
  });
  it('fails appends past capacity with NO_SPACE and writes nothing', () => {
    const fs = new SimulatedFileSystem();
    fs.makeDirectory('/d');
    fs.capacityBytes = 4;
    const handle = fs.open('/d/c', 'create');
    handle.append(new Uint8Array(4));
    expect(() => handle.append(new Uint8Array(1))).toThrow(expect.objectContaining({ code: 'NO_SPACE' }));
    expect(handle.size()).toBe(4);
  });
  it('writeFileAtomic leaves the new content durable', async () => {
    const fs = new SimulatedFileSystem();
    fs.makeDirectory('/d');
    await fs.writeFileAtomic('/d/m', new Uint8Array([1]));
    await fs.writeFileAtomic('/d/m', new Uint8Array([2]));
    fs.crash(new Random(3));
    expect([...fs.readFile('/d/m')]).toEqual([2]);
  });
});

describe('SimulatedFileSystem.writeFileAtomic across a crash', () => {
  it('does not finish its rename on the rebooted disk', async () => {
    const fs = new SimulatedFileSystem();
    fs.makeDirectory('/d');
    await fs.writeFileAtomic('/d/m', new Uint8Array([1]));
    const pending = fs.writeFileAtomic('/d/m', new Uint8Array([2]));
    fs.crash(new Random(5), { namespaceChangeSurvivesProbability: 0 });
    await expect(pending).rejects.toMatchObject({ code: 'CLOSED' });
    expect([...fs.readFile('/d/m')]).toEqual([1]);
  });
});
