import xxhash, { type XXHashAPI } from 'xxhash-wasm';

/**
 * Key → shard: xxhash64 (seed 0) of the key bytes, modulo the shard count. The function is part
 * of the on-disk contract: a key's PaxosLog lives in the Bitcask of the shard this returns, so
 * it must never change for an existing cluster (the shard count is pinned in the data directory).
 */

let api: XXHashAPI | undefined;

/** Loads the WebAssembly hasher once per thread; call before `shardOf`. */
export async function loadShardHasher(): Promise<void> {
  api ??= await xxhash();
}

export function shardOf(key: Uint8Array, shardCount: number): number {
  if (!api) throw new Error('shardOf: call loadShardHasher() first');
  if (shardCount === 1) return 0;
  return Number(api.h64Raw(key, 0n) % BigInt(shardCount));
}
