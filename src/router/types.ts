import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';

/**
 * What every front end (RESP, HTTP, WebSocket) calls. The real implementation on the main thread
 * hashes the key to a shard and crosses to that shard's worker over the SharedArrayBuffer rings;
 * tests use an in-memory implementation with the same semantics (src/api/operations.ts).
 *
 * `execute` rejects with a PaxosStoreError (codes in src/errors.ts) and never with anything else.
 * Multi-key commands (MGET, MSET, batch) are composed by the front end from single-key calls;
 * they are not atomic across keys.
 */
export interface Router {
  execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId): Promise<KeyResult>;
  /** Facts for INFO / status pages: replica id, shard count, peers, counters. */
  info(): RouterInfo;
}

export interface RouterInfo {
  readonly replicaId: number;
  readonly replicaCount: number;
  readonly shardCount: number;
  readonly uptimeSeconds: number;
  /** Free-form counters (requests, errors, in-flight…), name → value. */
  readonly counters: Readonly<Record<string, number>>;
}
