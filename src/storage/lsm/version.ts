import { compareBytes } from '../engine.js';
import { overlaps, rangeOf } from './compaction.js';
import { LEVELS_MAX, type ResolvedLsmOptions } from './options.js';
import type { Table } from './sstable.js';

/**
 * A Version is one immutable arrangement of tables into levels, the on-disk half of a read
 * view. Readers (snapshots, iterators) hold a reference to the version they started on, and a
 * table holds one reference per version listing it; a table whose count drops to zero is gone
 * from every view and from the durable manifest, so its file can be deleted.
 *
 * Leveled layout (the choice, and why):
 *
 *   L0:  [t9] [t8] [t7]        newest first, may overlap (each is one memtable flush)
 *   L1:  [a..f][g..m][n..z]    disjoint, sorted, ≤ level1BytesMax
 *   L2:  [....][....][....]... disjoint, sorted, ≤ level1BytesMax · fanOut
 *
 * Leveled (rather than tiered) keeps at most one table per level ≥ 1 on a read path, so a range
 * scan merges L0 + one cursor per level: few sources, which is what the scan benchmark and the
 * Delos LocalStore's reads reward. The price is more write amplification (~fanOut per level),
 * acceptable for a store whose hot write path is the WAL.
 */
export class Version {
  /** Holders: the tree while current, plus every snapshot or iterator started on it. */
  references = 0;

  constructor(readonly levels: readonly (readonly Table[])[]) {}

  tables(): Table[] {
    return this.levels.flat();
  }

  levelBytes(level: number): number {
    let total = 0;
    for (const table of this.levels[level] ?? []) total += table.sizeBytes;
    return total;
  }
}

export function emptyLevels(): Table[][] {
  return Array.from({ length: LEVELS_MAX }, () => []);
}

/** Keeps levels ≥ 1 sorted by smallest key (they are disjoint, so this is key order). */
export function sortLevel(tables: Table[]): Table[] {
  return tables.sort((a, b) => compareBytes(a.smallestKey, b.smallestKey));
}

export type CompactionPlan =
  /** A table with nothing below it to merge with moves down a level without being rewritten. */
  | { readonly kind: 'move'; readonly table: Table; readonly level: number }
  | {
      readonly kind: 'compact';
      readonly level: number;
      readonly upper: readonly Table[];
      readonly lower: readonly Table[];
      readonly bottommost: boolean;
    };

export function levelBytesMax(level: number, options: ResolvedLsmOptions): number {
  return options.level1BytesMax * options.levelFanOut ** (level - 1);
}

/**
 * What to compact next, or null. L0 first (its table count slows every read), then the level
 * most over its size limit. Within a level, tables are taken round-robin by key
 * (`compactPointers[level]` is the largest key compacted last time) so every range gets its turn.
 */
export function pickCompaction(version: Version, options: ResolvedLsmOptions, compactPointers: (Uint8Array | null)[]): CompactionPlan | null {
  const levels = version.levels;
  if (levels[0].length >= options.level0CompactionTrigger) return planFor(version, 0, [...levels[0]]);
  let worst = -1;
  let worstScore = 1;
  for (let level = 1; level < LEVELS_MAX - 1; level++) {
    const score = version.levelBytes(level) / levelBytesMax(level, options);
    if (score > worstScore) {
      worst = level;
      worstScore = score;
    }
  }
  if (worst < 0) return null;
  const tables = levels[worst];
  const pointer = compactPointers[worst];
  const next = pointer === null ? undefined : tables.find((table) => compareBytes(table.smallestKey, pointer) > 0);
  return planFor(version, worst, [next ?? tables[0]]);
}

/**
 * One step of a full compaction (everything into the deepest non-empty level, at least L1):
 * all tables of the shallowest non-empty level above it, with their overlaps one level down.
 * Null when the tree is a single sorted level.
 */
export function pickFullCompaction(version: Version): CompactionPlan | null {
  const levels = version.levels;
  let deepest = 1;
  for (let level = 1; level < LEVELS_MAX; level++) if (levels[level].length > 0) deepest = level;
  for (let level = 0; level < deepest; level++) {
    if (levels[level].length > 0) return planFor(version, level, [...levels[level]]);
  }
  return null;
}

function planFor(version: Version, level: number, upper: Table[]): CompactionPlan {
  const [smallest, largest] = rangeOf(upper);
  const lower = version.levels[level + 1].filter((table) => overlaps(table, smallest, largest));
  if (level > 0 && lower.length === 0 && upper.length === 1) return { kind: 'move', table: upper[0], level };
  const [allSmallest, allLargest] = rangeOf([...upper, ...lower]);
  let bottommost = true;
  for (let deeper = level + 2; deeper < LEVELS_MAX && bottommost; deeper++) {
    bottommost = !version.levels[deeper].some((table) => overlaps(table, allSmallest, allLargest));
  }
  return { kind: 'compact', level, upper, lower, bottommost };
}
