import { isPaxosStoreError } from '../../errors.js';
import { compareBytes } from '../engine.js';
import { type FileSystem, joinPath } from '../file-system.js';
import { compareInternal, ENTRY_HEADER_BYTES, equalBytes, KIND_PUT, KIND_TOMBSTONE, readUint64, SEQUENCE_MAX } from './codec.js';
import type { InternalIterator } from './internal-iterator.js';
import { LevelIterator } from './iterator.js';
import { type Table, type TableMetadata, TableWriter, tableFileName } from './sstable.js';
import { Table as TableReader } from './sstable.js';

/**
 * Background jobs: a memtable flush (packed entries → L0 tables) and a compaction (tables of
 * level n and the overlapping tables of level n+1 → new tables of level n+1). Both run the same
 * function, `runJob`, on a piscina worker for the real disk or inline for the simulated one; the
 * job and its result are plain data (they cross a thread boundary), and the worker only creates
 * new files — installing them in the manifest and deleting inputs is the tree's business.
 *
 * What a job keeps, for each user key (entries arrive newest first):
 * - every version newer than the job's horizon (a write that landed while the job was prepared);
 * - the newest version at or below the horizon; older versions are dropped. Live snapshots do
 *   not hold versions back here: they pin the memtables and tables they started on, and those
 *   files are deleted only after the last reader releases them;
 * - that newest version is dropped too when it is a tombstone and the output level is the
 *   bottom of the tree for this range (nothing older below it could be resurrected).
 */

export interface JobSettings {
  readonly directory: string;
  /** Output tables are numbered from here on (only the serialized background loop allocates these). */
  readonly tableNumberFirst: number;
  readonly tableBytesTarget: number;
  readonly blockBytes: number;
  readonly bloomBitsPerKey: number;
  readonly compress: boolean;
  /**
   * The tree's visible sequence when the job starts. Snapshots and iterators read the files of the
   * version they pinned, never a job's output, so versions hidden by a newer one at or below this
   * sequence have no reader left.
   */
  readonly horizonSequence: number;
  readonly bottommost: boolean;
}

export type BackgroundJob =
  | { readonly kind: 'flush'; readonly settings: JobSettings; readonly packedEntries: Uint8Array }
  | {
      readonly kind: 'compact';
      readonly settings: JobSettings;
      /** Each run is a list of table numbers in key order; runs may overlap each other. */
      readonly runs: readonly (readonly number[])[];
    };

export type JobResult =
  | { readonly ok: true; readonly tables: TableMetadata[] }
  | { readonly ok: false; readonly code: string; readonly message: string };

/** Forward-only cursor over packed entries (memtable.pack()). */
class PackedIterator implements InternalIterator {
  private position = 0;
  private readonly view: DataView;

  constructor(private readonly data: Uint8Array) {
    this.view = new DataView(data.buffer, data.byteOffset, data.length);
  }
  valid(): boolean {
    return this.position < this.data.length;
  }
  private keyLength(): number {
    return this.view.getUint32(this.position + 9);
  }
  key(): Uint8Array {
    const start = this.position + ENTRY_HEADER_BYTES;
    return this.data.subarray(start, start + this.keyLength());
  }
  sequence(): number {
    return readUint64(this.view, this.position + 1);
  }
  isTombstone(): boolean {
    return this.data[this.position] === KIND_TOMBSTONE;
  }
  value(): Uint8Array {
    const start = this.position + ENTRY_HEADER_BYTES + this.keyLength();
    return this.data.subarray(start, start + this.view.getUint32(this.position + 13));
  }
  seekToFirst(): void {
    this.position = 0;
  }
  next(): void {
    this.position += ENTRY_HEADER_BYTES + this.keyLength() + this.view.getUint32(this.position + 13);
  }
  seek(): void {
    throw new Error('PackedIterator is forward-only');
  }
  seekBefore(): void {
    throw new Error('PackedIterator is forward-only');
  }
  seekToLast(): void {
    throw new Error('PackedIterator is forward-only');
  }
  prev(): void {
    throw new Error('PackedIterator is forward-only');
  }
}

/** Raw k-way merge in internal-key order (all versions, no visibility rule). */
function nextSmallest(inputs: readonly InternalIterator[]): InternalIterator | null {
  let smallest: InternalIterator | null = null;
  for (const input of inputs) {
    if (!input.valid()) continue;
    if (smallest === null || compareInternal(input.key(), input.sequence(), smallest.key(), smallest.sequence()) < 0) smallest = input;
  }
  return smallest;
}

async function writeMerged(fileSystem: FileSystem, inputs: readonly InternalIterator[], settings: JobSettings): Promise<TableMetadata[]> {
  for (const input of inputs) input.seekToFirst();
  const outputs: TableMetadata[] = [];
  let writer: TableWriter | null = null;
  let previousKey: Uint8Array | null = null;
  let newerSequence = SEQUENCE_MAX;
  try {
    for (let input = nextSmallest(inputs); input !== null; input = nextSmallest(inputs)) {
      const key = input.key();
      const sequence = input.sequence();
      const newKey = previousKey === null || !equalBytes(previousKey, key);
      if (newKey) {
        newerSequence = SEQUENCE_MAX;
        // Cut between user keys only, so tables of one level never share a key.
        if (writer !== null && writer.sizeBytes >= settings.tableBytesTarget) {
          outputs.push(await writer.finish());
          writer = null;
        }
      }
      const hiddenByNewer = newerSequence <= settings.horizonSequence;
      const droppableTombstone = input.isTombstone() && sequence <= settings.horizonSequence && settings.bottommost;
      newerSequence = sequence;
      previousKey = key;
      if (!hiddenByNewer && !droppableTombstone) {
        if (writer === null) {
          const number = settings.tableNumberFirst + outputs.length;
          writer = new TableWriter(fileSystem, joinPath(settings.directory, tableFileName(number)), number, settings);
        }
        writer.add(input.isTombstone() ? KIND_TOMBSTONE : KIND_PUT, sequence, key, input.isTombstone() ? null : input.value());
      }
      input.next();
    }
    if (writer !== null) outputs.push(await writer.finish());
    writer = null;
    return outputs;
  } catch (error) {
    writer?.abandon();
    // A failed job leaves no files behind: the tree never learns of them.
    for (let index = 0; index <= outputs.length; index++) fileSystem.remove(joinPath(settings.directory, tableFileName(settings.tableNumberFirst + index)));
    throw error;
  }
}

/** Runs one job against `fileSystem`; never throws (the result says what failed). */
export async function runJob(fileSystem: FileSystem, job: BackgroundJob): Promise<JobResult> {
  const opened: Table[] = [];
  try {
    let inputs: InternalIterator[];
    if (job.kind === 'flush') {
      inputs = [new PackedIterator(job.packedEntries)];
    } else {
      inputs = job.runs.map((run) => {
        const tables = run.map((number) => {
          const table = TableReader.open(fileSystem, joinPath(job.settings.directory, tableFileName(number)), number, null);
          opened.push(table);
          return table;
        });
        return new LevelIterator(tables);
      });
    }
    return { ok: true, tables: await writeMerged(fileSystem, inputs, job.settings) };
  } catch (error) {
    if (isPaxosStoreError(error)) return { ok: false, code: error.code, message: error.message };
    return { ok: false, code: 'INTERNAL', message: error instanceof Error ? (error.stack ?? error.message) : String(error) };
  } finally {
    for (const table of opened) table.close();
  }
}

/** Key range covered by a set of tables. */
export function rangeOf(tables: readonly { smallestKey: Uint8Array; largestKey: Uint8Array }[]): [Uint8Array, Uint8Array] {
  let smallest = tables[0].smallestKey;
  let largest = tables[0].largestKey;
  for (const table of tables) {
    if (compareBytes(table.smallestKey, smallest) < 0) smallest = table.smallestKey;
    if (compareBytes(table.largestKey, largest) > 0) largest = table.largestKey;
  }
  return [smallest, largest];
}

export function overlaps(table: { smallestKey: Uint8Array; largestKey: Uint8Array }, smallest: Uint8Array, largest: Uint8Array): boolean {
  return compareBytes(table.largestKey, smallest) >= 0 && compareBytes(table.smallestKey, largest) <= 0;
}
