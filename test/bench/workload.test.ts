import { describe, expect, it } from 'vitest';
import { fnv1a64, LatestChooser, ScrambledZipfianChooser, ZipfianGenerator } from '../../src/bench/key-distribution.js';
import { AcknowledgedCounter, keyName, parseMix, Workload, WORKLOAD_PRESETS } from '../../src/bench/workload.js';
import { Random } from '../../src/util/random.js';

function exactZeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / i ** theta;
  return sum;
}

describe('zipfian', () => {
  it('computes zeta incrementally to the same value as the direct sum', () => {
    const generator = new ZipfianGenerator(10, 0.99);
    generator.growTo(1000);
    generator.growTo(12_345);
    expect(generator.zeta).toBeCloseTo(exactZeta(12_345, 0.99), 9);
    expect(() => generator.growTo(100)).toThrow(/only grows/);
  });

  it('draws ranks with the zipfian shape: P(rank k) ≈ (1/(k+1)^θ) / zeta(n)', () => {
    const itemCount = 1000;
    const theta = 0.99;
    const generator = new ZipfianGenerator(itemCount, theta);
    const random = new Random(7);
    const draws = 400_000;
    const counts = new Float64Array(itemCount);
    for (let i = 0; i < draws; i++) counts[generator.nextRank(random)]++;
    const zeta = exactZeta(itemCount, theta);
    // Ranks 0 and 1 are exact in Gray's method; later ranks follow the continuous approximation.
    for (const rank of [0, 1]) {
      const expected = 1 / (rank + 1) ** theta / zeta;
      expect(Math.abs(counts[rank] / draws - expected) / expected).toBeLessThan(0.03);
    }
    let expectedTop100 = 0;
    let observedTop100 = 0;
    for (let rank = 0; rank < 100; rank++) {
      expectedTop100 += 1 / (rank + 1) ** theta / zeta;
      observedTop100 += counts[rank] / draws;
    }
    expect(Math.abs(observedTop100 - expectedTop100)).toBeLessThan(0.03);
    // Skew: the top 1% of ranks takes far more than 1% of the draws, and the tail is still reached.
    expect(observedTop100).toBeGreaterThan(0.6);
    expect(counts.subarray(900).reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
    // Monotone on average: rank 0 > rank 10 > rank 500 in frequency.
    expect(counts[0]).toBeGreaterThan(counts[10]);
    expect(counts[10]).toBeGreaterThan(counts[500]);
  });

  it('scrambles: the hottest key is fnv(0) mod n, and hot keys are not neighbours', () => {
    const itemCount = 10_000;
    const chooser = new ScrambledZipfianChooser(itemCount);
    const random = new Random(3);
    const counts = new Map<number, number>();
    let outOfRange = 0;
    for (let i = 0; i < 100_000; i++) {
      const key = chooser.next(random, itemCount);
      if (!(key >= 0 && key < itemCount && Number.isInteger(key))) outOfRange++;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    expect(outOfRange).toBe(0);
    const sorted = [...counts.entries()].sort((a, b) => b[1] - a[1]);
    expect(sorted[0][0]).toBe(Number(fnv1a64(0) % BigInt(itemCount)));
    expect(sorted[1][0]).toBe(Number(fnv1a64(1) % BigInt(itemCount)));
    expect(Math.abs(sorted[0][0] - sorted[1][0])).toBeGreaterThan(1);
  });

  it('latest favours the most recently inserted keys and follows growth', () => {
    const chooser = new LatestChooser(1000);
    const random = new Random(5);
    let newest = 0;
    for (let i = 0; i < 10_000; i++) if (chooser.next(random, 1000) === 999) newest++;
    expect(newest / 10_000).toBeGreaterThan(0.1);
    for (let i = 0; i < 1000; i++) {
      const key = chooser.next(random, 2000);
      expect(key).toBeLessThan(2000);
      expect(key).toBeGreaterThanOrEqual(0);
    }
  });
});

describe('mix', () => {
  it('parses a custom mix and rejects bad ones', () => {
    expect(parseMix('read=0.9,update=0.1')).toEqual({ read: 0.9, update: 0.1 });
    expect(parseMix('read=0.5,rmw=0.5')).toEqual({ read: 0.5, readModifyWrite: 0.5 });
    expect(() => parseMix('read=0.9')).toThrow(/sum to 1/);
    expect(() => parseMix('read=0.9,delete=0.1')).toThrow(/INVALID|operation/);
    expect(() => parseMix('read=abc')).toThrow(/proportion/);
    expect(() => parseMix('read=0.5,read=0.5')).toThrow(/twice/);
  });

  it('draws operation types in the configured proportions', () => {
    const workload = new Workload(
      { mix: { read: 0.7, update: 0.2, readModifyWrite: 0.1 }, distribution: 'uniform', keyCount: 100, valueSizeBytes: 8, keyPrefix: 'k:', scanLengthMax: 10 },
      new Random(1),
    );
    const random = new Random(11);
    const counts = { read: 0, update: 0, readModifyWrite: 0, insert: 0, scan: 0 };
    const draws = 100_000;
    for (let i = 0; i < draws; i++) counts[workload.next(random).type]++;
    expect(counts.read / draws).toBeCloseTo(0.7, 2);
    expect(counts.update / draws).toBeCloseTo(0.2, 2);
    expect(counts.readModifyWrite / draws).toBeCloseTo(0.1, 2);
    expect(counts.insert + counts.scan).toBe(0);
  });

  it('workload E scans consecutive keys and D inserts new keys that reads reach once acknowledged', () => {
    const scan = new Workload({ ...WORKLOAD_PRESETS.E, keyCount: 1000, valueSizeBytes: 4, keyPrefix: 'k:', scanLengthMax: 20 }, new Random(2));
    const random = new Random(4);
    for (let i = 0; i < 200; i++) {
      const operation = scan.next(random);
      if (operation.type !== 'scan') continue;
      expect(operation.keys.length).toBeGreaterThanOrEqual(1);
      expect(operation.keys.length).toBeLessThanOrEqual(20);
      expect([...operation.keys].sort()).toEqual(operation.keys);
    }
    const latest = new Workload({ ...WORKLOAD_PRESETS.D, keyCount: 10, valueSizeBytes: 4, keyPrefix: 'k:', scanLengthMax: 1 }, new Random(2));
    let inserted = 0;
    for (let i = 0; i < 2000; i++) {
      const operation = latest.next(random);
      if (operation.type === 'read') expect(operation.key < keyName('k:', latest.inserts.count)).toBe(true);
      if (operation.type === 'insert') {
        expect(operation.key).toBe(keyName('k:', 10 + inserted));
        inserted++;
        latest.completed(operation);
      }
    }
    expect(latest.inserts.count).toBe(10 + inserted);
  });

  it('acknowledged counter only advances over contiguous completions', () => {
    const counter = new AcknowledgedCounter(5);
    const a = counter.allocate();
    const b = counter.allocate();
    const c = counter.allocate();
    counter.acknowledge(c);
    expect(counter.count).toBe(5);
    counter.acknowledge(a);
    expect(counter.count).toBe(6);
    counter.acknowledge(b);
    expect(counter.count).toBe(8);
  });
});
