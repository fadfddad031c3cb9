import { describe, expect, it } from 'vitest';
import { HintBuilder, readHint } from '../../src/storage/bitcask/hint.js';
import { Keydir, newLocation } from '../../src/storage/bitcask/keydir.js';
import {
  DECODE_CORRUPT,
  DECODE_OK,
  DECODE_TRUNCATED,
  FLAG_BATCH,
  FLAG_BATCH_BEGIN,
  FLAG_BATCH_COMMIT,
  FLAG_TOMBSTONE,
  decodeRecord,
  encodeBatchCount,
  newRecordView,
  recordBytes,
  writeRecord,
} from '../../src/storage/bitcask/record.js';
import { scanRecords } from '../../src/storage/bitcask/scan.js';
import { Random } from '../../src/util/random.js';

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);
const VALUE_MAX = 1 << 20;

function encode(key: string, value: string | null, flags = 0, timestampMs = 1_700_000_000_123): Uint8Array {
  const keyBytes = bytes(key);
  const valueBytes = value === null ? null : bytes(value);
  const out = new Uint8Array(recordBytes(keyBytes.length, valueBytes?.length ?? 0));
  writeRecord(out, 0, keyBytes, valueBytes, flags, timestampMs);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

describe('bitcask record codec', () => {
  it('round-trips key, value, flags and a timestamp above 2^32', () => {
    const record = encode('alpha', 'value-1', FLAG_TOMBSTONE, 2 ** 40 + 7);
    const view = newRecordView();
    expect(decodeRecord(record, 0, record.length, VALUE_MAX, view)).toBe(DECODE_OK);
    expect(new TextDecoder().decode(record.subarray(view.keyStart, view.keyStart + view.keyLength))).toBe('alpha');
    expect(new TextDecoder().decode(record.subarray(view.valueStart, view.valueStart + view.valueLength))).toBe('value-1');
    expect(view.flags).toBe(FLAG_TOMBSTONE);
    expect(view.timestampMs).toBe(2 ** 40 + 7);
    expect(view.totalBytes).toBe(record.length);
  });

  it('reports every single-bit flip as corrupt or truncated, never OK', () => {
    const record = encode('key', 'some value bytes');
    const view = newRecordView();
    for (let bit = 0; bit < record.length * 8; bit++) {
      const damaged = record.slice();
      damaged[bit >> 3] ^= 1 << (bit & 7);
      expect(decodeRecord(damaged, 0, damaged.length, VALUE_MAX, view), `bit ${bit}`).not.toBe(DECODE_OK);
    }
  });

  it('says truncated for a short buffer and corrupt for an impossible length', () => {
    const record = encode('key', 'value');
    const view = newRecordView();
    expect(decodeRecord(record, 0, record.length - 1, VALUE_MAX, view)).toBe(DECODE_TRUNCATED);
    expect(decodeRecord(record, 0, 10, VALUE_MAX, view)).toBe(DECODE_TRUNCATED);
    expect(decodeRecord(record, 0, record.length, 2, view)).toBe(DECODE_CORRUPT);
  });
});

describe('bitcask recovery scan', () => {
  type Seen = [string, number, boolean];
  function scan(data: Uint8Array): { seen: Seen[]; result: ReturnType<typeof scanRecords> } {
    const seen: Seen[] = [];
    const result = scanRecords(data, data.length, VALUE_MAX, (buffer, keyStart, keyLength, offset, _size, tombstone) => {
      seen.push([new TextDecoder().decode(buffer.subarray(keyStart, keyStart + keyLength)), offset, tombstone]);
    });
    return { seen, result };
  }
  const batch = (count: number, ...records: Uint8Array[]): Uint8Array => concat(...records, commit(count));
  function commit(count: number): Uint8Array {
    const out = new Uint8Array(recordBytes(0, 4));
    writeRecord(out, 0, new Uint8Array(0), encodeBatchCount(count), FLAG_BATCH_COMMIT, 0);
    return out;
  }

  it('applies committed batches and drops a batch whose commit marker is missing', () => {
    const first = encode('a', '1');
    const committed = batch(2, encode('b', '2', FLAG_BATCH | FLAG_BATCH_BEGIN), encode('c', null, FLAG_BATCH | FLAG_TOMBSTONE));
    const unfinished = concat(encode('d', '4', FLAG_BATCH | FLAG_BATCH_BEGIN), encode('e', '5', FLAG_BATCH));
    const { seen, result } = scan(concat(first, committed, unfinished));
    expect(seen.map((entry) => entry[0])).toEqual(['a', 'b', 'c']);
    expect(seen[2][2]).toBe(true);
    expect(result.recordsDropped).toBe(2);
    expect(result.validEndBytes).toBe(first.length + committed.length);
  });

  it('drops a batch whose commit count does not match (a member was skipped as corrupt)', () => {
    const members = [encode('x', '1', FLAG_BATCH | FLAG_BATCH_BEGIN), encode('y', '2', FLAG_BATCH), encode('z', '3', FLAG_BATCH)];
    const data = concat(...members, commit(3), encode('after', 'ok'));
    data[members[0].length + 30] ^= 0x10; // damage the value of 'y'
    const { seen, result } = scan(data);
    expect(seen.map((entry) => entry[0])).toEqual(['after']);
    expect(result.corruptRegions).toBe(1);
    expect(result.validEndBytes).toBe(data.length);
  });

  it('cuts a torn tail but skips damage in the middle when valid records follow', () => {
    const records = [encode('k1', 'v1'), encode('k2', 'v2'), encode('k3', 'v3')];
    const whole = concat(...records);
    const torn = whole.subarray(0, whole.length - 5);
    expect(scan(torn).result.validEndBytes).toBe(records[0].length + records[1].length);
    const middle = whole.slice();
    middle[records[0].length + 26] ^= 1;
    const { seen, result } = scan(middle);
    expect(seen.map((entry) => entry[0])).toEqual(['k1', 'k3']);
    expect(result.corruptRegions).toBe(1);
    expect(result.corruptBytes).toBe(records[1].length);
    expect(result.validEndBytes).toBe(whole.length);
  });
});

describe('bitcask keydir', () => {
  it('agrees with a Map through growth, overwrites and deletes (backward shift)', () => {
    const random = new Random(11);
    const keydir = new Keydir(16);
    const model = new Map<string, [number, number, number]>();
    const previous = newLocation();
    for (let step = 0; step < 30_000; step++) {
      const name = `key-${random.int(8000)}`;
      const key = bytes(name);
      if (random.chance(0.35)) {
        expect(keydir.delete(key, previous)).toBe(model.has(name));
        if (model.has(name)) expect([previous.fileNumber, previous.offset, previous.recordBytes]).toEqual(model.get(name));
        model.delete(name);
      } else {
        const location: [number, number, number] = [random.int(100), random.int(1 << 30), random.int(1 << 20)];
        expect(keydir.set(key, ...location, previous)).toBe(model.has(name));
        model.set(name, location);
      }
    }
    expect(keydir.size).toBe(model.size);
    for (const [name, location] of model) {
      const slot = keydir.find(bytes(name));
      expect(slot, name).toBeGreaterThanOrEqual(0);
      expect([keydir.fileNumberAt(slot), keydir.offsetAt(slot), keydir.recordBytesAt(slot)]).toEqual(location);
      expect(new TextDecoder().decode(keydir.keyAt(slot))).toBe(name);
    }
    for (let index = 0; index < 8000; index++) {
      if (!model.has(`key-${index}`)) expect(keydir.find(bytes(`key-${index}`))).toBe(-1);
    }
    let visited = 0;
    for (let slot = keydir.nextSlot(-1); slot >= 0; slot = keydir.nextSlot(slot)) visited++;
    expect(visited).toBe(model.size);
  });

  it('reclaims arena garbage left by deletes', () => {
    const keydir = new Keydir(16);
    const previous = newLocation();
    const key = (index: number): Uint8Array => bytes(`a-fairly-long-key-to-fill-the-arena-${index}`);
    for (let index = 0; index < 20_000; index++) keydir.set(key(index), 1, index, 10, previous);
    const grown = keydir.memoryBytes();
    for (let round = 0; round < 5; round++) {
      for (let index = 0; index < 20_000; index++) keydir.delete(key(index), previous);
      for (let index = 0; index < 20_000; index++) keydir.set(key(index), 1, index, 10, previous);
    }
    expect(keydir.size).toBe(20_000);
    expect(keydir.memoryBytes()).toBeLessThanOrEqual(grown * 1.5);
    expect(keydir.offsetAt(keydir.find(key(12_345)))).toBe(12_345);
  });

  it('stores keys of every length class, including empty and 64 KiB', () => {
    const keydir = new Keydir(16);
    const previous = newLocation();
    const random = new Random(5);
    const keys = [0, 1, 127, 128, 16383, 16384, 65536].map((length) => random.bytes(length));
    keys.forEach((key, index) => {
      keydir.set(key, index, index, index, previous);
    });
    keys.forEach((key, index) => {
      const slot = keydir.find(key);
      expect(keydir.offsetAt(slot)).toBe(index);
      expect(keydir.keyAt(slot)).toEqual(key);
    });
  });
});

describe('bitcask hint file', () => {
  it('round-trips entries and rejects any damage or a length mismatch', () => {
    const builder = new HintBuilder();
    const keys = ['one', 'two', 'three'].map(bytes);
    keys.forEach((key, index) => {
      builder.add(key, 0, key.length, index * 100, 50 + index, index === 1);
    });
    const hint = builder.finish(1000);
    const seen: [string, number, number, boolean][] = [];
    expect(
      readHint(hint, 1000, (data, start, length, offset, size, tombstone) =>
        seen.push([new TextDecoder().decode(data.subarray(start, start + length)), offset, size, tombstone]),
      ),
    ).toBe(true);
    expect(seen).toEqual([
      ['one', 0, 50, false],
      ['two', 100, 51, true],
      ['three', 200, 52, false],
    ]);
    expect(readHint(hint, 999, () => {})).toBe(false);
    for (let position = 0; position < hint.length; position++) {
      const damaged = hint.slice();
      damaged[position] ^= 4;
      let visits = 0;
      expect(readHint(damaged, 1000, () => visits++)).toBe(false);
      expect(visits).toBe(0);
    }
  });
});
