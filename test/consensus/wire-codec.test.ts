import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import type { Ballot } from '../../src/consensus/ballot.js';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { isValidPeerMessage } from '../../src/consensus/messages.js';
import { type AcceptorState, type ChosenEntry, decodePaxosLog, type EntryPayload, encodePaxosLog, type PaxosLogRecord } from '../../src/consensus/paxos-log.js';
import { decodePeerMessages, EncodedPayload, encodeEntryPayload, encodePeerMessage, plainPayload } from '../../src/consensus/wire-codec.js';
import { PaxosStoreError } from '../../src/errors.js';
import { KEY_BYTES_MAX } from '../../src/storage/engine.js';
import { encodeMessageFrame, FRAME_HEADER_BYTES } from '../../src/transport/frame.js';
import { Random } from '../../src/util/random.js';

const SEEDS = Number(process.env.WIRE_CODEC_SEEDS ?? 300);

/** Integers across every varuint length, up to 2^53 − 1. */
function count(random: Random): number {
  switch (random.int(4)) {
    case 0:
      return random.int(128);
    case 1:
      return random.int(1 << 20);
    case 2:
      return random.uint32();
    default:
      return Math.floor(random.float() * Number.MAX_SAFE_INTEGER);
  }
}

function bytesOrNull(random: Random): Uint8Array | null {
  if (random.chance(0.2)) return null;
  const sizes = [0, 1, 200, 300]; // bin32 and its 70 000-byte values have their own test below
  return random.bytes(random.pick(sizes));
}

function ballot(random: Random): Ballot {
  return { round: count(random), replicaId: count(random) };
}

function payload(random: Random): EntryPayload {
  const sessions = Array.from({ length: random.int(4) }, () => ({
    clientId: random.pick(['c', 'client-ü-雪', '']),
    sequence: count(random),
    result: { applied: random.chance(0.5), version: count(random), value: bytesOrNull(random) },
  }));
  return {
    value: bytesOrNull(random),
    proposerId: count(random),
    requestId: random.chance(0.3) ? null : { clientId: `client-${random.int(1000)}`, timestampMs: random.chance(0.5) ? count(random) : random.float() * 1e12, sequence: count(random) },
    sessions,
  };
}

function acceptor(random: Random): AcceptorState {
  return { promised: ballot(random), accepted: random.chance(0.5) ? null : { ballot: ballot(random), payload: payload(random) } };
}

function chosen(random: Random): ChosenEntry {
  return random.chance(0.2) ? { entryId: 0, payload: null } : { entryId: 1 + count(random), payload: payload(random) };
}

function message(random: Random): PeerMessage {
  const key = random.bytes(random.pick([0, 1, 40, 300]));
  const chosenId = count(random);
  switch (random.int(5)) {
    case 0:
      return { type: 'paxos', key, chosenId, entryId: count(random), sender: acceptor(random), viewOfReceiver: { promised: ballot(random), acceptedBallot: random.chance(0.5) ? null : ballot(random) } };
    case 1:
      return { type: 'chosen', key, chosenId, entry: chosen(random) };
    case 2:
      return { type: 'fetch', key, chosenId };
    case 3:
      return { type: 'readQuery', key, chosenId, readId: count(random) };
    default:
      return { type: 'readReply', key, chosenId, readId: count(random), acceptedBeyondChosen: random.chance(0.5) };
  }
}

function framePayload(messages: readonly PeerMessage[]): Uint8Array {
  const encoded = messages.map(encodePeerMessage);
  const { frame } = encodeMessageFrame(encoded, encoded.reduce((sum, bytes) => sum + bytes.length, 0), Number.MAX_SAFE_INTEGER);
  return frame.subarray(FRAME_HEADER_BYTES);
}

function errorCode(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof PaxosStoreError) return error.code;
    throw error;
  }
  return 'none';
}

/** Decoded payloads stay encoded (EncodedPayload): compare them by their decoded fields. */
function plain(value: unknown): unknown {
  if (value instanceof EncodedPayload) return plain(plainPayload(value));
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(plain);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([field, inner]) => [field, plain(inner)]));
  return value;
}

describe('binary wire codec', () => {
  it(`round-trips random PaxosLog records (${SEEDS} seeds)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const random = new Random(seed);
      const record: PaxosLogRecord = { chosen: chosen(random), open: acceptor(random) };
      const decoded = decodePaxosLog(encodePaxosLog(record));
      expect(plain(decoded), `seed ${seed}`).toEqual(plain(record));
    }
  });

  it(`round-trips random frames of peer messages, each valid for the core (${SEEDS} seeds)`, () => {
    for (let seed = 1; seed <= SEEDS; seed++) {
      const random = new Random(seed);
      const messages = Array.from({ length: 1 + random.int(20) }, () => message(random));
      const decoded = decodePeerMessages(framePayload(messages));
      expect(plain(decoded), `seed ${seed}`).toEqual(plain(messages));
      for (const item of decoded) expect(isValidPeerMessage(item, KEY_BYTES_MAX)).toBe(true);
    }
  });

  it('uses every msgpack array and bin header size', () => {
    const big: PeerMessage = { type: 'chosen', key: new Uint8Array(3), chosenId: 1, entry: { entryId: 1, payload: { value: new Uint8Array(70_000), proposerId: 1, requestId: null, sessions: [] } } };
    expect(encodePeerMessage(big)[0]).toBe(0xc6);
    expect(encodePeerMessage({ type: 'fetch', key: new Uint8Array(300), chosenId: 1 })[0]).toBe(0xc5);
    expect(encodePeerMessage({ type: 'fetch', key: new Uint8Array(3), chosenId: 1 })[0]).toBe(0xc4);
    const many = Array.from({ length: 70_000 }, (_, index): PeerMessage => ({ type: 'fetch', key: new Uint8Array([index & 0xff]), chosenId: index }));
    const payload = framePayload(many);
    expect(payload[0]).toBe(0xdd);
    expect(decodePeerMessages(payload)).toEqual(many);
    expect(decodePeerMessages(framePayload(many.slice(0, 20)))).toEqual(many.slice(0, 20));
  });

  it('keeps a payload as one copy of its bytes, re-encoded byte for byte, its fields decoded on access', () => {
    for (let seed = 1; seed <= 50; seed++) {
      const random = new Random(seed);
      const original = payload(random);
      const encoded = encodeEntryPayload(original);
      expect(encodeEntryPayload(encoded)).toBe(encoded);
      expect(plain(encoded), `seed ${seed}`).toEqual(plain(original));
      const entry: ChosenEntry = { entryId: 5, payload: encoded };
      const message: PeerMessage = { type: 'chosen', key: new Uint8Array([9]), chosenId: 5, entry };
      const frame = framePayload([message]);
      const [decoded] = decodePeerMessages(frame);
      frame.fill(0);
      const received = decoded.type === 'chosen' ? decoded.entry.payload : null;
      expect(received).toBeInstanceOf(EncodedPayload);
      expect([...(received as EncodedPayload).bytes]).toEqual([...encoded.bytes]);
      expect(plain(received), `seed ${seed}`).toEqual(plain(original));
      // The plain and the encoded form encode to the same bytes.
      expect([...encodePeerMessage({ ...message, entry: { entryId: 5, payload: original } })]).toEqual([...encodePeerMessage(message)]);
    }
  });

  it('rejects a payload whose fields overrun it before keeping its bytes', () => {
    const good = encodeEntryPayload({ value: new Uint8Array([1, 2]), proposerId: 3, requestId: { clientId: 'c', timestampMs: 1.5, sequence: 2 }, sessions: [] });
    const message = encodePeerMessage({ type: 'chosen', key: new Uint8Array([1]), chosenId: 1, entry: { entryId: 1, payload: good } });
    for (let cut = 1; cut < good.bytes.length; cut++) {
      // Shrink the bin (and the message) by `cut` bytes from the end of the payload.
      const shortened = new Uint8Array(message.subarray(0, message.length - cut));
      shortened[1] -= cut;
      const frame = new Uint8Array(shortened.length + 1);
      frame[0] = 0x91;
      frame.set(shortened, 1);
      expect(errorCode(() => decodePeerMessages(frame)), `cut ${cut}`).toBe('PROTOCOL_ERROR');
    }
  });

  it('copies decoded bytes instead of viewing the input', () => {
    const original: PeerMessage = { type: 'fetch', key: new Uint8Array([1, 2, 3]), chosenId: 4 };
    const payload = framePayload([original]);
    const [decoded] = decodePeerMessages(payload);
    payload.fill(0);
    expect(decoded.key).toEqual(new Uint8Array([1, 2, 3]));
    expect(decoded.key.constructor).toBe(Uint8Array);
  });

  it('still reads format-1 records written by earlier builds (msgpack arrays)', () => {
    const packr = new Packr({ useRecords: false, moreTypes: false });
    const legacy = packr.pack([
      1,
      7,
      [Buffer.from('v'), 2, ['client-a', 1234, 9], [['client-a', 9, 7, true, null]]],
      [3, 1],
      [[3, 1], [null, 1, null, []]],
    ]);
    const decoded = decodePaxosLog(legacy);
    expect(decoded.chosen.entryId).toBe(7);
    expect(Buffer.from(decoded.chosen.payload!.value!).toString()).toBe('v');
    expect(decoded.chosen.payload!.sessions[0]).toEqual({ clientId: 'client-a', sequence: 9, result: { applied: true, version: 7, value: null } });
    expect(decoded.open).toEqual({ promised: { round: 3, replicaId: 1 }, accepted: { ballot: { round: 3, replicaId: 1 }, payload: { value: null, proposerId: 1, requestId: null, sessions: [] } } });
  });

  it('rejects every truncation and corruption with a typed error, never another exception', () => {
    const random = new Random(99);
    for (let trial = 0; trial < 40; trial++) {
      const record = encodePaxosLog({ chosen: chosen(random), open: acceptor(random) });
      const frame = framePayload([message(random), message(random)]);
      // Every prefix of a big value is the same case as a few of them: keep the loops short.
      if (record.length > 4096 || frame.length > 4096) continue;
      for (let length = 0; length < record.length; length++) expect(errorCode(() => decodePaxosLog(record.subarray(0, length)))).toBe('CORRUPTION');
      for (let length = 0; length < frame.length; length++) expect(errorCode(() => decodePeerMessages(frame.subarray(0, length)))).toBe('PROTOCOL_ERROR');
      // Random byte flips: either a (different) valid decoding or a typed error.
      for (let flip = 0; flip < 20; flip++) {
        const damaged = Uint8Array.from(frame);
        damaged[random.int(damaged.length)] ^= 1 + random.int(255);
        expect(['none', 'PROTOCOL_ERROR']).toContain(errorCode(() => decodePeerMessages(damaged)));
      }
    }
  });

  it('rejects specific malformed fields', () => {
    const fetch = encodePeerMessage({ type: 'fetch', key: new Uint8Array([7]), chosenId: 1 });
    const withBody = (body: number[]): Uint8Array => Uint8Array.from([0x91, 0xc4, body.length, ...body]);
    expect(errorCode(() => decodePeerMessages(withBody([9, 1, 7, 1])))).toBe('PROTOCOL_ERROR'); // unknown type
    expect(errorCode(() => decodePeerMessages(withBody([5, 1, 7, 1, 0, 2])))).toBe('PROTOCOL_ERROR'); // flag byte 2
    expect(errorCode(() => decodePeerMessages(withBody([3, 1, 7, 1, 0])))).toBe('PROTOCOL_ERROR'); // trailing byte in a message
    expect(errorCode(() => decodePeerMessages(Uint8Array.from([0x92, ...fetch])))).toBe('PROTOCOL_ERROR'); // count above the messages
    expect(errorCode(() => decodePeerMessages(Uint8Array.from([0x91, ...fetch, 0])))).toBe('PROTOCOL_ERROR'); // bytes after the messages
    expect(errorCode(() => decodePeerMessages(Uint8Array.from([0x91, 0xa1, 0x41])))).toBe('PROTOCOL_ERROR'); // not a bin
    const varuintTooLong = [3, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 1];
    expect(errorCode(() => decodePeerMessages(withBody(varuintTooLong)))).toBe('PROTOCOL_ERROR');
    const hugeKey = [3, 0x81, 0x80, 0x08]; // key length 131 073 > KEY_BYTES_MAX
    expect(errorCode(() => decodePeerMessages(withBody(hugeKey)))).toBe('PROTOCOL_ERROR');
    // A record whose chosen entry 0 carries a payload is corrupt.
    expect(errorCode(() => decodePaxosLog(Uint8Array.from([0xc1, 2, 0, 1, 0, 1, 0, 0, 0, 0, 0])))).toBe('CORRUPTION');
  });
});
