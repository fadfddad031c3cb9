import { RealFileSystem } from '../real-file-system.js';
import { type MergeJob, type MergeReply, runMergeReply } from './merge.js';

/** piscina entry point: the merge job on the real disk, off the shard's thread. */
export default function mergeOnWorker(job: MergeJob): Promise<MergeReply> {
  return runMergeReply(new RealFileSystem(), job);
}
