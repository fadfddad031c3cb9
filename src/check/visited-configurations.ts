/**
 * The search's memory of configurations already explored: (set of linearized operations,
 * register state). The set is identified by Zobrist hashes (one random word per operation,
 * XORed in and out), so adding or removing an operation costs O(1).
 *
 * Two precisions:
 * - 'fingerprint': a set is remembered by two independent 32-bit Zobrist words (64 bits) and
 *   the exact state. Small and fast; two different sets collide with probability ~2^-64 per
 *   pair (about 3e-8 over a million configurations). A collision can only prune a configuration
 *   wrongly, i.e. turn a linearizable verdict into a violation, never the other way round (a
 *   witness found is a witness), so the checker confirms every violation with 'exact'.
 * - 'exact': the full bitset is stored and compared; memory grows with (configurations × n/8).
 */
import { Random } from '../util/random.js';
import { type RegisterState, statesEqual } from './model.js';

export type CachePrecision = 'fingerprint' | 'exact';

/** Rough per-entry overhead of the Map bucket and the entry object. */
const ENTRY_OVERHEAD_BYTES = 64;
/** Fixed, so that runs (and step counts) are reproducible. */
const ZOBRIST_SEED = 0x5eed;

interface Remembered {
  readonly check: number;
  readonly bits: Uint32Array | undefined;
  readonly state: RegisterState;
}

export class VisitedConfigurations {
  /** Estimated memory held, for the cache budget. */
  bytes = 0;
  private readonly bits: Uint32Array | undefined;
  private readonly zobrist: Uint32Array;
  private readonly zobristCheck: Uint32Array;
  private hash = 0;
  private check = 0;
  private readonly buckets = new Map<number, Remembered[]>();

  constructor(operationCount: number, precision: CachePrecision) {
    const random = new Random(ZOBRIST_SEED);
    this.zobrist = Uint32Array.from({ length: operationCount }, () => random.uint32());
    this.zobristCheck = Uint32Array.from({ length: operationCount }, () => random.uint32());
    this.bits = precision === 'exact' ? new Uint32Array(Math.ceil(operationCount / 32)) : undefined;
  }

  /** Adds `operation` to the current set if absent, removes it if present. */
  toggle(operation: number): void {
    if (this.bits !== undefined) this.bits[operation >>> 5] ^= 1 << (operation & 31);
    this.hash ^= this.zobrist[operation];
    this.check ^= this.zobristCheck[operation];
  }

  /** Records (current set, state); false when it was already recorded. */
  remember(state: RegisterState): boolean {
    const key = (this.hash ^ Math.imul(state.hash, 0x9e3779b1)) >>> 0;
    let bucket = this.buckets.get(key);
    if (bucket === undefined) this.buckets.set(key, (bucket = []));
    for (const entry of bucket) {
      if (entry.check === this.check && this.sameBits(entry.bits) && statesEqual(entry.state, state)) return false;
    }
    const bits = this.bits?.slice();
    bucket.push({ check: this.check, bits, state });
    this.bytes += ENTRY_OVERHEAD_BYTES + (bits?.byteLength ?? 0);
    return true;
  }

  private sameBits(other: Uint32Array | undefined): boolean {
    const bits = this.bits;
    if (bits === undefined || other === undefined) return true;
    for (let i = 0; i < bits.length; i++) if (bits[i] !== other[i]) return false;
    return true;
  }
}
