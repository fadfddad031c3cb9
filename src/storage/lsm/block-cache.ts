import type { Block } from './block.js';

/**
 * A byte-bounded LRU of decoded data blocks shared by every table of one tree. A Map keeps
 * insertion order, so re-inserting on a hit makes the first key the least recently used.
 * Keys are `tableNumber · 2^20 + blockIndex` (exact in a double while table numbers stay below
 * 2^33 and tables below 2^20 blocks, which the table writer asserts).
 */
export class BlockCache {
  private readonly blocks = new Map<number, Block>();
  private usedBytes = 0;
  hits = 0;
  misses = 0;

  constructor(readonly capacityBytes: number) {}

  static keyOf(tableNumber: number, blockIndex: number): number {
    return tableNumber * 1048576 + blockIndex;
  }

  get(key: number): Block | undefined {
    const block = this.blocks.get(key);
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.blocks.delete(key);
    this.blocks.set(key, block);
    return block;
  }

  insert(key: number, block: Block): void {
    if (block.bytes.length > this.capacityBytes) return;
    const previous = this.blocks.get(key);
    if (previous) {
      this.blocks.delete(key);
      this.usedBytes -= previous.bytes.length;
    }
    this.blocks.set(key, block);
    this.usedBytes += block.bytes.length;
    while (this.usedBytes > this.capacityBytes) {
      const oldest = this.blocks.keys().next().value as number;
      this.usedBytes -= this.blocks.get(oldest)!.bytes.length;
      this.blocks.delete(oldest);
    }
  }

  /** Drops every block of a table that was deleted, so its memory is not held until eviction. */
  evictTable(tableNumber: number, blockCount: number): void {
    for (let index = 0; index < blockCount; index++) {
      const key = BlockCache.keyOf(tableNumber, index);
      const block = this.blocks.get(key);
      if (block) {
        this.usedBytes -= block.bytes.length;
        this.blocks.delete(key);
      }
    }
  }

  get sizeBytes(): number {
    return this.usedBytes;
  }
}
