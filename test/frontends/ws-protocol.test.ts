import { describe, expect, test } from 'vitest';
import {
  type ClientFrame,
  decodeMsgpack,
  encodeFrame,
  parseClientFrame,
  parseServerFrame,
  type ServerFrame,
} from '../../src/frontends/http/ws-protocol.js';

const bytes = (text: string) => Buffer.from(text, 'utf8');
const roundTrip = (frame: unknown) => parseClientFrame(decodeMsgpack(encodeFrame(frame as ClientFrame)));

describe('WebSocket protocol', () => {
  test('every request kind survives encode → decode → parse', () => {
    const requestId = { clientId: 'c1', timestampMs: 1_700_000_000_000, sequence: 2 ** 40 };
    const frames: ClientFrame[] = [
      { id: 1, op: 'get', key: bytes('k'), consistency: 'local' },
      { id: 2, op: 'set', key: bytes('k'), value: Buffer.from([0, 255]), ifVersion: 3, onlyIfAbsent: true, requestId },
      { id: 3, op: 'delete', key: bytes('k'), ifVersion: 0 },
      { id: 4, op: 'incr', key: bytes('k'), delta: -(2n ** 62n) },
      { id: 5, op: 'append', key: bytes('k'), value: bytes('tail') },
      { id: 6, op: 'mget', keys: [bytes('a'), bytes('b')] },
      { id: 7, op: 'mset', entries: [[bytes('a'), bytes('1')]], requestId },
      { id: 0xffff_ffff, op: 'ping' },
    ];
    for (const frame of frames) {
      const parsed = roundTrip(frame);
      expect(parsed.ok, JSON.stringify(frame, (_, v) => (typeof v === 'bigint' ? String(v) : v))).toBe(true);
      if (parsed.ok) expect(parsed.frame).toEqual(frame);
    }
    // A str key is taken as UTF-8.
    expect(roundTrip({ id: 9, op: 'get', key: 'ключ' })).toEqual({ ok: true, frame: { id: 9, op: 'get', key: bytes('ключ') } });
    // A small delta arrives as a plain msgpack int and still parses to a bigint.
    expect(roundTrip({ id: 10, op: 'incr', key: 'n', delta: 5 })).toMatchObject({ ok: true, frame: { delta: 5n } });
  });

  test.each([
    [{ id: 1, op: 'get' }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'get', key: 5 }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'set', key: 'k', value: 'v', ifVersion: -1 }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'set', key: 'k', value: 'v', onlyIfAbsent: 'yes' }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'incr', key: 'k', delta: 1.5 }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'mget', keys: 'a' }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'mset', entries: [['a']] }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'set', key: 'k', value: 'v', requestId: { clientId: '', timestampMs: 0, sequence: 1 } }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'set', key: 'k', value: 'v', requestId: { clientId: 'c', timestampMs: 0, sequence: -1 } }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'get', key: 'k', consistency: 'eventual' }, 'INVALID_ARGUMENT'],
    [{ id: 1, op: 'drop-table' }, 'UNKNOWN_COMMAND'],
  ])('rejects %j with %s and keeps its id', (frame, code) => {
    const parsed = roundTrip(frame);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) {
      expect(parsed.id).toBe(1);
      expect(parsed.error.code).toBe(code);
    }
  });

  test.each([[null], ['text'], [[1, 2]], [{ op: 'get' }], [{ id: -1, op: 'ping' }], [{ id: 2 ** 32, op: 'ping' }], [{ id: 1.5, op: 'ping' }]])(
    'a request without a usable id (%j) has no id to answer',
    (frame) => {
      const parsed = roundTrip(frame);
      expect(parsed).toMatchObject({ ok: false, id: null, error: { code: 'PROTOCOL_ERROR' } });
    },
  );

  test('truncated msgpack is a PROTOCOL_ERROR', () => {
    const whole = encodeFrame({ id: 1, op: 'get', key: bytes('key') });
    expect(() => decodeMsgpack(whole.subarray(0, whole.length - 2))).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
  });

  test('decoded binary fields own their bytes (the server decodes from a buffer that is then neutered)', () => {
    const encoded = encodeFrame({ id: 1, op: 'set', key: bytes('key'), value: bytes('value') });
    const parsed = parseClientFrame(decodeMsgpack(encoded));
    encoded.fill(0);
    expect(parsed).toMatchObject({ ok: true, frame: { key: bytes('key'), value: bytes('value') } });
  });

  test('server frames: results, items and errors parse; unknown error codes become INTERNAL; junk is rejected', () => {
    const replies: ServerFrame[] = [
      { id: 1, ok: true, result: { applied: true, version: 7, value: bytes('v') } },
      { id: 2, ok: true, results: [{ ok: true, result: { applied: false, version: 0, value: null } }, { ok: false, error: { code: 'NO_QUORUM', message: 'm' } }] },
      { id: 3, ok: true },
      { id: null, ok: false, error: { code: 'PROTOCOL_ERROR', message: 'bad' } },
    ];
    for (const reply of replies) expect(parseServerFrame(decodeMsgpack(encodeFrame(reply)))).toEqual(reply);
    expect(parseServerFrame({ id: 4, ok: false, error: { code: 'FROM_THE_FUTURE', message: 'x' } })).toEqual({
      id: 4,
      ok: false,
      error: { code: 'INTERNAL', message: 'x' },
    });
    for (const junk of [{}, { id: 1, ok: true, result: { applied: 'yes', version: 1 } }, { id: 1, ok: true, result: { applied: true, version: -1 } }, { id: 'x', ok: true }]) {
      expect(() => parseServerFrame(junk)).toThrow();
    }
  });
});
