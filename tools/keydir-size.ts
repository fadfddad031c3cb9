import { Keydir, newLocation } from '../src/storage/bitcask/keydir.js';

/**
 * Measures the Bitcask keydir's memory per key: inserts N keys (default 1,000,000, or argv[2])
 * of the shape `user:%010d` (15 bytes) and reports the bytes of the table and the arena, the
 * overhead per key beyond the key bytes, and the same figure after deleting half the keys and
 * inserting as many new ones (the arena garbage path). Run from dist: `node dist/tools/keydir-size.js`.
 */

const keyCount = Number(process.argv[2] ?? 1_000_000);
const encoder = new TextEncoder();
const keyOf = (index: number): Uint8Array => encoder.encode(`user:${String(index).padStart(10, '0')}`);

function report(label: string, keydir: Keydir): void {
  const keyBytes = keydir.liveKeyBytes();
  const total = keydir.memoryBytes();
  const perKey = total / keydir.size;
  const overheadPerKey = (total - keyBytes) / keydir.size;
  console.log(
    `${label}: ${keydir.size.toLocaleString('en-US')} keys, keydir ${(total / 1024 / 1024).toFixed(1)} MiB, ` +
      `${perKey.toFixed(1)} bytes/key in total = ${(keyBytes / keydir.size).toFixed(1)} key bytes + ${overheadPerKey.toFixed(1)} bytes overhead`,
  );
}

const location = newLocation();
const keydir = new Keydir(1024);
const heapBefore = process.memoryUsage();
const started = performance.now();
for (let index = 0; index < keyCount; index++) keydir.set(keyOf(index), index & 7, index * 64, 140, location);
const insertMs = performance.now() - started;
report('after insert', keydir);
console.log(`insert: ${((keyCount / insertMs) * 1000).toFixed(0)} keys/s`);
for (let index = 0; index < keyCount; index += 2) keydir.delete(keyOf(index), location);
for (let index = 0; index < keyCount / 2; index++) keydir.set(keyOf(keyCount + index), 1, index, 140, location);
report('after deleting half and inserting as many new keys', keydir);
const heapAfter = process.memoryUsage();
console.log(
  `process: arrayBuffers +${((heapAfter.arrayBuffers - heapBefore.arrayBuffers) / 1024 / 1024).toFixed(1)} MiB, ` +
    `heapUsed +${((heapAfter.heapUsed - heapBefore.heapUsed) / 1024 / 1024).toFixed(1)} MiB (JS objects: none per key)`,
);
