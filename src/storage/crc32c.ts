/**
 * CRC32C (Castagnoli, polynomial 0x82F63B78 reflected), the checksum of every on-disk record,
 * block and frame. Slicing-by-8: eight 256-entry tables let the loop consume 8 bytes per step.
 * Test vector: crc32c("123456789") = 0xE3069283.
 */

const POLYNOMIAL = 0x82f63b78;
const tables: Uint32Array[] = [];

function buildTables(): void {
  const base = new Uint32Array(256);
  for (let index = 0; index < 256; index++) {
    let crc = index;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL : crc >>> 1;
    base[index] = crc >>> 0;
  }
  tables.push(base);
  for (let slice = 1; slice < 8; slice++) {
    const previous = tables[slice - 1];
    const table = new Uint32Array(256);
    for (let index = 0; index < 256; index++) table[index] = (previous[index] >>> 8) ^ base[previous[index] & 0xff];
    tables.push(table);
  }
}
buildTables();
const [t0, t1, t2, t3, t4, t5, t6, t7] = tables;

/** Continues a running CRC32C over `data[start, end)`; pass the previous result as `crc` (0 to start). */
export function crc32c(data: Uint8Array, crc = 0, start = 0, end = data.length): number {
  let c = ~crc >>> 0;
  let i = start;
  const stop8 = end - ((end - start) & 7);
  while (i < stop8) {
    const low = (c ^ (data[i] | (data[i + 1] << 8) | (data[i + 2] << 16) | (data[i + 3] << 24))) >>> 0;
    c =
      t7[low & 0xff] ^
      t6[(low >>> 8) & 0xff] ^
      t5[(low >>> 16) & 0xff] ^
      t4[low >>> 24] ^
      t3[data[i + 4]] ^
      t2[data[i + 5]] ^
      t1[data[i + 6]] ^
      t0[data[i + 7]];
    i += 8;
  }
  while (i < end) c = t0[(c ^ data[i++]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
