/**
 * Workloads: a mix of operation types plus a key distribution, as in YCSB's core workloads.
 *
 *   workload  mix                                   keys      YCSB name
 *   A         read 0.50, update 0.50                zipfian   update heavy
 *   B         read 0.95, update 0.05                zipfian   read mostly
 *   C         read 1.00                             zipfian   read only
 *   D         read 0.95, insert 0.05                latest    read latest
 *   E         scan 0.95, insert 0.05                zipfian   short ranges
 *   F         read 0.50, readModifyWrite 0.50       zipfian   read-modify-write
 *
 * A scan of length L starting at key k reads keys k..k+L-1 in key order (the keys are
 * zero-padded decimal numbers, so key order is index order); targets without a multi-key read
 * cannot run it (see targets). The workload is a pure generator: it draws from an injected seeded
 * Random and never does I/O.
 */

import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { Random } from '../util/random.js';
import { createKeyChooser, type KeyChooser, type KeyDistributionName, ZIPFIAN_THETA_DEFAULT } from './key-distribution.js';

export const OPERATION_TYPES = ['read', 'update', 'insert', 'scan', 'readModifyWrite'] as const;
export type OperationType = (typeof OPERATION_TYPES)[number];

export type OperationMix = Readonly<Partial<Record<OperationType, number>>>;

export type WorkloadName = 'A' | 'B' | 'C' | 'D' | 'E' | 'F';

export interface WorkloadPreset {
  mix: OperationMix;
  distribution: KeyDistributionName;
}

export const WORKLOAD_PRESETS: Readonly<Record<WorkloadName, WorkloadPreset>> = {
  A: { mix: { read: 0.5, update: 0.5 }, distribution: 'zipfian' },
  B: { mix: { read: 0.95, update: 0.05 }, distribution: 'zipfian' },
  C: { mix: { read: 1 }, distribution: 'zipfian' },
  D: { mix: { read: 0.95, insert: 0.05 }, distribution: 'latest' },
  E: { mix: { scan: 0.95, insert: 0.05 }, distribution: 'zipfian' },
  F: { mix: { read: 0.5, readModifyWrite: 0.5 }, distribution: 'zipfian' },
};

/** One operation to send; keys are strings so every target (RESP, HTTP, WebSocket) can use them. */
export type BenchOperation =
  | { type: 'read'; key: string }
  | { type: 'update'; key: string; value: Uint8Array }
  | { type: 'insert'; key: string; value: Uint8Array; insertIndex: number }
  | { type: 'scan'; keys: string[] }
  | { type: 'readModifyWrite'; key: string; value: Uint8Array };

export interface WorkloadConfig {
  mix: OperationMix;
  distribution: KeyDistributionName;
  keyCount: number;
  valueSizeBytes: number;
  keyPrefix: string;
  scanLengthMax: number;
  zipfianTheta?: number;
}

/** Accepted mix keys; `rmw` is the short spelling YCSB users type. */
const MIX_ALIASES: Readonly<Record<string, OperationType>> = {
  read: 'read',
  update: 'update',
  insert: 'insert',
  scan: 'scan',
  readModifyWrite: 'readModifyWrite',
  rmw: 'readModifyWrite',
};

/** Parses `read=0.9,update=0.1`; proportions must be ≥ 0 and sum to 1 (± 1e-6). */
export function parseMix(text: string): OperationMix {
  const mix: Partial<Record<OperationType, number>> = {};
  for (const part of text.split(',')) {
    const [name, value, ...rest] = part.split('=');
    const type = MIX_ALIASES[name?.trim() ?? ''];
    const proportion = Number(value);
    if (type === undefined || rest.length > 0 || value === undefined || value.trim() === '' || !Number.isFinite(proportion) || proportion < 0) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `--mix: "${part}" is not <operation>=<proportion> with operation one of ${Object.keys(MIX_ALIASES).join(', ')}`);
    }
    if (mix[type] !== undefined) throw new PaxosStoreError('INVALID_ARGUMENT', `--mix: ${type} given twice`);
    mix[type] = proportion;
  }
  validateMix(mix);
  return mix;
}

export function validateMix(mix: OperationMix): void {
  const total = OPERATION_TYPES.reduce((sum, type) => sum + (mix[type] ?? 0), 0);
  if (Math.abs(total - 1) > 1e-6) throw new PaxosStoreError('INVALID_ARGUMENT', `operation mix must sum to 1, got ${total}`);
}

/** Zero-padded so that lexicographic key order equals index order (scans read neighbours). */
export function keyName(prefix: string, index: number): string {
  return `${prefix}${index.toString().padStart(12, '0')}`;
}

/**
 * Tracks which inserted keys are acknowledged, so reads never target a key whose insert is still
 * in flight (YCSB's acknowledged counter). Completions arrive out of order; the window of
 * completed-but-not-contiguous indexes is bounded by the number of in-flight inserts.
 */
export class AcknowledgedCounter {
  private nextIndex: number;
  private contiguous: number;
  private readonly completedAhead = new Set<number>();

  constructor(initialCount: number) {
    this.nextIndex = initialCount;
    this.contiguous = initialCount;
  }

  /** The next index to insert. */
  allocate(): number {
    return this.nextIndex++;
  }

  acknowledge(index: number): void {
    assert(index < this.nextIndex, 'acknowledged an index never allocated');
    if (index < this.contiguous) return;
    this.completedAhead.add(index);
    while (this.completedAhead.delete(this.contiguous)) this.contiguous++;
  }

  /** Keys [0, count) are all present. */
  get count(): number {
    return this.contiguous;
  }
}

/** Values are drawn from a small pool of printable random strings: allocation off the hot path. */
const VALUE_POOL_SIZE = 32;

export class Workload {
  private readonly thresholds: { type: OperationType; upTo: number }[] = [];
  private readonly chooser: KeyChooser;
  private readonly scanStartChooser: KeyChooser;
  private readonly values: Uint8Array[] = [];
  readonly inserts: AcknowledgedCounter;

  constructor(
    readonly config: WorkloadConfig,
    random: Random,
  ) {
    validateMix(config.mix);
    if (!Number.isSafeInteger(config.keyCount) || config.keyCount < 1) throw new PaxosStoreError('INVALID_ARGUMENT', `--keys must be a positive integer, got ${config.keyCount}`);
    if (!Number.isSafeInteger(config.valueSizeBytes) || config.valueSizeBytes < 0) throw new PaxosStoreError('INVALID_ARGUMENT', `--value-size must be a non-negative integer, got ${config.valueSizeBytes}`);
    if (!Number.isSafeInteger(config.scanLengthMax) || config.scanLengthMax < 1) throw new PaxosStoreError('INVALID_ARGUMENT', `scan length must be a positive integer, got ${config.scanLengthMax}`);
    let cumulative = 0;
    for (const type of OPERATION_TYPES) {
      const proportion = config.mix[type] ?? 0;
      if (proportion === 0) continue;
      cumulative += proportion;
      this.thresholds.push({ type, upTo: cumulative });
    }
    // Floating-point sums can end at 0.9999999; the last bucket takes everything up to 1.
    this.thresholds[this.thresholds.length - 1].upTo = 1;
    const theta = config.zipfianTheta ?? ZIPFIAN_THETA_DEFAULT;
    this.chooser = createKeyChooser(config.distribution, config.keyCount, theta);
    // Scan starts use the configured distribution except `latest`, whose end-of-range starts would make every scan short.
    this.scanStartChooser = config.distribution === 'latest' ? createKeyChooser('zipfian', config.keyCount, theta) : this.chooser;
    this.inserts = new AcknowledgedCounter(config.keyCount);
    for (let i = 0; i < VALUE_POOL_SIZE; i++) {
      const value = new Uint8Array(config.valueSizeBytes);
      for (let j = 0; j < value.length; j++) value[j] = 0x21 + random.int(94);
      this.values.push(value);
    }
  }

  get operationTypes(): OperationType[] {
    return this.thresholds.map((threshold) => threshold.type);
  }

  chooseType(random: Random): OperationType {
    const u = random.float();
    for (const threshold of this.thresholds) if (u < threshold.upTo) return threshold.type;
    return this.thresholds[this.thresholds.length - 1].type;
  }

  valueFor(random: Random): Uint8Array {
    return this.values[random.int(this.values.length)];
  }

  existingKey(random: Random): string {
    return keyName(this.config.keyPrefix, this.chooser.next(random, this.inserts.count));
  }

  next(random: Random): BenchOperation {
    const type = this.chooseType(random);
    switch (type) {
      case 'read':
        return { type, key: this.existingKey(random) };
      case 'update':
      case 'readModifyWrite':
        return { type, key: this.existingKey(random), value: this.valueFor(random) };
      case 'insert': {
        const insertIndex = this.inserts.allocate();
        return { type, key: keyName(this.config.keyPrefix, insertIndex), value: this.valueFor(random), insertIndex };
      }
      case 'scan': {
        const available = this.inserts.count;
        const start = this.scanStartChooser.next(random, available);
        const length = Math.min(1 + random.int(this.config.scanLengthMax), available - start);
        const keys: string[] = [];
        for (let i = 0; i < length; i++) keys.push(keyName(this.config.keyPrefix, start + i));
        return { type, keys };
      }
    }
  }

  /** Called by the load generator when an operation finished (successfully or not). */
  completed(operation: BenchOperation): void {
    // A failed insert still advances the counter: otherwise one error would stall `latest` forever.
    if (operation.type === 'insert') this.inserts.acknowledge(operation.insertIndex);
  }
}
