/**
 * Per-seed fault rates of the simulator. Each seed draws its own profile, so a run of many seeds
 * covers calm networks and hostile ones, fast disks and slow ones, with and without crashes.
 */
import type { Random } from '../util/random.js';

export interface FaultProfile {
  /** Probability that one message is lost. */
  readonly dropRate: number;
  /** Probability that one message is delivered twice (independent delays, so also reordered). */
  readonly duplicateRate: number;
  /** Message delay is uniform in [delayTicksMin, delayTicksMax]; spread means reordering. */
  readonly delayTicksMin: number;
  readonly delayTicksMax: number;
  /** Per tick, probability that a partition starts (when none is active). */
  readonly partitionRate: number;
  readonly partitionTicksMax: number;
  /** Per tick, probability that a live replica crashes (losing everything not yet durable). */
  readonly crashRate: number;
  readonly downTicksMax: number;
  /** Per tick, probability that a live replica crashes AND loses its disk (restarts rebuilding). */
  readonly wipeRate: number;
  /** A group commit takes uniform [1, diskTicksMax] ticks; a slow one up to slowDiskTicksMax. */
  readonly diskTicksMax: number;
  readonly slowDiskRate: number;
  readonly slowDiskTicksMax: number;
}

export function randomFaultProfile(random: Random): FaultProfile {
  const pickRate = (rates: readonly number[]): number => random.pick(rates);
  const delayTicksMin = random.range(1, 3);
  return {
    dropRate: pickRate([0, 0, 0.01, 0.05, 0.1, 0.2]),
    duplicateRate: pickRate([0, 0.01, 0.05, 0.1]),
    delayTicksMin,
    delayTicksMax: delayTicksMin + random.pick([0, 2, 5, 10, 25]),
    partitionRate: pickRate([0, 0, 0.002, 0.005, 0.01]),
    partitionTicksMax: random.range(20, 300),
    crashRate: pickRate([0, 0.001, 0.002, 0.005, 0.01, 0.02]),
    downTicksMax: random.range(5, 200),
    wipeRate: pickRate([0, 0, 0, 0.0005, 0.001, 0.002]),
    diskTicksMax: random.pick([1, 2, 3, 4, 10, 30]),
    slowDiskRate: pickRate([0, 0, 0.05, 0.2]),
    slowDiskTicksMax: random.range(10, 80),
  };
}

export function describeProfile(profile: FaultProfile): string {
  return [
    `drop ${profile.dropRate}`,
    `dup ${profile.duplicateRate}`,
    `delay ${profile.delayTicksMin}-${profile.delayTicksMax}`,
    `partition ${profile.partitionRate}/tick ≤${profile.partitionTicksMax}`,
    `crash ${profile.crashRate}/tick down ≤${profile.downTicksMax}`,
    `wipe ${profile.wipeRate}/tick`,
    `disk ≤${profile.diskTicksMax} slow ${profile.slowDiskRate} ≤${profile.slowDiskTicksMax}`,
  ].join(', ');
}
