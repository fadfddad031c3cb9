import { assert } from '../../util/assert.js';

/**
 * The keydir: key → (file number, record offset, record size) for every live key, in memory.
 * Millions of keys must fit, so it is not a Map of objects (~150+ bytes per entry) but an
 * open-addressing hash table over one Uint32Array plus a key arena.
 *
 *   slots (Uint32Array, SLOT_FIELDS words per slot, linear probing, capacity a power of two):
 *   +------+----------+-------------+--------+-------------+
 *   | hash | key ref  | file number | offset | record size |   hash 0 = empty slot
 *   +------+----------+-------------+--------+-------------+
 *
 *   arena (one growable Uint8Array): at each key ref, a LEB128 key length then the key bytes
 *   +---------+-----------+---------+-----------+ ... +---------------+
 *   | len (1-3)| key bytes | len     | key bytes |     | unused tail   |
 *   +---------+-----------+---------+-----------+ ... +---------------+
 *
 * Deletes use backward-shift deletion (no tombstones in the table, probe chains stay short).
 * Deleted keys leave garbage in the arena; it is reclaimed by compacting the arena when the
 * garbage exceeds the live key bytes. 20 bytes per slot at a load factor between 0.375 and 0.75
 * gives 27–53 bytes per key plus the key bytes and the length prefix.
 */

const SLOT_FIELDS = 5;
const FIELD_HASH = 0;
const FIELD_KEY_REF = 1;
const FIELD_FILE = 2;
const FIELD_OFFSET = 3;
const FIELD_SIZE = 4;
const LOAD_FACTOR_MAX = 0.75;
const ARENA_GROWTH = 1.5;
const ARENA_GARBAGE_BYTES_MIN = 64 * 1024;

/** A location, filled by calls that report the previous one (reused to avoid allocation). */
export interface KeydirLocation {
  fileNumber: number;
  offset: number;
  recordBytes: number;
}

export function newLocation(): KeydirLocation {
  return { fileNumber: 0, offset: 0, recordBytes: 0 };
}

/** MurmurHash3 (x86, 32-bit) of `data[start, end)`, never 0 (0 marks an empty slot). */
export function hashKey(data: Uint8Array, start: number, end: number): number {
  let hash = 0x9747b28c;
  let position = start;
  const stop4 = end - ((end - start) & 3);
  while (position < stop4) {
    let block = data[position] | (data[position + 1] << 8) | (data[position + 2] << 16) | (data[position + 3] << 24);
    block = Math.imul(block, 0xcc9e2d51);
    block = (block << 15) | (block >>> 17);
    block = Math.imul(block, 0x1b873593);
    hash ^= block;
    hash = (hash << 13) | (hash >>> 19);
    hash = (Math.imul(hash, 5) + 0xe6546b64) | 0;
    position += 4;
  }
  const remaining = end - position;
  if (remaining > 0) {
    let tail = data[position];
    if (remaining > 1) tail |= data[position + 1] << 8;
    if (remaining > 2) tail |= data[position + 2] << 16;
    tail = Math.imul(tail, 0xcc9e2d51);
    tail = (tail << 15) | (tail >>> 17);
    tail = Math.imul(tail, 0x1b873593);
    hash ^= tail;
  }
  hash ^= end - start;
  hash ^= hash >>> 16;
  hash = Math.imul(hash, 0x85ebca6b);
  hash ^= hash >>> 13;
  hash = Math.imul(hash, 0xc2b2ae35);
  hash ^= hash >>> 16;
  hash >>>= 0;
  return hash === 0 ? 1 : hash;
}

export class Keydir {
  private slots: Uint32Array;
  private mask: number;
  private count = 0;
  private arena: Uint8Array;
  private arenaUsedBytes = 0;
  private arenaGarbageBytes = 0;
  /** Bumped whenever slots move (growth, deletion, arena compaction): iterators detect it. */
  private layoutVersion = 0;

  constructor(capacityInitial = 1024) {
    let capacity = 16;
    while (capacity < capacityInitial) capacity *= 2;
    this.slots = new Uint32Array(capacity * SLOT_FIELDS);
    this.mask = capacity - 1;
    this.arena = new Uint8Array(capacity * 16);
  }

  get size(): number {
    return this.count;
  }

  get version(): number {
    return this.layoutVersion;
  }

  /** Bytes held by the table and the arena (what the keydir costs in memory). */
  memoryBytes(): number {
    return this.slots.byteLength + this.arena.byteLength;
  }

  /** The key bytes stored (without length prefixes), for per-key overhead figures. */
  liveKeyBytes(): number {
    let total = 0;
    for (let slot = this.nextSlot(-1); slot >= 0; slot = this.nextSlot(slot)) total += this.keyLengthAt(slot);
    return total;
  }

  /** Slot of `key`, or -1. */
  find(key: Uint8Array): number {
    return this.findRange(key, 0, key.length, hashKey(key, 0, key.length));
  }

  /** Slot of the key at `data[start, end)` with precomputed `hash`, or -1. */
  findRange(data: Uint8Array, start: number, end: number, hash: number): number {
    const probed = this.probe(data, start, end, hash);
    return probed >= 0 ? probed : -1;
  }

  /** The key's slot, or -(empty slot where it would go) - 1. */
  private probe(data: Uint8Array, start: number, end: number, hash: number): number {
    const slots = this.slots;
    let index = hash & this.mask;
    for (;;) {
      const base = index * SLOT_FIELDS;
      const slotHash = slots[base + FIELD_HASH];
      if (slotHash === 0) return -index - 1;
      if (slotHash === hash && this.keyEquals(slots[base + FIELD_KEY_REF], data, start, end)) return index;
      index = (index + 1) & this.mask;
    }
  }

  /** Grows the table ahead of `count` keys (open uses the hint entry counts), so loading does not rehash repeatedly. */
  reserve(count: number): void {
    while (count / (this.mask + 1) > LOAD_FACTOR_MAX) this.grow();
  }

  fileNumberAt(slot: number): number {
    return this.slots[slot * SLOT_FIELDS + FIELD_FILE];
  }

  offsetAt(slot: number): number {
    return this.slots[slot * SLOT_FIELDS + FIELD_OFFSET];
  }

  recordBytesAt(slot: number): number {
    return this.slots[slot * SLOT_FIELDS + FIELD_SIZE];
  }

  /** Repoints an existing slot (merge moved the record). */
  update(slot: number, fileNumber: number, offset: number, recordBytes: number): void {
    const base = slot * SLOT_FIELDS;
    assert(this.slots[base + FIELD_HASH] !== 0, 'update of an empty keydir slot');
    this.slots[base + FIELD_FILE] = fileNumber;
    this.slots[base + FIELD_OFFSET] = offset;
    this.slots[base + FIELD_SIZE] = recordBytes;
  }

  /** Inserts or overwrites; returns true and fills `previous` when the key existed. */
  set(key: Uint8Array, fileNumber: number, offset: number, recordBytes: number, previous: KeydirLocation): boolean {
    return this.setRange(key, 0, key.length, fileNumber, offset, recordBytes, previous);
  }

  setRange(
    data: Uint8Array,
    start: number,
    end: number,
    fileNumber: number,
    offset: number,
    recordBytes: number,
    previous: KeydirLocation,
  ): boolean {
    const hash = hashKey(data, start, end);
    let probed = this.probe(data, start, end, hash);
    if (probed >= 0) {
      const base = probed * SLOT_FIELDS;
      previous.fileNumber = this.slots[base + FIELD_FILE];
      previous.offset = this.slots[base + FIELD_OFFSET];
      previous.recordBytes = this.slots[base + FIELD_SIZE];
      this.update(probed, fileNumber, offset, recordBytes);
      return true;
    }
    if ((this.count + 1) / (this.mask + 1) > LOAD_FACTOR_MAX) {
      this.grow();
      probed = this.probe(data, start, end, hash);
    }
    const keyRef = this.storeKey(data, start, end);
    const base = (-probed - 1) * SLOT_FIELDS;
    this.slots[base + FIELD_HASH] = hash;
    this.slots[base + FIELD_KEY_REF] = keyRef;
    this.slots[base + FIELD_FILE] = fileNumber;
    this.slots[base + FIELD_OFFSET] = offset;
    this.slots[base + FIELD_SIZE] = recordBytes;
    this.count++;
    return false;
  }

  /** Removes the key; returns true and fills `previous` when it existed. */
  delete(key: Uint8Array, previous: KeydirLocation): boolean {
    return this.deleteRange(key, 0, key.length, previous);
  }

  deleteRange(data: Uint8Array, start: number, end: number, previous: KeydirLocation): boolean {
    const slot = this.findRange(data, start, end, hashKey(data, start, end));
    if (slot < 0) return false;
    const base = slot * SLOT_FIELDS;
    previous.fileNumber = this.slots[base + FIELD_FILE];
    previous.offset = this.slots[base + FIELD_OFFSET];
    previous.recordBytes = this.slots[base + FIELD_SIZE];
    const keyLength = this.keyLengthAt(slot);
    this.arenaGarbageBytes += lengthPrefixBytes(keyLength) + keyLength;
    this.removeSlot(slot);
    this.count--;
    this.layoutVersion++;
    if (this.arenaGarbageBytes > ARENA_GARBAGE_BYTES_MIN && this.arenaGarbageBytes > this.arenaUsedBytes / 2) this.compactArena();
    return true;
  }

  /** A copy of the key in `slot`. */
  keyAt(slot: number): Uint8Array {
    const keyRef = this.slots[slot * SLOT_FIELDS + FIELD_KEY_REF];
    const length = this.keyLengthAt(slot);
    const start = keyRef + lengthPrefixBytes(length);
    return this.arena.slice(start, start + length);
  }

  /** Next occupied slot after `slot` (pass -1 to start), or -1 at the end. */
  nextSlot(slot: number): number {
    const capacity = this.mask + 1;
    for (let index = slot + 1; index < capacity; index++) {
      if (this.slots[index * SLOT_FIELDS + FIELD_HASH] !== 0) return index;
    }
    return -1;
  }

  private keyLengthAt(slot: number): number {
    return readLength(this.arena, this.slots[slot * SLOT_FIELDS + FIELD_KEY_REF]);
  }

  private keyEquals(keyRef: number, data: Uint8Array, start: number, end: number): boolean {
    const arena = this.arena;
    const length = readLength(arena, keyRef);
    if (length !== end - start) return false;
    const keyStart = keyRef + lengthPrefixBytes(length);
    for (let i = 0; i < length; i++) if (arena[keyStart + i] !== data[start + i]) return false;
    return true;
  }

  private storeKey(data: Uint8Array, start: number, end: number): number {
    const length = end - start;
    const needed = lengthPrefixBytes(length) + length;
    // Key refs are u32; ~100M keys of 40 bytes would reach this, far beyond one shard's share.
    assert(this.arenaUsedBytes + needed <= 0xffffffff, 'keydir key arena passed 4 GiB');
    if (this.arenaUsedBytes + needed > this.arena.length) {
      const grown = new Uint8Array(Math.max(Math.ceil(this.arena.length * ARENA_GROWTH), this.arenaUsedBytes + needed));
      grown.set(this.arena.subarray(0, this.arenaUsedBytes));
      this.arena = grown;
    }
    const keyRef = this.arenaUsedBytes;
    const arena = this.arena;
    const keyStart = keyRef + writeLength(arena, keyRef, length);
    // A byte loop beats set(subarray()) for short keys: no view object to allocate.
    if (length <= 64) for (let i = 0; i < length; i++) arena[keyStart + i] = data[start + i];
    else arena.set(data.subarray(start, end), keyStart);
    this.arenaUsedBytes += needed;
    return keyRef;
  }

  /** Backward-shift deletion: pull later members of the probe chain into the hole. */
  private removeSlot(slot: number): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = slot;
    let probe = slot;
    for (;;) {
      probe = (probe + 1) & mask;
      const probeBase = probe * SLOT_FIELDS;
      if (slots[probeBase + FIELD_HASH] === 0) break;
      const home = slots[probeBase + FIELD_HASH] & mask;
      // The entry at `probe` may move into `hole` only if its home is not cyclically in (hole, probe].
      const homeBetween = hole <= probe ? hole < home && home <= probe : hole < home || home <= probe;
      if (homeBetween) continue;
      slots.copyWithin(hole * SLOT_FIELDS, probeBase, probeBase + SLOT_FIELDS);
      hole = probe;
    }
    slots.fill(0, hole * SLOT_FIELDS, hole * SLOT_FIELDS + SLOT_FIELDS);
  }

  private grow(): void {
    const old = this.slots;
    const oldCapacity = this.mask + 1;
    const capacity = oldCapacity * 2;
    this.slots = new Uint32Array(capacity * SLOT_FIELDS);
    this.mask = capacity - 1;
    for (let index = 0; index < oldCapacity; index++) {
      const base = index * SLOT_FIELDS;
      const hash = old[base + FIELD_HASH];
      if (hash === 0) continue;
      const slots = this.slots;
      let target = hash & this.mask;
      while (slots[target * SLOT_FIELDS + FIELD_HASH] !== 0) target = (target + 1) & this.mask;
      // Field by field: a subarray per slot would allocate millions of views on a large table.
      const targetBase = target * SLOT_FIELDS;
      for (let field = 0; field < SLOT_FIELDS; field++) slots[targetBase + field] = old[base + field];
    }
    this.layoutVersion++;
  }

  /** Copies the live keys into a fresh arena (sized for them plus headroom) and repoints the slots. */
  private compactArena(): void {
    const liveBytes = this.arenaUsedBytes - this.arenaGarbageBytes;
    const arena = new Uint8Array(Math.max(1024, Math.ceil(liveBytes * ARENA_GROWTH)));
    let used = 0;
    for (let slot = this.nextSlot(-1); slot >= 0; slot = this.nextSlot(slot)) {
      const base = slot * SLOT_FIELDS;
      const keyRef = this.slots[base + FIELD_KEY_REF];
      const length = readLength(this.arena, keyRef);
      const entryBytes = lengthPrefixBytes(length) + length;
      arena.set(this.arena.subarray(keyRef, keyRef + entryBytes), used);
      this.slots[base + FIELD_KEY_REF] = used;
      used += entryBytes;
    }
    assert(used === liveBytes, 'keydir arena accounting drifted');
    this.arena = arena;
    this.arenaUsedBytes = used;
    this.arenaGarbageBytes = 0;
    this.layoutVersion++;
  }
}

function lengthPrefixBytes(length: number): number {
  return length < 0x80 ? 1 : length < 0x4000 ? 2 : 3;
}

function writeLength(target: Uint8Array, position: number, length: number): number {
  if (length < 0x80) {
    target[position] = length;
    return 1;
  }
  if (length < 0x4000) {
    target[position] = (length & 0x7f) | 0x80;
    target[position + 1] = length >>> 7;
    return 2;
  }
  target[position] = (length & 0x7f) | 0x80;
  target[position + 1] = ((length >>> 7) & 0x7f) | 0x80;
  target[position + 2] = length >>> 14;
  return 3;
}

function readLength(source: Uint8Array, position: number): number {
  const first = source[position];
  if (first < 0x80) return first;
  const second = source[position + 1];
  if (second < 0x80) return (first & 0x7f) | (second << 7);
  return (first & 0x7f) | ((second & 0x7f) << 7) | (source[position + 2] << 14);
}
