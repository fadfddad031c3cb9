import { PaxosStoreError, type ErrorCode, isPaxosStoreError } from '../../errors.js';
import { type FileHandle, type FileSystem, joinPath } from '../file-system.js';
import { HintBuilder } from './hint.js';
import { hintNameOf, mergeDataName } from './layout.js';
import { DECODE_OK, FLAG_TOMBSTONE, decodeRecord, newRecordView, rewriteRecordFlags } from './record.js';

/**
 * The merge job: copy the live records of sealed files into fresh, compact output files with
 * hints. The same function runs on a piscina worker (real disk) and inline (simulated disk):
 * it only reads the immutable sealed files and writes new files, so it never races the engine.
 * The engine decides what is live (it owns the keydir) and, when the job returns, commits the
 * merge with a marker and repoints the keydir entries that did not change meanwhile.
 *
 * Everything crossing the thread boundary is in this module: MergeJob in, MergeReply out.
 */

export interface MergeInput {
  dataName: string;
  /** Offsets of the live records, ascending. */
  offsets: Float64Array;
}

export interface MergeJob {
  directory: string;
  mergeId: number;
  inputs: MergeInput[];
  fileSizeBytesMax: number;
  valueBytesMax: number;
}

/**
 * One element per copied record, in output order (output 0 first, then by offset), which is
 * also the order of the entries in the output hints.
 */
export interface MergeOutcome {
  outputCount: number;
  sourceInput: Uint32Array;
  sourceOffset: Uint32Array;
  outputIndex: Uint32Array;
  outputOffset: Uint32Array;
  recordBytes: Uint32Array;
  bytesWritten: number;
}

export type MergeReply = { ok: true; outcome: MergeOutcome } | { ok: false; code: ErrorCode; message: string };

const CHUNK_BYTES = 1024 * 1024;

class OutputWriter {
  private handle: FileHandle | null = null;
  private hint = new HintBuilder();
  private chunk = new Uint8Array(CHUNK_BYTES);
  private chunkUsed = 0;
  private fileBytes = 0;
  outputCount = 0;
  bytesWritten = 0;

  constructor(
    private readonly fileSystem: FileSystem,
    private readonly job: MergeJob,
  ) {}

  /** Copies one verified record; returns [output index, offset in it]. */
  async add(source: Uint8Array, position: number, total: number, keyStart: number, keyLength: number, flags: number): Promise<[number, number]> {
    if (this.handle !== null && this.fileBytes > 0 && this.fileBytes + total > this.job.fileSizeBytesMax) await this.finishOutput();
    if (this.handle === null) {
      this.handle = this.fileSystem.open(joinPath(this.job.directory, mergeDataName(this.job.mergeId, this.outputCount)), 'create');
      this.outputCount++;
    }
    if (this.chunkUsed + total > this.chunk.length) this.flushChunk();
    const target = total > this.chunk.length ? new Uint8Array(total) : this.chunk;
    const at = target === this.chunk ? this.chunkUsed : 0;
    target.set(source.subarray(position, position + total), at);
    // Batch flags mean nothing outside the original batch; left in, a scan would wait for a commit marker.
    if (flags !== 0) rewriteRecordFlags(target, at, total, 0);
    const offset = this.fileBytes;
    this.hint.add(target, at + (keyStart - position), keyLength, offset, total, false);
    if (target === this.chunk) this.chunkUsed += total;
    else this.handle.append(target);
    this.fileBytes += total;
    return [this.outputCount - 1, offset];
  }

  private flushChunk(): void {
    if (this.chunkUsed === 0 || this.handle === null) return;
    this.handle.append(this.chunk.subarray(0, this.chunkUsed));
    this.chunkUsed = 0;
  }

  async finishOutput(): Promise<void> {
    if (this.handle === null) return;
    this.flushChunk();
    const handle = this.handle;
    this.handle = null;
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
    const dataName = mergeDataName(this.job.mergeId, this.outputCount - 1);
    await this.fileSystem.writeFileAtomic(joinPath(this.job.directory, hintNameOf(dataName)), this.hint.finish(this.fileBytes));
    this.bytesWritten += this.fileBytes;
    this.hint = new HintBuilder();
    this.fileBytes = 0;
  }
}

export async function runMerge(fileSystem: FileSystem, job: MergeJob): Promise<MergeOutcome> {
  const recordCount = job.inputs.reduce((sum, input) => sum + input.offsets.length, 0);
  const outcome: MergeOutcome = {
    outputCount: 0,
    sourceInput: new Uint32Array(recordCount),
    sourceOffset: new Uint32Array(recordCount),
    outputIndex: new Uint32Array(recordCount),
    outputOffset: new Uint32Array(recordCount),
    recordBytes: new Uint32Array(recordCount),
    bytesWritten: 0,
  };
  const writer = new OutputWriter(fileSystem, job);
  const view = newRecordView();
  let copied = 0;
  for (let inputIndex = 0; inputIndex < job.inputs.length; inputIndex++) {
    const input = job.inputs[inputIndex];
    if (input.offsets.length === 0) continue;
    const data = fileSystem.readFile(joinPath(job.directory, input.dataName));
    for (const offset of input.offsets) {
      const status = decodeRecord(data, offset, data.length, job.valueBytesMax, view);
      if (status !== DECODE_OK || (view.flags & FLAG_TOMBSTONE) !== 0) {
        throw new PaxosStoreError('CORRUPTION', `merge: the live record at ${input.dataName}:${offset} fails its checksum`, {
          file: input.dataName,
          offset,
        });
      }
      const [outputIndex, outputOffset] = await writer.add(data, offset, view.totalBytes, view.keyStart, view.keyLength, view.flags);
      outcome.sourceInput[copied] = inputIndex;
      outcome.sourceOffset[copied] = offset;
      outcome.outputIndex[copied] = outputIndex;
      outcome.outputOffset[copied] = outputOffset;
      outcome.recordBytes[copied] = view.totalBytes;
      copied++;
    }
  }
  await writer.finishOutput();
  // The output files' names must be durable before the engine writes the commit marker.
  await fileSystem.syncDirectory(job.directory);
  outcome.outputCount = writer.outputCount;
  outcome.bytesWritten = writer.bytesWritten;
  return outcome;
}

/** runMerge with its failure turned into data, for the thread boundary (custom error fields do not survive cloning). */
export async function runMergeReply(fileSystem: FileSystem, job: MergeJob): Promise<MergeReply> {
  try {
    return { ok: true, outcome: await runMerge(fileSystem, job) };
  } catch (error) {
    if (isPaxosStoreError(error)) return { ok: false, code: error.code, message: error.message };
    return { ok: false, code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
  }
}
