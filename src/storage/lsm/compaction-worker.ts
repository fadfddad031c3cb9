import { RealFileSystem } from '../real-file-system.js';
import { type BackgroundJob, type JobResult, runJob } from './compaction.js';

/** piscina entry point: flushes and compactions of trees on the real disk run here, off the shard's thread. */
const fileSystem = new RealFileSystem();

export default function compactionWorker(job: BackgroundJob): Promise<JobResult> {
  return runJob(fileSystem, job);
}
