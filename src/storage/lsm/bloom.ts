/**
 * Bloom filter over the user keys of one SSTable, so a point read skips tables that cannot hold
 * the key. With `bitsPerKey` bits per key and k = round(bitsPerKey · ln 2) probes the false
 * positive rate is about 0.6185^bitsPerKey (≈ 1 % at 10 bits per key).
 *
 * Probes use double hashing (Kirsch–Mitzenmacher): one 32-bit hash h and a delta derived from it
 * by rotation; probe i tests bit (h + i·delta) mod bitCount.
 *
 * Filter bytes:
 *
 *   +--------------------------------+-------------+
 *   | bit array (bitCount / 8 bytes) | probes (u8) |
 *   +--------------------------------+-------------+
 */

/**
 * Murmur3 (x86, 32-bit) of `data[start, end)`: fast in JS and well mixed for short keys.
 * Deliberately not shared with the Bitcask keydir's hash (same algorithm): this one is part of the
 * SSTable format — filters written today must answer the same way after any upgrade — while the
 * keydir's hash is in-memory only and free to change.
 */
export function hash32(data: Uint8Array, start = 0, end = data.length, seed = 0xbc9f1d34): number {
  let h = seed >>> 0;
  let i = start;
  const stop4 = end - ((end - start) & 3);
  while (i < stop4) {
    let k = data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
    i += 4;
  }
  const remaining = end - i;
  if (remaining > 0) {
    let k = data[i];
    if (remaining > 1) k ^= data[i + 1] << 8;
    if (remaining > 2) k ^= data[i + 2] << 16;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= end - start;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function probesFor(bitsPerKey: number): number {
  return Math.min(30, Math.max(1, Math.round(bitsPerKey * Math.LN2)));
}

/** Builds the filter from the keys' hashes (callers hash as they add keys, so no key is kept). */
export function buildBloomFilter(hashes: ArrayLike<number>, count: number, bitsPerKey: number): Uint8Array {
  const probes = probesFor(bitsPerKey);
  // A floor of 64 bits keeps tiny filters from saturating.
  const bitCount = Math.max(64, Math.ceil((count * bitsPerKey) / 8) * 8);
  const filter = new Uint8Array(bitCount / 8 + 1);
  for (let index = 0; index < count; index++) {
    let h = hashes[index];
    const delta = ((h >>> 17) | (h << 15)) >>> 0;
    for (let probe = 0; probe < probes; probe++) {
      const bit = h % bitCount;
      filter[bit >>> 3] |= 1 << (bit & 7);
      h = (h + delta) >>> 0;
    }
  }
  filter[filter.length - 1] = probes;
  return filter;
}

/** False means the key is certainly absent; true means it may be present. */
export function bloomMayContain(filter: Uint8Array, keyHash: number): boolean {
  if (filter.length < 2) return true;
  const probes = filter[filter.length - 1];
  const bitCount = (filter.length - 1) * 8;
  let h = keyHash;
  const delta = ((h >>> 17) | (h << 15)) >>> 0;
  for (let probe = 0; probe < probes; probe++) {
    const bit = h % bitCount;
    if ((filter[bit >>> 3] & (1 << (bit & 7))) === 0) return false;
    h = (h + delta) >>> 0;
  }
  return true;
}
