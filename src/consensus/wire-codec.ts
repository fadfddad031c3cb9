/**
 * The binary form of everything the consensus layer persists or sends: PaxosLog records (the
 * value under each key in Bitcask) and peer messages. Hand-written and positional because both
 * are on the hot path of every write: msgpackr spent a quarter of a shard worker's CPU on them
 * (plain objects with field names, one allocation per field), this writes each field once.
 *
 * Primitives (all multi-byte integers are unsigned LEB128 "varuint", up to 2^53 − 1):
 *
 *   varuint      7 bits per byte, low bits first, high bit = more bytes follow (≤ 8 bytes)
 *   bytes?       varuint (length + 1), then the bytes; 0 means null
 *   string       varuint byte length, then UTF-8
 *   f64          IEEE 754 double, little endian (request timestamps)
 *   flag         1 byte, 0 or 1
 *
 * Composite fields:
 *
 *   ballot       varuint round, varuint replicaId
 *   payload      bytes? value, varuint proposerId,
 *                flag hasRequestId [string clientId, f64 timestampMs, varuint sequence],
 *                varuint sessionCount, sessionCount × [string clientId, varuint sequence,
 *                                                      varuint version, flag applied, bytes? value]
 *   acceptor     ballot promised, flag hasAccepted [ballot, payload]
 *   chosen       varuint entryId, flag hasPayload [payload]
 *   summary      ballot promised, flag hasAcceptedBallot [ballot]
 *
 * PaxosLog record (format 2):
 *
 *   ┌──────┬────────┬────────────────┬────────────────┐
 *   │ 0xC1 │ 0x02   │ chosen         │ acceptor (open)│
 *   └──────┴────────┴────────────────┴────────────────┘
 *   0xC1 is the one byte msgpack never uses, so format-1 records (a msgpack array, written by
 *   earlier builds) are still read: decodePaxosLog dispatches on the first byte.
 *
 * Peer message: type byte, bytes key (never null), varuint chosenId, then by type
 *
 *   1 paxos      varuint entryId, acceptor sender, summary viewOfReceiver
 *   2 chosen     chosen entry
 *   3 fetch      (nothing)
 *   4 readQuery  varuint readId
 *   5 readReply  varuint readId, flag acceptedBeyondChosen
 *
 * Type 0x40 is the extension: a message of another layer sharing the links (the Delos log
 * envelopes of src/server/delos-host.ts), its body opaque here and decoded by the caller.
 *
 * On the peer wire each message travels as one msgpack `bin` value, so a frame's payload is
 * still a msgpack array (src/transport/frame.ts) and the transport stays codec-agnostic.
 *
 * Decoding checks every field (bounds, safe integers, flags 0/1, no trailing bytes) and throws
 * PaxosStoreError (CORRUPTION for records, PROTOCOL_ERROR for messages); decoded byte fields
 * are copies, never views into the input, so a record or frame buffer is never kept alive.
 * A payload is checked the same way but kept encoded: one copy of its bytes (EncodedPayload),
 * its fields decoded on access as views into that copy.
 */
import type { KeyResult, RequestId } from '../api/operations.js';
import { KEY_BYTES_MAX } from '../storage/engine.js';
import { ByteReader, ByteWriter } from '../util/byte-codec.js';
import { type Ballot, makeBallot } from './ballot.js';
import type { StateSummary } from './instance.js';
import type { PeerMessage } from './messages.js';
import type { AcceptorState, ChosenEntry, EntryPayload, PaxosLogRecord, SessionRecord } from './paxos-log.js';

export const PAXOS_LOG_TAG = 0xc1;
export const PAXOS_LOG_FORMAT = 2;

const MESSAGE_TYPES = ['paxos', 'chosen', 'fetch', 'readQuery', 'readReply'] as const;

const writer = new ByteWriter();

// ── composite fields ──────────────────────────────────────────────────────────────────────────

function writeBallot(ballot: Ballot): void {
  writer.varuint(ballot.round);
  writer.varuint(ballot.replicaId);
}

function readBallot(reader: ByteReader): Ballot {
  const round = reader.varuint();
  return makeBallot(round, reader.varuint());
}

/** The sessions of the payload decoded last (EncodedPayload.sessions). */
let lastSessionsOf: EncodedPayload | null = null;
let lastSessions: readonly SessionRecord[] = [];

/**
 * A payload held as its encoded bytes (the `payload` layout above), its fields decoded on each
 * access. The consensus core only moves payloads around: a write's payload is encoded once and
 * then copied byte for byte into the record and every message, a received one is checked and
 * kept as one byte array. Per write that is one long-lived object and one array instead of a
 * graph of a dozen (payload, request id, session records, results, values), which is what
 * the garbage collector spent its time copying and marking. Field getters allocate what they
 * return; byte fields are views into `bytes`, which is never modified.
 */
export class EncodedPayload implements EntryPayload {
  /** Only from bytes known to hold exactly one well-formed payload: encodeEntryPayload and readPayload build them. */
  constructor(readonly bytes: Uint8Array) {}

  get value(): Uint8Array | null {
    return this.reader().bytesOrNullView();
  }

  get proposerId(): number {
    const reader = this.reader();
    reader.skipBytesOrNull();
    return reader.varuint();
  }

  get requestId(): RequestId | null {
    return readRequestId(this.readerAtRequestId());
  }

  get sessions(): readonly SessionRecord[] {
    // A write reads the chosen payload's sessions twice in a row (session lookup, then the new
    // payload's table): the last decoded table is kept for the next call, and only that one.
    if (lastSessionsOf === this) return lastSessions;
    const reader = this.readerAtRequestId();
    readRequestId(reader);
    lastSessions = readSessions(reader);
    lastSessionsOf = this;
    return lastSessions;
  }

  private reader(): ByteReader {
    return new ByteReader(this.bytes, 'CORRUPTION', 'payload');
  }

  /** A reader past the value and proposer id. */
  private readerAtRequestId(): ByteReader {
    const reader = this.reader();
    reader.skipBytesOrNull();
    reader.varuint();
    return reader;
  }
}

/** The payload as an EncodedPayload (itself when it already is one). */
export function encodeEntryPayload(payload: EntryPayload): EncodedPayload {
  if (payload instanceof EncodedPayload) return payload;
  writer.reset(0);
  writePayload(payload);
  // Its own memory, not a slice of a shared pool: the payload may live as long as its key.
  return new EncodedPayload(new Uint8Array(writer.view()));
}

/** The payload as a plain object with every field decoded (tests, debugging, equality by content). */
export function plainPayload(payload: EntryPayload): EntryPayload {
  return { value: payload.value, proposerId: payload.proposerId, requestId: payload.requestId, sessions: payload.sessions };
}

/**
 * True when two payloads are the same proposal: the same bytes, or the same proposer and request
 * (how payloads that are not both encoded, e.g. from format-1 records, were always compared).
 */
export function samePayloadIdentity(a: EntryPayload, b: EntryPayload): boolean {
  if (a === b) return true;
  if (a instanceof EncodedPayload && b instanceof EncodedPayload && Buffer.compare(a.bytes, b.bytes) === 0) return true;
  if (a.proposerId !== b.proposerId) return false;
  const first = a.requestId;
  const second = b.requestId;
  if (first === null || second === null) return first === second;
  return first.clientId === second.clientId && first.sequence === second.sequence;
}

function writePayload(payload: EntryPayload): void {
  if (payload instanceof EncodedPayload) {
    writer.raw(payload.bytes);
    return;
  }
  writer.bytesOrNull(payload.value);
  writer.varuint(payload.proposerId);
  const requestId = payload.requestId;
  if (requestId === null) {
    writer.u8(0);
  } else {
    writer.u8(1);
    writer.string(requestId.clientId);
    writer.f64(requestId.timestampMs);
    writer.varuint(requestId.sequence);
  }
  writer.varuint(payload.sessions.length);
  for (const session of payload.sessions) {
    writer.string(session.clientId);
    writer.varuint(session.sequence);
    writer.varuint(session.result.version);
    writer.u8(session.result.applied ? 1 : 0);
    writer.bytesOrNull(session.result.value);
  }
}

function readRequestId(reader: ByteReader): RequestId | null {
  return reader.flag() ? { clientId: reader.string(), timestampMs: reader.f64(), sequence: reader.varuint() } : null;
}

function readSessions(reader: ByteReader): SessionRecord[] {
  const count = reader.varuint();
  const sessions: SessionRecord[] = [];
  for (let index = 0; index < count; index++) {
    const clientId = reader.string();
    const sequence = reader.varuint();
    const version = reader.varuint();
    const applied = reader.flag();
    const result: KeyResult = { applied, version, value: reader.bytesOrNullView() };
    sessions.push({ clientId, sequence, result });
  }
  return sessions;
}

/** Checks one payload field by field without building it, and keeps a copy of its bytes. */
function readPayload(reader: ByteReader): EncodedPayload {
  const start = reader.offset;
  reader.skipBytesOrNull();
  reader.varuint();
  if (reader.flag()) {
    reader.skipString();
    reader.skip(8);
    reader.varuint();
  }
  const count = reader.varuint();
  // Each session takes at least 5 bytes: a count beyond what is left is corrupt.
  if (count * 5 > reader.remaining()) reader.fail('session count beyond the input');
  for (let index = 0; index < count; index++) {
    reader.skipString();
    reader.varuint();
    reader.varuint();
    reader.flag();
    reader.skipBytesOrNull();
  }
  return new EncodedPayload(reader.copyOfRange(start, reader.offset));
}

function writeAcceptor(state: AcceptorState): void {
  writeBallot(state.promised);
  const accepted = state.accepted;
  if (accepted === null) {
    writer.u8(0);
    return;
  }
  writer.u8(1);
  writeBallot(accepted.ballot);
  writePayload(accepted.payload);
}

function readAcceptor(reader: ByteReader): AcceptorState {
  const promised = readBallot(reader);
  if (!reader.flag()) return { promised, accepted: null };
  const ballot = readBallot(reader);
  return { promised, accepted: { ballot, payload: readPayload(reader) } };
}

function writeChosen(entry: ChosenEntry): void {
  writer.varuint(entry.entryId);
  if (entry.payload === null) {
    writer.u8(0);
    return;
  }
  writer.u8(1);
  writePayload(entry.payload);
}

function readChosen(reader: ByteReader): ChosenEntry {
  const entryId = reader.varuint();
  const payload = reader.flag() ? readPayload(reader) : null;
  if ((entryId === 0) !== (payload === null)) reader.fail('chosen payload presence');
  return { entryId, payload };
}

function writeSummary(summary: StateSummary): void {
  writeBallot(summary.promised);
  if (summary.acceptedBallot === null) {
    writer.u8(0);
    return;
  }
  writer.u8(1);
  writeBallot(summary.acceptedBallot);
}

function readSummary(reader: ByteReader): StateSummary {
  const promised = readBallot(reader);
  return { promised, acceptedBallot: reader.flag() ? readBallot(reader) : null };
}

// ── PaxosLog records ──────────────────────────────────────────────────────────────────────────

export function encodePaxosLogRecord(record: PaxosLogRecord): Uint8Array {
  writer.reset(0);
  writer.u8(PAXOS_LOG_TAG);
  writer.u8(PAXOS_LOG_FORMAT);
  writeChosen(record.chosen);
  writeAcceptor(record.open);
  return writer.finish();
}

/** Decodes a format-2 record (the caller checked the tag byte). */
export function decodePaxosLogRecord(bytes: Uint8Array): PaxosLogRecord {
  const reader = new ByteReader(bytes, 'CORRUPTION', 'PaxosLog record');
  if (reader.u8() !== PAXOS_LOG_TAG) reader.fail('not a binary record');
  const format = reader.u8();
  if (format !== PAXOS_LOG_FORMAT) reader.fail(`unknown format ${format}`);
  const chosen = readChosen(reader);
  const open = readAcceptor(reader);
  if (!reader.done) reader.fail('trailing bytes');
  return { chosen, open };
}

// ── peer messages ─────────────────────────────────────────────────────────────────────────────

/** msgpack bin header sizes: bin8 (0xc4), bin16 (0xc5), bin32 (0xc6). */
const BIN_HEADER_BYTES_MAX = 5;

/** Type byte of an extension message (see the header). */
export const EXTENSION_MESSAGE_TYPE = 0x40;

/** One peer message as one complete msgpack `bin` value (see the header). */
export function encodePeerMessage(message: PeerMessage): Uint8Array {
  writer.reset(BIN_HEADER_BYTES_MAX);
  writer.u8(MESSAGE_TYPES.indexOf(message.type) + 1);
  writeMessageBody(message);
  return finishBin();
}

/** A message of another layer as one msgpack `bin` value: the extension type byte, then `body`. */
export function encodeExtensionMessage(body: Uint8Array): Uint8Array {
  writer.reset(BIN_HEADER_BYTES_MAX);
  writer.u8(EXTENSION_MESSAGE_TYPE);
  writer.raw(body);
  return finishBin();
}

function writeMessageBody(message: PeerMessage): void {
  writer.bytes(message.key);
  writer.varuint(message.chosenId);
  switch (message.type) {
    case 'paxos':
      writer.varuint(message.entryId);
      writeAcceptor(message.sender);
      writeSummary(message.viewOfReceiver);
      break;
    case 'chosen':
      writeChosen(message.entry);
      break;
    case 'fetch':
      break;
    case 'readQuery':
      writer.varuint(message.readId);
      break;
    case 'readReply':
      writer.varuint(message.readId);
      writer.u8(message.acceptedBeyondChosen ? 1 : 0);
      break;
  }
}

function finishBin(): Uint8Array {
  // The body was written after a 5-byte gap; put the smallest bin header right before it.
  const bodyBytes = writer.offset - BIN_HEADER_BYTES_MAX;
  let start: number;
  if (bodyBytes < 0x100) {
    start = BIN_HEADER_BYTES_MAX - 2;
    writer.patch(start, 0xc4);
    writer.patch(start + 1, bodyBytes);
  } else if (bodyBytes < 0x10000) {
    start = BIN_HEADER_BYTES_MAX - 3;
    writer.patch(start, 0xc5);
    writer.patchUint16BE(start + 1, bodyBytes);
  } else {
    start = 0;
    writer.patch(0, 0xc6);
    writer.patchUint32BE(1, bodyBytes);
  }
  return writer.finish(start);
}

function readPeerMessage(reader: ByteReader): PeerMessage {
  const typeByte = reader.u8();
  const type = MESSAGE_TYPES[typeByte - 1];
  if (type === undefined) reader.fail(`unknown message type ${typeByte}`);
  const keyLength = reader.varuint();
  if (keyLength > KEY_BYTES_MAX) reader.fail(`key of ${keyLength} bytes`);
  const key = reader.bytesOfLength(keyLength);
  const chosenId = reader.varuint();
  switch (type) {
    case 'paxos': {
      const entryId = reader.varuint();
      const sender = readAcceptor(reader);
      return { type, key, chosenId, entryId, sender, viewOfReceiver: readSummary(reader) };
    }
    case 'chosen':
      return { type, key, chosenId, entry: readChosen(reader) };
    case 'fetch':
      return { type, key, chosenId };
    case 'readQuery':
      return { type, key, chosenId, readId: reader.varuint() };
    case 'readReply': {
      const readId = reader.varuint();
      return { type, key, chosenId, readId, acceptedBeyondChosen: reader.flag() };
    }
  }
}

/**
 * Every message of one frame payload: a msgpack array (fixarray, array16 or array32) of `bin`
 * values, each one message. Extension messages go to `decodeExtension` (their body, a copy);
 * without it they are malformed. Throws PROTOCOL_ERROR on anything else.
 */
export function decodePeerMessages<TExtension = never>(payload: Uint8Array, decodeExtension?: (body: Uint8Array) => TExtension): (PeerMessage | TExtension)[] {
  const reader = new ByteReader(payload, 'PROTOCOL_ERROR', 'peer frame');
  const head = reader.u8();
  let count: number;
  if ((head & 0xf0) === 0x90) count = head & 0x0f;
  else if (head === 0xdc) count = (reader.u8() << 8) | reader.u8();
  else if (head === 0xdd) count = ((reader.u8() << 24) | (reader.u8() << 16) | (reader.u8() << 8) | reader.u8()) >>> 0;
  else return reader.fail('payload is not a msgpack array');
  if (count > payload.length) reader.fail('message count beyond the payload');
  const messages: (PeerMessage | TExtension)[] = [];
  for (let index = 0; index < count; index++) {
    const binType = reader.u8();
    let length: number;
    if (binType === 0xc4) length = reader.u8();
    else if (binType === 0xc5) length = (reader.u8() << 8) | reader.u8();
    else if (binType === 0xc6) length = ((reader.u8() << 24) | (reader.u8() << 16) | (reader.u8() << 8) | reader.u8()) >>> 0;
    else return reader.fail('message is not a msgpack bin');
    const end = reader.offset + length;
    if (end > payload.length) reader.fail('truncated message');
    const message = new ByteReader(payload, 'PROTOCOL_ERROR', 'peer message', end, reader.offset);
    if (length > 0 && payload[reader.offset] === EXTENSION_MESSAGE_TYPE && decodeExtension !== undefined) {
      message.u8();
      messages.push(decodeExtension(message.bytesOfLength(length - 1)));
    } else {
      messages.push(readPeerMessage(message));
      if (!message.done) message.fail('trailing bytes');
    }
    reader.offset = end;
  }
  if (!reader.done) reader.fail('trailing bytes after the messages');
  return messages;
}
