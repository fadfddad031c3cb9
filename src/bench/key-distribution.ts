/**
 * Key choosers for the benchmark workloads: uniform, zipfian (YCSB's scrambled zipfian) and
 * latest (YCSB's skewed-latest). Each returns a key index in [0, itemCount).
 *
 * The zipfian sampler is the one of Gray et al., "Quickly Generating Billion-Record Synthetic
 * Databases" (SIGMOD 1994), which YCSB uses: with zeta(n) = sum_{i=1..n} 1/i^theta,
 *
 *   u ∈ [0,1), uz = u * zeta(n)
 *   uz < 1                → rank 0
 *   uz < 1 + 0.5^theta    → rank 1
 *   otherwise             → floor(n * (eta*u - eta + 1)^alpha)
 *   alpha = 1 / (1 - theta), eta = (1 - (2/n)^(1-theta)) / (1 - zeta(2)/zeta(n))
 *
 * zeta(n) costs n powers, so it is computed incrementally: when the item count grows (inserts in
 * workload D), only the new terms are added. Rank 0 is the most popular item.
 */

import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { Random } from '../util/random.js';

export type KeyDistributionName = 'uniform' | 'zipfian' | 'latest';

export const ZIPFIAN_THETA_DEFAULT = 0.99;

/** A key chooser; `itemCount` is how many keys exist now (grows with inserts). */
export interface KeyChooser {
  next(random: Random, itemCount: number): number;
}

export class UniformChooser implements KeyChooser {
  next(random: Random, itemCount: number): number {
    assert(itemCount > 0, 'uniform chooser needs at least one item');
    return random.int(itemCount);
  }
}

/** Zipfian over ranks [0, itemCount), rank 0 most popular; zeta grows incrementally with itemCount. */
export class ZipfianGenerator {
  private itemCount = 0;
  private zetaN = 0;
  private readonly zeta2: number;
  private readonly alpha: number;
  private eta = 0;

  constructor(
    initialItemCount: number,
    readonly theta: number = ZIPFIAN_THETA_DEFAULT,
  ) {
    if (!(theta > 0 && theta < 1)) throw new PaxosStoreError('INVALID_ARGUMENT', `zipfian theta must be in (0, 1), got ${theta}`);
    if (!Number.isSafeInteger(initialItemCount) || initialItemCount < 1) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `zipfian needs a positive integer item count, got ${initialItemCount}`);
    }
    this.zeta2 = 1 + 0.5 ** theta;
    this.alpha = 1 / (1 - theta);
    this.growTo(initialItemCount);
  }

  get items(): number {
    return this.itemCount;
  }

  get zeta(): number {
    return this.zetaN;
  }

  /** Extends zeta(n) by the terms itemCount+1..newItemCount; shrinking is never needed (keys are never removed). */
  growTo(newItemCount: number): void {
    assert(newItemCount >= this.itemCount, 'zipfian item count only grows');
    if (newItemCount === this.itemCount) return;
    let sum = this.zetaN;
    for (let i = this.itemCount + 1; i <= newItemCount; i++) sum += 1 / i ** this.theta;
    this.zetaN = sum;
    this.itemCount = newItemCount;
    this.eta = (1 - (2 / newItemCount) ** (1 - this.theta)) / (1 - this.zeta2 / this.zetaN);
  }

  /** Rank in [0, itemCount). */
  nextRank(random: Random, itemCount: number = this.itemCount): number {
    if (itemCount !== this.itemCount) this.growTo(itemCount);
    const u = random.float();
    const uz = u * this.zetaN;
    if (uz < 1) return 0;
    if (uz < this.zeta2) return Math.min(1, this.itemCount - 1);
    const rank = Math.floor(this.itemCount * (this.eta * u - this.eta + 1) ** this.alpha);
    // The closed form can reach itemCount for u → 1 through rounding; clamp to the last rank.
    return Math.min(rank, this.itemCount - 1);
  }
}

/**
 * 64-bit FNV-1a of the 8 little-endian bytes of a value, as YCSB's `Utils.fnvhash64` does for
 * scrambling. BigInt is slow but this runs once per operation, well below a network round trip.
 */
const FNV_OFFSET_BASIS = 0xcbf29ce484222325n;
const FNV_PRIME = 0x100000001b3n;
const MASK_64 = (1n << 64n) - 1n;

export function fnv1a64(value: number): bigint {
  let hash = FNV_OFFSET_BASIS;
  let rest = BigInt(value);
  for (let i = 0; i < 8; i++) {
    hash ^= rest & 0xffn;
    hash = (hash * FNV_PRIME) & MASK_64;
    rest >>= 8n;
  }
  return hash;
}

/**
 * Scrambled zipfian: the popular ranks are spread over the key space by hashing, so the hot keys
 * are not all neighbours (which would put them on the same shard or page). The popularity is
 * over the initial key count: keys inserted during the run are reached by the `latest` chooser,
 * and rehashing over a growing count would move every hot key at each insert.
 */
export class ScrambledZipfianChooser implements KeyChooser {
  private readonly zipfian: ZipfianGenerator;
  private readonly rankToKey: Map<number, number> = new Map();
  private static readonly cacheEntriesMax = 1 << 16;

  constructor(
    private readonly itemCount: number,
    theta: number = ZIPFIAN_THETA_DEFAULT,
  ) {
    this.zipfian = new ZipfianGenerator(itemCount, theta);
  }

  /** The key index a rank maps to (rank 0 is the hottest key). */
  keyOfRank(rank: number): number {
    const cached = this.rankToKey.get(rank);
    if (cached !== undefined) return cached;
    const key = Number(fnv1a64(rank) % BigInt(this.itemCount));
    // The hot ranks repeat constantly; cache them (bounded) to avoid the BigInt hash on the hot path.
    if (this.rankToKey.size < ScrambledZipfianChooser.cacheEntriesMax) this.rankToKey.set(rank, key);
    return key;
  }

  next(random: Random, _itemCount: number): number {
    return this.keyOfRank(this.zipfian.nextRank(random, this.itemCount));
  }
}

/** Skewed towards the most recently inserted keys: key = itemCount - 1 - zipfianRank. */
export class LatestChooser implements KeyChooser {
  private readonly zipfian: ZipfianGenerator;

  constructor(initialItemCount: number, theta: number = ZIPFIAN_THETA_DEFAULT) {
    this.zipfian = new ZipfianGenerator(initialItemCount, theta);
  }

  next(random: Random, itemCount: number): number {
    return itemCount - 1 - this.zipfian.nextRank(random, itemCount);
  }
}

export function createKeyChooser(name: KeyDistributionName, itemCount: number, theta: number = ZIPFIAN_THETA_DEFAULT): KeyChooser {
  switch (name) {
    case 'uniform':
      return new UniformChooser();
    case 'zipfian':
      return new ScrambledZipfianChooser(itemCount, theta);
    case 'latest':
      return new LatestChooser(itemCount, theta);
  }
}
