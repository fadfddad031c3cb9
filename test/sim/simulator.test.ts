/**
 * The seeded simulator over many seeds per replica count (issue 3 CI figure). SIM_SEEDS raises
 * the number of seeds (e.g. SIM_SEEDS=2000); a failure prints the command that reproduces it.
 */
import { describe, expect, it } from 'vitest';
import { describeReport, runSeed, type SeedReport } from '../../src/sim/run-seed.js';

const seedsFor = (replicaCount: 3 | 5): number => {
  const configured = Number(process.env.SIM_SEEDS ?? 0);
  if (configured > 0) return configured;
  return replicaCount === 3 ? 500 : 300;
};

function runSeeds(replicaCount: 3 | 5, count: number): { failures: SeedReport[]; operations: number; unknown: number } {
  const failures: SeedReport[] = [];
  let operations = 0;
  let unknown = 0;
  for (let seed = 1; seed <= count; seed++) {
    const report = runSeed({ seed, replicaCount });
    operations += report.operations;
    unknown += report.outcomes.unknown;
    if (report.verdict !== 'ok') failures.push(report);
  }
  return { failures, operations, unknown };
}

describe('deterministic simulator', () => {
  for (const replicaCount of [3, 5] as const) {
    it(`keeps ${replicaCount} replicas linearizable and live over ${seedsFor(replicaCount)} seeds`, () => {
      const { failures, operations, unknown } = runSeeds(replicaCount, seedsFor(replicaCount));
      expect(failures.map(describeReport)).toEqual([]);
      // The runs must have done real work, including indeterminate outcomes the checker must handle.
      expect(operations).toBeGreaterThan(seedsFor(replicaCount) * 30);
      expect(unknown).toBeGreaterThan(0);
    });
  }

  it('replays a seed exactly', () => {
    const first = runSeed({ seed: 77, replicaCount: 3 });
    const second = runSeed({ seed: 77, replicaCount: 3 });
    expect(second).toEqual(first);
    expect(first.reproduce).toBe('npm run sim -- --seed 77 --replicas 3');
  });
});
