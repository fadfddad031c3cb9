import { workerFilePath } from '../util/worker-path.js';

/** Path of the echo shard worker (./echo-worker.ts), loadable by `new Worker(path, {workerData: buffers})`. */
export const echoWorkerFile = workerFilePath(import.meta.url, './echo-worker.js');
