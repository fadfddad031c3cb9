/**
 * The control messages between a replica's main thread and its shard workers. These are rare
 * (start-up, logs, a metrics snapshot a second) and go over postMessage; the request/reply hot
 * path uses the SharedArrayBuffer rings of src/ipc/channel.ts.
 */
import type { ServerConfig } from '../cluster/config.js';
import type { ChannelBuffers } from '../ipc/channel.js';
import type { MetricsSnapshot } from '../metrics/registry.js';

export interface ShardWorkerData {
  readonly config: ServerConfig;
  readonly shardIndex: number;
  readonly buffers: ChannelBuffers;
}

export type WorkerToMain =
  | { readonly type: 'ready'; readonly shardIndex: number; readonly recovery: Readonly<Record<string, number>> }
  | { readonly type: 'fatal'; readonly message: string }
  | { readonly type: 'log'; readonly level: 'info' | 'warn'; readonly message: string }
  | { readonly type: 'metrics'; readonly snapshot: MetricsSnapshot };
