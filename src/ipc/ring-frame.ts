/**
 * The messages that cross a shard worker's rings (one typed module per boundary, STYLE.md §4),
 * and their codec: msgpackr over positional tuples, because object keys would be re-encoded
 * as strings in every frame on the hottest path of the server.
 *
 *   request      main → worker   [0, id, key, operation, clientId, timestampMs, sequence, logGroup?]
 *   reply        worker → main   [1, id, applied, version, value | nil, logPosition?]
 *   failure      worker → main   [2, id, code, message, details | nil]
 *   ping / pong  either way      [3, id] / [4, id]
 *   shutdown     main → worker   [5]             no request follows; finish, then answer closed
 *   closed       worker → main   [6]             every reply has been written before it
 *   statsRequest main → worker   [7, id]
 *   stats        worker → main   [8, id, {counter: number}]
 *
 *   operation    get [0, consistency 0=linearizable 1=local] | set [1, value, ifVersion | nil,
 *                flags (1 = onlyIfAbsent, 2 = onlyIfPresent)] | delete [2, ifVersion | nil]
 *                | incr [3, delta as int64] | append [4, value]
 *
 * `logGroup` (a string) sends the request to that Delos log group's KV applicator instead of the
 * per-key PaxosStore path (docs/delos.md); its reply carries the log position of the write.
 * Both trailing fields are absent on the PaxosStore path, so its frames are unchanged.
 *
 * The two frames of every request, `request` and `reply`, have a hand-written binary form
 * instead (msgpackr's tuple, key and value copies and string decoding were the largest source of
 * garbage in a shard worker). It starts with 0xC1, the one byte msgpack never uses, so a decoder
 * tells the two apart by the first byte; frames the binary form does not cover (incr with its
 * bigint delta, a Delos `logGroup`, a reply's `logPosition`, an id or integer that is not a
 * non-negative safe integer) keep the msgpack tuple:
 *
 *   request  C1 00, varuint id, bytes key, string clientId, varuint timestampMs, varuint sequence,
 *            operation: 00 get, u8 consistency | 01 set, u8 flags, varuint (ifVersion + 1, 0 = none),
 *            bytes value | 02 delete, varuint (ifVersion + 1) | 04 append, bytes value
 *   reply    C1 01, varuint id, u8 applied, varuint version, bytes? value
 *
 * (primitives as in src/util/byte-codec.ts). Binary keys and values decode as copies (never views
 * into the ring, which the producer overwrites): plain Uint8Arrays in binary requests, Buffers
 * in replies and msgpack frames; the incr delta travels as a msgpack int64 and decodes as a bigint.
 * The ring is an internal boundary, yet decoding still checks the shapes: a mismatch means two
 * builds disagree, which must surface as PROTOCOL_ERROR rather than as a wrong result.
 */

import { Packr, RESET_BUFFER_MODE } from 'msgpackr';
import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';
import { type ErrorCode, errorCatalogue, PaxosStoreError } from '../errors.js';
import { ByteReader, ByteWriter } from '../util/byte-codec.js';

export interface RequestFrame {
  readonly type: 'request';
  readonly id: number;
  readonly key: Uint8Array;
  readonly operation: KeyOperation;
  readonly requestId: RequestId;
  /** A Delos log group: the request goes to its applicator, not to the per-key consensus path. */
  readonly logGroup?: string;
}

/** A result from a Delos log group also names the log position of the entry that applied it. */
export type RingResult = KeyResult & { readonly logPosition?: number };

export type RingFrame =
  | RequestFrame
  | { readonly type: 'reply'; readonly id: number; readonly result: RingResult }
  | { readonly type: 'failure'; readonly id: number; readonly error: PaxosStoreError }
  | { readonly type: 'ping'; readonly id: number }
  | { readonly type: 'pong'; readonly id: number }
  | { readonly type: 'shutdown' }
  | { readonly type: 'closed' }
  | { readonly type: 'statsRequest'; readonly id: number }
  | { readonly type: 'stats'; readonly id: number; readonly counters: Readonly<Record<string, number>> };

const FRAME_TAG = {
  request: 0,
  reply: 1,
  failure: 2,
  ping: 3,
  pong: 4,
  shutdown: 5,
  closed: 6,
  statsRequest: 7,
  stats: 8,
} as const;
const OPERATION_TAG = { get: 0, set: 1, delete: 2, incr: 3, append: 4 } as const;
const SET_ONLY_IF_ABSENT = 1;
const SET_ONLY_IF_PRESENT = 2;

function operationTuple(operation: KeyOperation): unknown[] {
  switch (operation.kind) {
    case 'get':
      return [OPERATION_TAG.get, operation.consistency === 'local' ? 1 : 0];
    case 'set': {
      const flags = (operation.onlyIfAbsent ? SET_ONLY_IF_ABSENT : 0) | (operation.onlyIfPresent ? SET_ONLY_IF_PRESENT : 0);
      return [OPERATION_TAG.set, operation.value, operation.ifVersion ?? null, flags];
    }
    case 'delete':
      return [OPERATION_TAG.delete, operation.ifVersion ?? null];
    case 'incr':
      return [OPERATION_TAG.incr, operation.delta];
    case 'append':
      return [OPERATION_TAG.append, operation.value];
  }
}

function frameTuple(frame: RingFrame): unknown[] {
  switch (frame.type) {
    case 'request': {
      const { clientId, timestampMs, sequence } = frame.requestId;
      const tuple = [FRAME_TAG.request, frame.id, frame.key, operationTuple(frame.operation), clientId, timestampMs, sequence];
      if (frame.logGroup !== undefined) tuple.push(frame.logGroup);
      return tuple;
    }
    case 'reply': {
      const { applied, version, value, logPosition } = frame.result;
      const tuple = [FRAME_TAG.reply, frame.id, applied, version, value];
      if (logPosition !== undefined) tuple.push(logPosition);
      return tuple;
    }
    case 'failure':
      return [FRAME_TAG.failure, frame.id, frame.error.code, frame.error.message, frame.error.details ?? null];
    case 'ping':
    case 'pong':
    case 'statsRequest':
      return [FRAME_TAG[frame.type], frame.id];
    case 'shutdown':
    case 'closed':
      return [FRAME_TAG[frame.type]];
    case 'stats':
      return [FRAME_TAG.stats, frame.id, frame.counters];
  }
}

function malformed(what: string): PaxosStoreError {
  return new PaxosStoreError('PROTOCOL_ERROR', `malformed ring frame: ${what}`);
}

function expectInteger(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw malformed(`${what} is not an integer`);
  return value;
}

function expectBytes(value: unknown, what: string): Uint8Array {
  if (!(value instanceof Uint8Array)) throw malformed(`${what} is not binary`);
  return value;
}

function optionalVersion(value: unknown): number | undefined {
  return value === null || value === undefined ? undefined : expectInteger(value, 'ifVersion');
}

function decodeOperation(tuple: unknown): KeyOperation {
  if (!Array.isArray(tuple)) throw malformed('operation is not a tuple');
  switch (tuple[0]) {
    case OPERATION_TAG.get:
      return { kind: 'get', consistency: tuple[1] === 1 ? 'local' : 'linearizable' };
    case OPERATION_TAG.set: {
      const flags = expectInteger(tuple[3], 'set flags');
      const operation: { kind: 'set'; value: Uint8Array; ifVersion?: number; onlyIfAbsent?: boolean; onlyIfPresent?: boolean } = {
        kind: 'set',
        value: expectBytes(tuple[1], 'set value'),
      };
      const ifVersion = optionalVersion(tuple[2]);
      if (ifVersion !== undefined) operation.ifVersion = ifVersion;
      if (flags & SET_ONLY_IF_ABSENT) operation.onlyIfAbsent = true;
      if (flags & SET_ONLY_IF_PRESENT) operation.onlyIfPresent = true;
      return operation;
    }
    case OPERATION_TAG.delete: {
      const ifVersion = optionalVersion(tuple[1]);
      return ifVersion === undefined ? { kind: 'delete' } : { kind: 'delete', ifVersion };
    }
    case OPERATION_TAG.incr:
      if (typeof tuple[1] !== 'bigint') throw malformed('incr delta is not a bigint');
      return { kind: 'incr', delta: tuple[1] };
    case OPERATION_TAG.append:
      return { kind: 'append', value: expectBytes(tuple[1], 'append value') };
    default:
      throw malformed(`unknown operation tag ${String(tuple[0])}`);
  }
}

function decodeError(code: unknown, message: unknown, details: unknown): PaxosStoreError {
  const known = typeof code === 'string' && Object.hasOwn(errorCatalogue, code);
  const text = typeof message === 'string' ? message : undefined;
  const detailRecord = details !== null && typeof details === 'object' ? (details as Record<string, unknown>) : undefined;
  if (known) return new PaxosStoreError(code as ErrorCode, text, detailRecord);
  return new PaxosStoreError('INTERNAL', `unknown error code ${String(code)}: ${text ?? ''}`, detailRecord);
}

function decodeCounters(value: unknown): Record<string, number> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw malformed('stats counters are not a map');
  for (const entry of Object.values(value)) if (typeof entry !== 'number') throw malformed('a stats counter is not a number');
  return value as Record<string, number>;
}

function decodeTuple(tuple: unknown[]): RingFrame {
  switch (tuple[0]) {
    case FRAME_TAG.request: {
      const clientId = tuple[4];
      if (typeof clientId !== 'string') throw malformed('clientId is not a string');
      const request: { -readonly [field in keyof RequestFrame]: RequestFrame[field] } = {
        type: 'request',
        id: expectInteger(tuple[1], 'id'),
        key: expectBytes(tuple[2], 'key'),
        operation: decodeOperation(tuple[3]),
        requestId: { clientId, timestampMs: expectInteger(tuple[5], 'timestampMs'), sequence: expectInteger(tuple[6], 'sequence') },
      };
      if (tuple.length > 7) {
        if (typeof tuple[7] !== 'string') throw malformed('logGroup is not a string');
        request.logGroup = tuple[7];
      }
      return request;
    }
    case FRAME_TAG.reply: {
      const value = tuple[4];
      if (typeof tuple[2] !== 'boolean') throw malformed('applied is not a boolean');
      const result = { applied: tuple[2], version: expectInteger(tuple[3], 'version'), value: value === null ? null : expectBytes(value, 'value') };
      return {
        type: 'reply',
        id: expectInteger(tuple[1], 'id'),
        result: tuple.length > 5 ? { ...result, logPosition: expectInteger(tuple[5], 'logPosition') } : result,
      };
    }
    case FRAME_TAG.failure:
      return { type: 'failure', id: expectInteger(tuple[1], 'id'), error: decodeError(tuple[2], tuple[3], tuple[4]) };
    case FRAME_TAG.ping:
      return { type: 'ping', id: expectInteger(tuple[1], 'id') };
    case FRAME_TAG.pong:
      return { type: 'pong', id: expectInteger(tuple[1], 'id') };
    case FRAME_TAG.statsRequest:
      return { type: 'statsRequest', id: expectInteger(tuple[1], 'id') };
    case FRAME_TAG.shutdown:
      return { type: 'shutdown' };
    case FRAME_TAG.closed:
      return { type: 'closed' };
    case FRAME_TAG.stats:
      return { type: 'stats', id: expectInteger(tuple[1], 'id'), counters: decodeCounters(tuple[2]) };
    default:
      throw malformed(`unknown frame tag ${String(tuple[0])}`);
  }
}

const BINARY_MARK = 0xc1;
const BINARY_REQUEST = 0;
const BINARY_REPLY = 1;

function isCount(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0;
}

/** Whether the binary form covers this frame (see the header); the rest stays msgpack. */
function binaryEncodable(frame: RingFrame): boolean {
  if (frame.type === 'reply') return frame.result.logPosition === undefined && isCount(frame.id) && isCount(frame.result.version);
  if (frame.type !== 'request' || frame.logGroup !== undefined || !isCount(frame.id)) return false;
  const { timestampMs, sequence } = frame.requestId;
  if (!isCount(timestampMs) || !isCount(sequence)) return false;
  const operation = frame.operation;
  if (operation.kind === 'incr') return false;
  if ((operation.kind === 'set' || operation.kind === 'delete') && operation.ifVersion !== undefined) return isCount(operation.ifVersion);
  return true;
}

function writeBinary(writer: ByteWriter, frame: RingFrame): void {
  writer.u8(BINARY_MARK);
  if (frame.type === 'reply') {
    writer.u8(BINARY_REPLY);
    writer.varuint(frame.id);
    writer.u8(frame.result.applied ? 1 : 0);
    writer.varuint(frame.result.version);
    writer.bytesOrNull(frame.result.value);
    return;
  }
  const request = frame as RequestFrame;
  writer.u8(BINARY_REQUEST);
  writer.varuint(request.id);
  writer.bytes(request.key);
  writer.string(request.requestId.clientId);
  writer.varuint(request.requestId.timestampMs);
  writer.varuint(request.requestId.sequence);
  const operation = request.operation;
  writer.u8(OPERATION_TAG[operation.kind]);
  switch (operation.kind) {
    case 'get':
      writer.u8(operation.consistency === 'local' ? 1 : 0);
      return;
    case 'set':
      writer.u8((operation.onlyIfAbsent ? SET_ONLY_IF_ABSENT : 0) | (operation.onlyIfPresent ? SET_ONLY_IF_PRESENT : 0));
      writer.varuint(operation.ifVersion === undefined ? 0 : operation.ifVersion + 1);
      writer.bytes(operation.value);
      return;
    case 'delete':
      writer.varuint(operation.ifVersion === undefined ? 0 : operation.ifVersion + 1);
      return;
    case 'append':
      writer.bytes(operation.value);
      return;
    case 'incr':
      throw new PaxosStoreError('INTERNAL', 'incr has no binary ring form');
  }
}

function readBinary(bytes: Uint8Array): RingFrame {
  const reader = new ByteReader(bytes, 'PROTOCOL_ERROR', 'malformed ring frame');
  reader.u8(); // BINARY_MARK, checked by the caller
  const kind = reader.u8();
  let frame: RingFrame;
  if (kind === BINARY_REPLY) {
    const id = reader.varuint();
    const applied = reader.flag();
    const version = reader.varuint();
    const valueLengthPlusOne = reader.varuint();
    const value = valueLengthPlusOne === 0 ? null : reader.bufferOfLength(valueLengthPlusOne - 1);
    frame = { type: 'reply', id, result: { applied, version, value } };
  } else if (kind === BINARY_REQUEST) {
    const id = reader.varuint();
    const key = reader.bytesOfLength(reader.varuint());
    const requestId: RequestId = { clientId: reader.string(), timestampMs: reader.varuint(), sequence: reader.varuint() };
    frame = { type: 'request', id, key, operation: readBinaryOperation(reader), requestId };
  } else {
    throw malformed(`unknown binary frame kind ${kind}`);
  }
  if (!reader.done) throw malformed('trailing bytes');
  return frame;
}

function readBinaryOperation(reader: ByteReader): KeyOperation {
  const tag = reader.u8();
  switch (tag) {
    case OPERATION_TAG.get: {
      const consistency = reader.u8();
      if (consistency > 1) throw malformed(`get consistency ${consistency}`);
      return { kind: 'get', consistency: consistency === 1 ? 'local' : 'linearizable' };
    }
    case OPERATION_TAG.set: {
      const flags = reader.u8();
      if (flags > (SET_ONLY_IF_ABSENT | SET_ONLY_IF_PRESENT)) throw malformed(`set flags ${flags}`);
      const ifVersionPlusOne = reader.varuint();
      const operation: { kind: 'set'; value: Uint8Array; ifVersion?: number; onlyIfAbsent?: boolean; onlyIfPresent?: boolean } = {
        kind: 'set',
        value: reader.bytesOfLength(reader.varuint()),
      };
      if (ifVersionPlusOne > 0) operation.ifVersion = ifVersionPlusOne - 1;
      if (flags & SET_ONLY_IF_ABSENT) operation.onlyIfAbsent = true;
      if (flags & SET_ONLY_IF_PRESENT) operation.onlyIfPresent = true;
      return operation;
    }
    case OPERATION_TAG.delete: {
      const ifVersionPlusOne = reader.varuint();
      return ifVersionPlusOne === 0 ? { kind: 'delete' } : { kind: 'delete', ifVersion: ifVersionPlusOne - 1 };
    }
    case OPERATION_TAG.append:
      return { kind: 'append', value: reader.bytesOfLength(reader.varuint()) };
    default:
      throw malformed(`unknown binary operation tag ${tag}`);
  }
}

/**
 * One codec per thread end: a ByteWriter for the binary frames and a Packr for the rest, each
 * reusing its scratch buffer between frames.
 */
export class RingFrameCodec {
  private readonly packr = new Packr({ useRecords: false, copyBuffers: true, encodeUndefinedAsNil: true });
  private readonly writer = new ByteWriter();

  /**
   * Encodes into a scratch buffer. The result is valid only until the next `encode`: the caller
   * copies it into the ring at once.
   */
  encode(frame: RingFrame): Uint8Array {
    if (binaryEncodable(frame)) {
      this.writer.reset(0);
      writeBinary(this.writer, frame);
      return this.writer.view();
    }
    return this.packr.pack(frameTuple(frame), RESET_BUFFER_MODE);
  }

  /** Decodes one frame; binary fields are copies, so `bytes` may be a view into the ring. */
  decode(bytes: Uint8Array): RingFrame {
    if (bytes.length > 0 && bytes[0] === BINARY_MARK) return readBinary(bytes);
    let tuple: unknown;
    try {
      tuple = this.packr.unpack(bytes);
    } catch (error) {
      throw new PaxosStoreError('PROTOCOL_ERROR', `undecodable ring frame: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (!Array.isArray(tuple)) throw malformed('not a tuple');
    return decodeTuple(tuple);
  }
}
