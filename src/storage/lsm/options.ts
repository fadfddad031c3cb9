import { PaxosStoreError } from '../../errors.js';
import { VALUE_BYTES_MAX_DEFAULT } from '../engine.js';
import type { FileSystem } from '../file-system.js';
import { RealFileSystem } from '../real-file-system.js';

/** Knobs of one LSM tree; every size ends in its unit. Validated once, in `resolveOptions`. */
export interface LsmOptions {
  /** Directory holding MANIFEST, *.wal and *.sst; created if missing. */
  readonly directory: string;
  /** Default: the real disk. A SimulatedFileSystem runs the same code with injected crashes. */
  readonly fileSystem?: FileSystem;
  /** Largest value accepted (default 16 MiB). */
  readonly valueBytesMax?: number;
  /** The active memtable is frozen and flushed to L0 past this size (default 4 MiB). */
  readonly memtableBytesMax?: number;
  /** Frozen memtables waiting for their flush; writes wait beyond this (default 2). */
  readonly immutableMemtablesMax?: number;
  /** Uncompressed data block size target (default 4 KiB). */
  readonly blockBytes?: number;
  /** Bloom filter bits per key; ≈1 % false positives at 10 (default 10). */
  readonly bloomBitsPerKey?: number;
  /** Compress data blocks with lz4 when it saves ≥ 1/8 (default true). */
  readonly compression?: boolean;
  /** Size target of one SSTable written by compaction (default 2 MiB). */
  readonly tableBytesTarget?: number;
  /** L0 → L1 compaction starts at this many L0 tables (default 4). */
  readonly level0CompactionTrigger?: number;
  /** Size limit of level 1 (default 10 MiB); level n holds fanOut^(n-1) times that. */
  readonly level1BytesMax?: number;
  /** Size ratio between adjacent levels (default 10). */
  readonly levelFanOut?: number;
  /** Decoded data blocks kept in memory (default 8 MiB). */
  readonly blockCacheBytes?: number;
  /** Writes queued behind the current group commit beyond this are refused with OVERLOADED (default 64 MiB). */
  readonly writeQueueBytesMax?: number;
  /** Where flushes and compactions run: 'worker' (piscina; real disk only) or 'inline'. Default: worker on the real disk. */
  readonly backgroundThread?: 'worker' | 'inline';
}

export type ResolvedLsmOptions = Required<LsmOptions>;

export const LEVELS_MAX = 7;

function positiveInteger(name: string, value: number | undefined, fallback: number, minimum = 1): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < minimum) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `LSM option ${name} must be an integer ≥ ${minimum}; got ${String(value)}`);
  }
  return value;
}

export function resolveOptions(options: LsmOptions): ResolvedLsmOptions {
  if (options === null || typeof options !== 'object' || typeof options.directory !== 'string' || options.directory === '') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'LSM options need a directory');
  }
  const fileSystem = options.fileSystem ?? new RealFileSystem();
  const backgroundThread = options.backgroundThread ?? (fileSystem instanceof RealFileSystem ? 'worker' : 'inline');
  if (backgroundThread !== 'worker' && backgroundThread !== 'inline') {
    throw new PaxosStoreError('INVALID_ARGUMENT', `LSM option backgroundThread must be 'worker' or 'inline'`);
  }
  if (backgroundThread === 'worker' && !(fileSystem instanceof RealFileSystem)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'a worker thread cannot reach an in-memory file system; use backgroundThread: inline');
  }
  return {
    directory: options.directory,
    fileSystem,
    valueBytesMax: positiveInteger('valueBytesMax', options.valueBytesMax, VALUE_BYTES_MAX_DEFAULT, 0),
    memtableBytesMax: positiveInteger('memtableBytesMax', options.memtableBytesMax, 4 * 1024 * 1024),
    immutableMemtablesMax: positiveInteger('immutableMemtablesMax', options.immutableMemtablesMax, 2),
    blockBytes: positiveInteger('blockBytes', options.blockBytes, 4096, 64),
    bloomBitsPerKey: positiveInteger('bloomBitsPerKey', options.bloomBitsPerKey, 10),
    compression: options.compression ?? true,
    tableBytesTarget: positiveInteger('tableBytesTarget', options.tableBytesTarget, 2 * 1024 * 1024, 64),
    level0CompactionTrigger: positiveInteger('level0CompactionTrigger', options.level0CompactionTrigger, 4, 2),
    level1BytesMax: positiveInteger('level1BytesMax', options.level1BytesMax, 10 * 1024 * 1024),
    levelFanOut: positiveInteger('levelFanOut', options.levelFanOut, 10, 2),
    blockCacheBytes: positiveInteger('blockCacheBytes', options.blockCacheBytes, 8 * 1024 * 1024, 0),
    writeQueueBytesMax: positiveInteger('writeQueueBytesMax', options.writeQueueBytesMax, 64 * 1024 * 1024),
    backgroundThread,
  };
}
