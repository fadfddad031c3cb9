import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import type { ShardClientChannel } from '../ipc/channel.js';
import { shardOf } from '../router/shard-hash.js';
import type { Router, RouterInfo } from '../router/types.js';

/**
 * The main thread's Router: hashes the key to its shard and hands the request to that shard's
 * worker over the channel's ring. Rejections are always PaxosStoreError (the channel rebuilds
 * the worker's typed errors).
 *
 * With `logGroup`, every key goes to the worker that owns that Delos log group and runs on the
 * group's KV applicator (src/server/delos-host.ts); results then carry `logPosition` for writes.
 */
export class ShardRouter implements Router {
  private readonly startedMs = Date.now();
  private requests = 0;
  private failures = 0;
  private inFlight = 0;
  private closed = false;

  constructor(
    private readonly shards: readonly ShardClientChannel[],
    private readonly identity: { readonly replicaId: number; readonly replicaCount: number },
    private readonly logGroup?: { readonly name: string; readonly shardIndex: number },
  ) {}

  execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult> {
    if (this.closed) return Promise.reject(new PaxosStoreError('CLOSED', 'replica is shutting down'));
    if (!(key instanceof Uint8Array)) return Promise.reject(new PaxosStoreError('INVALID_ARGUMENT', 'key must be bytes'));
    this.requests++;
    this.inFlight++;
    const shard = this.logGroup !== undefined ? this.shards[this.logGroup.shardIndex] : this.shards[shardOf(key, this.shards.length)];
    // A plain promise chain with handlers made once, not an async function: this runs per request.
    return shard.execute(key, operation, requestId, this.logGroup?.name).then(this.succeeded, this.failed);
  }

  private readonly succeeded = (result: KeyResult): KeyResult => {
    this.inFlight--;
    return result;
  };

  private readonly failed = (error: unknown): never => {
    this.inFlight--;
    this.failures++;
    throw error instanceof PaxosStoreError ? error : new PaxosStoreError('INTERNAL', String(error));
  };

  /** Refuses new requests (CLOSED); in-flight ones still complete. */
  close(): void {
    this.closed = true;
  }

  get inFlightRequests(): number {
    return this.inFlight;
  }

  info(): RouterInfo {
    return {
      replicaId: this.identity.replicaId,
      replicaCount: this.identity.replicaCount,
      shardCount: this.shards.length,
      uptimeSeconds: Math.floor((Date.now() - this.startedMs) / 1000),
      counters: { requests: this.requests, failures: this.failures, inFlight: this.inFlight },
    };
  }
}
