/**
 * The hand-written fast paths of the WebSocket coding against msgpackr and the generic parsers:
 * encoded bytes must be identical, and a fast decode must either decline (undefined) or agree
 * exactly with the generic path — never accept what the generic path refuses.
 */
import { Packr } from 'msgpackr';
import { describe, expect, test } from 'vitest';
import type { KeyResult, RequestId } from '../../src/api/operations.js';
import {
  type ClientFrame,
  decodeMsgpack,
  parseClientFrame,
  parseServerFrame,
  type ServerFrame,
} from '../../src/frontends/http/ws-protocol.js';
import {
  decodeClientFrameFast,
  decodeServerFrameFast,
  encodeRequestFast,
  encodeServerFrameFast,
} from '../../src/frontends/http/ws-wire.js';
import { Random } from '../../src/util/random.js';

/** The generic packer, configured as ws-protocol.ts configures it. */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, int64AsType: 'bigint' });
const SEEDS = 300;

function number(random: Random): number {
  return random.pick([0, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 0xffff_ffff, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER, random.int(1e6)]);
}

function text(random: Random): string {
  const pieces = ['a', 'é', '€', '😀', 'CONTENTION', ' ', 'x'.repeat(random.int(40))];
  let result = '';
  const count = random.pick([0, 1, 5, 12, 31, 32, 80, 300]);
  for (let i = 0; i < count; i++) result += random.pick(pieces);
  return result;
}

/** Every bin length class; the 16- and 32-bit ones rarely, to keep the test fast. */
function binary(random: Random): Buffer {
  const length = random.chance(0.03) ? random.pick([65_535, 65_536, 70_000]) : random.pick([0, 1, 31, 255, 256, 1000]);
  return Buffer.from(random.bytes(length));
}

function requestId(random: Random): RequestId {
  const clientId = random.pick(['c', 'client-😀é€', 'x'.repeat(31), 'y'.repeat(32), 'z'.repeat(128), `client-${random.uint32()}`]);
  return { clientId, timestampMs: number(random), sequence: number(random) };
}

/** A random get / set / delete frame with its fields in the fast encoder's order. */
function hotRequest(random: Random, id: number): ClientFrame {
  const op = random.pick(['get', 'set', 'delete'] as const);
  const frame: Record<string, unknown> = { id, op, key: binary(random) };
  if (op === 'set') frame.value = binary(random);
  if (op === 'get' && random.chance(0.7)) frame.consistency = random.pick(['linearizable', 'local']);
  if (op !== 'get' && random.chance(0.3)) frame.ifVersion = number(random);
  if (op === 'set' && random.chance(0.3)) frame.onlyIfAbsent = random.chance(0.5);
  if (op === 'set' && random.chance(0.3)) frame.onlyIfPresent = random.chance(0.5);
  if (op !== 'get' || random.chance(0.2)) frame.requestId = requestId(random);
  return frame as unknown as ClientFrame;
}

function withoutId(frame: ClientFrame): Omit<ClientFrame, 'id'> {
  const { id: _, ...rest } = frame;
  return rest;
}

/** Binaries as hex: vitest compares a 70 KB Buffer element by element, which takes long. */
function hex(value: unknown): unknown {
  if (value instanceof Uint8Array) return `bin:${Buffer.from(value).toString('hex')}`;
  if (Array.isArray(value)) return value.map(hex);
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([name, field]) => [name, hex(field)]));
  return value;
}

function keyResult(random: Random): KeyResult {
  return { applied: random.chance(0.5), version: number(random), value: random.chance(0.2) ? null : binary(random) };
}

describe('WebSocket fast coding', () => {
  test('replies: hand-written bytes are msgpackr bytes, and both decoders read them alike', () => {
    const random = new Random(1);
    for (let seed = 0; seed < SEEDS; seed++) {
      const reply: ServerFrame = random.chance(0.8)
        ? { id: number(random) % 2 ** 32, ok: true, result: keyResult(random) }
        : { id: number(random) % 2 ** 32, ok: false, error: { code: 'CONTENTION', message: text(random) } };
      const fast = encodeServerFrameFast(reply);
      expect(fast).toBeDefined();
      expect(Buffer.from(fast!).equals(packr.pack(reply))).toBe(true);
      const generic = parseServerFrame(decodeMsgpack(fast!));
      expect(hex(decodeServerFrameFast(fast!))).toEqual(hex(generic));
      expect(hex(generic)).toEqual(hex(reply));
    }
  });

  test('replies the fast encoder does not handle are left to msgpackr', () => {
    const item = { ok: true, result: { applied: true, version: 1, value: null } } as const;
    expect(encodeServerFrameFast({ id: 1, ok: true, results: [item] })).toBeUndefined();
    expect(encodeServerFrameFast({ id: 1, ok: true })).toBeUndefined();
    // A result that breaks the KeyResult contract goes to the tolerant generic packer.
    const loose = { applied: true, version: 1, value: undefined } as unknown as KeyResult;
    expect(encodeServerFrameFast({ id: 1, ok: true, result: loose })).toBeUndefined();
    expect(encodeServerFrameFast({ id: 1, ok: true, result: { applied: true, version: -1, value: null } })).toBeUndefined();
    expect(encodeServerFrameFast({ id: null, ok: false, error: { code: 'PROTOCOL_ERROR', message: 'm' } })).toBeUndefined();
  });

  test('requests: hand-written bytes are msgpackr bytes, and both decoders read them alike', () => {
    const random = new Random(2);
    for (let seed = 0; seed < SEEDS; seed++) {
      const frame = hotRequest(random, number(random) % 2 ** 32);
      const fast = encodeRequestFast(frame.id, withoutId(frame) as Parameters<typeof encodeRequestFast>[1]);
      expect(fast).toBeDefined();
      expect(Buffer.from(fast!).equals(packr.pack(frame))).toBe(true);
      const generic = parseClientFrame(decodeMsgpack(fast!));
      expect(hex(generic)).toEqual(hex({ ok: true, frame }));
      expect(hex(decodeClientFrameFast(fast!))).toEqual(hex(frame));
    }
  });

  test('other requests are left to msgpackr', () => {
    const key = Buffer.from('k');
    expect(encodeRequestFast(1, { op: 'incr', key, delta: 1n })).toBeUndefined();
    expect(encodeRequestFast(1, { op: 'mget', keys: [key] })).toBeUndefined();
    expect(encodeRequestFast(1, { op: 'ping' })).toBeUndefined();
  });

  test('the fast request decoder declines or agrees with the generic parser on odd and broken frames', () => {
    const key = Buffer.from('k');
    const odd: unknown[] = [
      { id: 1, op: 'get', key: 'text key' },
      { id: 1.5, op: 'get', key },
      { id: -1, op: 'get', key },
      { id: 2 ** 32, op: 'get', key },
      { id: 1, op: 'get', key, consistency: 'eventual' },
      { id: 1, op: 'get', key, consistency: null },
      { id: 1, op: 'get', key, value: key },
      { id: 1, op: 'get', key, extra: 1 },
      { id: 1, op: 'get' },
      { id: 1, op: 'fetch', key },
      { id: 1, op: 'set', key },
      { id: 1, op: 'set', key, value: key, ifVersion: -3 },
      { id: 1, op: 'set', key, value: key, ifVersion: 1.25 },
      { id: 1, op: 'set', key, value: key, ifVersion: null, onlyIfAbsent: null },
      { id: 1, op: 'set', key, value: key, onlyIfAbsent: 'yes' },
      { id: 1, op: 'set', key, value: key, requestId: null },
      { id: 1, op: 'set', key, value: key, requestId: { clientId: '', timestampMs: 1, sequence: 1 } },
      { id: 1, op: 'set', key, value: key, requestId: { clientId: 'c', timestampMs: -1, sequence: 1 } },
      { id: 1, op: 'set', key, value: key, requestId: { clientId: 'c', timestampMs: 1, sequence: 2n ** 60n } },
      { id: 1, op: 'set', key, value: key, requestId: { clientId: 'c'.repeat(129), timestampMs: 1, sequence: 1 } },
      { id: 1, op: 'delete', key, ifVersion: 7 },
      { op: 'get', key },
      [1, 'get', key],
      'get',
    ];
    const random = new Random(3);
    const cases: Uint8Array[] = odd.map((frame) => packr.pack(frame));
    // Truncations, trailing bytes and flipped bytes of valid frames.
    for (let seed = 0; seed < SEEDS; seed++) {
      const valid = packr.pack(hotRequest(random, random.int(1000)));
      cases.push(valid.subarray(0, random.int(valid.length)));
      cases.push(Buffer.concat([valid, Buffer.from([random.int(256)])]));
      const flipped = Buffer.from(valid);
      flipped[random.int(flipped.length)] = random.int(256);
      cases.push(flipped);
    }
    let agreed = 0;
    for (const bytes of cases) {
      const fast = decodeClientFrameFast(bytes);
      if (fast === undefined) continue;
      agreed++;
      expect(hex(parseClientFrame(decodeMsgpack(bytes)))).toEqual(hex({ ok: true, frame: fast }));
    }
    // The fast path did take part (it accepts the odd-but-valid frames and most flips of values).
    expect(agreed).toBeGreaterThan(SEEDS / 10);
  });

  test('the fast reply decoder declines or agrees with the generic parser on odd and broken replies', () => {
    const random = new Random(4);
    const cases: Uint8Array[] = [
      { id: null, ok: false, error: { code: 'PROTOCOL_ERROR', message: 'm' } },
      { id: 1, ok: false, error: { code: 'NO_SUCH_CODE', message: 'm' } },
      { id: 1, ok: true, results: [] },
      { id: 1, ok: true, result: { applied: true, version: -1, value: null } },
      { id: 1, ok: true, result: { applied: 1, version: 1, value: null } },
      { id: 1, ok: true, result: { applied: true, version: 1 } },
      { id: 1, ok: true, result: { applied: true, version: 1, value: 'text' } },
    ].map((reply) => packr.pack(reply));
    for (let seed = 0; seed < SEEDS; seed++) {
      const valid = packr.pack({ id: random.int(1000), ok: true, result: keyResult(random) });
      cases.push(valid.subarray(0, random.int(valid.length)));
      const flipped = Buffer.from(valid);
      flipped[random.int(flipped.length)] = random.int(256);
      cases.push(flipped);
    }
    for (const bytes of cases) {
      const fast = decodeServerFrameFast(bytes);
      if (fast === undefined) continue;
      expect(hex(parseServerFrame(decodeMsgpack(bytes)))).toEqual(hex(fast));
    }
  });

  test('decoded binaries own their bytes', () => {
    const bytes = encodeRequestFast(9, { op: 'set', key: Buffer.from('key'), value: Buffer.from('value') })!;
    const copy = Buffer.from(bytes);
    const frame = decodeClientFrameFast(copy) as Extract<ClientFrame, { op: 'set' }>;
    copy.fill(0);
    expect(Buffer.from(frame.key).toString()).toBe('key');
    expect(Buffer.from(frame.value).toString()).toBe('value');
  });
});
