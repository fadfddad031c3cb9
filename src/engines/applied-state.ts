/**
 * The applied state of one replica: the LocalStore (durable) plus the writes of entries applied
 * since the last flush (memory only). Applying an entry stages its writes here; a periodic flush
 * writes everything staged, with the cursor, as one durable LocalStore batch.
 *
 *   readers ──► unflushed writes (Map, newest value per key) ──miss──► LocalStore (LsmTree)
 *
 *   flush = one atomic LsmTree batch: [staged writes…, E/cursor = [position after the last entry]]
 *
 * Why this is safe: the log is durable before an entry is applied, so a crash loses only writes
 * the log still holds; on restart the cursor names the first entry the LocalStore lacks and
 * playback applies them again (apply is deterministic). The log must not be trimmed above a
 * replica's flushed cursor: ViewTracking reports flushed positions and BaseEngine trims at most
 * to its own flushed cursor.
 *
 * Snapshots share the staged Map copy-on-write: taking one costs O(1); the next stage or flush
 * after it copies the Map once (it holds at most one flush interval of writes).
 */
import type { IterateOptions, OrderedKvEngine, ReadView, WriteOperation } from '../storage/engine.js';
import { compareBytes } from '../storage/engine.js';
import { keyName } from '../util/byte-codec.js';
import type { ReadOnlySnapshot } from './types.js';

type Entry = [key: Uint8Array, value: Uint8Array];

export class AppliedState implements ReadView {
  private unflushed = new Map<string, WriteOperation>();
  /** A snapshot holds the current Map: copy before changing it. */
  private shared = false;

  constructor(private readonly store: OrderedKvEngine) {}

  /** Keys written since the last flush. */
  get unflushedKeys(): number {
    return this.unflushed.size;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return readThrough(this.unflushed, this.store, key);
  }

  iterate(options: IterateOptions = {}): IterableIterator<Entry> {
    return mergeUnflushed(this.store.iterate({ ...options, limit: undefined }), this.unflushed, options);
  }

  /** The writes of one applied entry (visible to readers at once, durable at the next flush). */
  stage(operations: readonly WriteOperation[]): void {
    if (operations.length === 0) return;
    const unflushed = this.writable();
    for (const operation of operations) unflushed.set(keyName(operation.key), operation);
  }

  /**
   * Writes everything staged plus `extra` (the cursor) in one durable batch. Writes staged while
   * the batch is in flight stay staged for the next flush. On failure nothing is dropped.
   */
  async flush(extra: readonly WriteOperation[]): Promise<void> {
    const flushing = [...this.unflushed.values()];
    await this.store.batch([...flushing, ...extra]);
    const unflushed = this.writable();
    for (const operation of flushing) {
      const name = keyName(operation.key);
      // Only if not overwritten meanwhile (the LocalStore now holds exactly this write).
      if (unflushed.get(name) === operation) unflushed.delete(name);
    }
  }

  snapshot(): ReadOnlySnapshot {
    const snapshot = this.store.snapshot();
    const unflushed = this.unflushed;
    this.shared = true;
    return {
      get: (key) => readThrough(unflushed, snapshot, key),
      iterate: (options = {}) => mergeUnflushed(snapshot.iterate({ ...options, limit: undefined }), unflushed, options),
      release: () => snapshot.release(),
    };
  }

  private writable(): Map<string, WriteOperation> {
    if (this.shared) {
      this.unflushed = new Map(this.unflushed);
      this.shared = false;
    }
    return this.unflushed;
  }
}

function readThrough(unflushed: ReadonlyMap<string, WriteOperation>, store: ReadView, key: Uint8Array): Uint8Array | undefined {
  if (unflushed.size > 0) {
    const write = unflushed.get(keyName(key));
    if (write !== undefined) return write.type === 'put' ? write.value : undefined;
  }
  return store.get(key);
}

function inRange(key: Uint8Array, options: IterateOptions): boolean {
  if (options.start !== undefined && compareBytes(key, options.start) < 0) return false;
  if (options.end !== undefined && compareBytes(key, options.end) >= 0) return false;
  const prefix = options.prefix;
  if (prefix !== undefined && (key.length < prefix.length || compareBytes(key.subarray(0, prefix.length), prefix) !== 0)) return false;
  return true;
}

/** The store's entries (already in range and order, without limit) merged with the unflushed writes. */
function* mergeUnflushed(stored: Iterator<Entry>, unflushed: ReadonlyMap<string, WriteOperation>, options: IterateOptions): IterableIterator<Entry> {
  const direction = options.reverse ? -1 : 1;
  const writes = [...unflushed.values()].filter((write) => inRange(write.key, options));
  writes.sort((a, b) => direction * compareBytes(a.key, b.key));
  let remaining = options.limit ?? Number.POSITIVE_INFINITY;
  let next = stored.next();
  let index = 0;
  while (remaining > 0 && (!next.done || index < writes.length)) {
    const write = writes[index] as WriteOperation | undefined;
    const order = next.done ? 1 : write === undefined ? -1 : direction * compareBytes(next.value[0], write.key);
    if (order < 0) {
      remaining--;
      yield next.value as Entry;
      next = stored.next();
      continue;
    }
    // The unflushed write is newer than whatever the store holds for that key.
    if (order === 0) next = stored.next();
    index++;
    if (write!.type === 'put') {
      remaining--;
      yield [write!.key, write!.value];
    }
  }
}
