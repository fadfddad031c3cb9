/**
 * Fast paths of the WebSocket protocol's msgpack coding (protocol in ws-protocol.ts): the frame
 * shapes of nearly every request and reply — get / set / delete requests, single-result and
 * error replies — are written and read here by hand, without an intermediate object and without
 * msgpackr's generic walk. Everything else goes through msgpackr and the validating parsers of
 * ws-protocol.ts, so the protocol and its error messages stay exactly theirs:
 *
 *   encode: hand-written bytes are IDENTICAL to msgpackr's for the same frame (tested), so a
 *           reader cannot tell the paths apart;
 *   decode: the fast reader accepts only what it fully understands and answers `undefined` for
 *           anything else (unknown key, unusual type, nested shape it does not handle, truncated
 *           bytes), and then the generic decoder and parser take the same bytes.
 *
 * msgpack subset written (as msgpackr writes it: maps as map16, minimal ints, numbers beyond 32
 * bits as float64):
 *
 *   map16      0xde  u16 count     then count × (key, value)
 *   str        0xa0|n (n < 32) · 0xd9 u8 · 0xda u16 · 0xdb u32, then UTF-8 bytes
 *   bin        0xc4 u8 · 0xc5 u16 · 0xc6 u32, then bytes
 *   uint       0x00..0x7f · 0xcc u8 · 0xcd u16 · 0xce u32 · 0xcb float64 (integers ≥ 2^32)
 *   nil 0xc0   false 0xc2   true 0xc3
 */
import type { KeyResult, RequestId } from '../../api/operations.js';
import { type ErrorCode, errorCatalogue } from '../../errors.js';
import { type ClientFrame, FRAME_ID_MAX, type ServerFrame, type WireError } from './ws-protocol.js';

const MAP16 = 0xde;
const NIL = 0xc0;
const FALSE = 0xc2;
const TRUE = 0xc3;
const BIN8 = 0xc4;
const BIN16 = 0xc5;
const BIN32 = 0xc6;
const FLOAT64 = 0xcb;
const UINT8 = 0xcc;
const UINT16 = 0xcd;
const UINT32 = 0xce;
const UINT64 = 0xcf;
const STR8 = 0xd9;
const STR16 = 0xda;
const STR32 = 0xdb;

/** Longest fixed part of a frame (keys, headers, numbers), beyond its strings and binaries. */
const FIXED_BYTES_MAX = 256;

/** Encoded frames are cut from slabs of this size (a larger frame gets a slab of its own size). */
const SLAB_BYTES = 64 * 1024;

/**
 * Appends msgpack to a slab and hands out views of it. A view stays valid for as long as it is
 * referenced: a full slab is never written again, the writer just starts a new one.
 */
class SlabWriter {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  private start = 0;
  position = 0;

  /** Starts a frame with room for its fixed part; drops whatever a failed encoding left behind. */
  begin(): void {
    this.position = this.start;
    this.reserve(FIXED_BYTES_MAX);
  }

  /** Makes room for at least `bytes` more bytes of the frame being written. */
  reserve(bytes: number): void {
    if (this.position + bytes <= this.slab.length) return;
    const written = this.position - this.start;
    const next = Buffer.allocUnsafe(Math.max(SLAB_BYTES, 2 * (written + bytes)));
    this.slab.copy(next, 0, this.start, this.position);
    this.slab = next;
    this.start = 0;
    this.position = written;
  }

  /** The frame written since the last finish(). */
  finish(): Buffer {
    const frame = this.slab.subarray(this.start, this.position);
    this.start = this.position;
    return frame;
  }

  byte(value: number): void {
    this.slab[this.position++] = value;
  }

  mapHeader(count: number): void {
    this.slab[this.position++] = MAP16;
    this.slab[this.position++] = count >> 8;
    this.slab[this.position++] = count & 0xff;
  }

  /** A key spelled out in advance (see `keyBytes`). */
  raw(bytes: Uint8Array): void {
    this.slab.set(bytes, this.position);
    this.position += bytes.length;
  }

  unsigned(value: number): void {
    const slab = this.slab;
    if (value < 0x80) {
      slab[this.position++] = value;
    } else if (value < 0x100) {
      slab[this.position++] = UINT8;
      slab[this.position++] = value;
    } else if (value < 0x10000) {
      slab[this.position++] = UINT16;
      slab.writeUInt16BE(value, this.position);
      this.position += 2;
    } else if (value <= 0xffff_ffff) {
      slab[this.position++] = UINT32;
      slab.writeUInt32BE(value, this.position);
      this.position += 4;
    } else {
      slab[this.position++] = FLOAT64;
      slab.writeDoubleBE(value, this.position);
      this.position += 8;
    }
  }

  boolean(value: boolean): void {
    this.slab[this.position++] = value ? TRUE : FALSE;
  }

  /** Reserves room for the fixed-size fields that follow, too. */
  binary(bytes: Uint8Array): void {
    this.reserve(5 + bytes.length + FIXED_BYTES_MAX);
    const length = bytes.length;
    if (length < 0x100) {
      this.slab[this.position++] = BIN8;
      this.slab[this.position++] = length;
    } else if (length < 0x10000) {
      this.slab[this.position++] = BIN16;
      this.slab.writeUInt16BE(length, this.position);
      this.position += 2;
    } else {
      this.slab[this.position++] = BIN32;
      this.slab.writeUInt32BE(length, this.position);
      this.position += 4;
    }
    this.slab.set(bytes, this.position);
    this.position += length;
  }

  string(text: string): void {
    // UTF-8 takes at most 3 bytes per UTF-16 unit; the header at most 5.
    this.reserve(5 + 3 * text.length + FIXED_BYTES_MAX);
    const headerBytes = text.length < 0x20 ? 1 : text.length < 0x100 ? 2 : text.length < 0x10000 ? 3 : 5;
    const length = this.slab.write(text, this.position + headerBytes, 'utf8');
    const neededHeaderBytes = length < 0x20 ? 1 : length < 0x100 ? 2 : length < 0x10000 ? 3 : 5;
    if (neededHeaderBytes !== headerBytes) {
      // Multi-byte characters pushed the length past the estimated header's range.
      this.slab.copyWithin(this.position + neededHeaderBytes, this.position + headerBytes, this.position + headerBytes + length);
    }
    const slab = this.slab;
    if (neededHeaderBytes === 1) {
      slab[this.position++] = 0xa0 | length;
    } else if (neededHeaderBytes === 2) {
      slab[this.position++] = STR8;
      slab[this.position++] = length;
    } else if (neededHeaderBytes === 3) {
      slab[this.position++] = STR16;
      slab.writeUInt16BE(length, this.position);
      this.position += 2;
    } else {
      slab[this.position++] = STR32;
      slab.writeUInt32BE(length, this.position);
      this.position += 4;
    }
    this.position += length;
  }
}

/** A map key as its encoded msgpack str. */
function keyBytes(name: string): Uint8Array {
  const utf8 = Buffer.from(name, 'utf8');
  return Buffer.concat([Buffer.from([0xa0 | utf8.length]), utf8]);
}

const KEY = {
  id: keyBytes('id'),
  ok: keyBytes('ok'),
  op: keyBytes('op'),
  key: keyBytes('key'),
  value: keyBytes('value'),
  result: keyBytes('result'),
  applied: keyBytes('applied'),
  version: keyBytes('version'),
  error: keyBytes('error'),
  code: keyBytes('code'),
  message: keyBytes('message'),
  consistency: keyBytes('consistency'),
  requestId: keyBytes('requestId'),
  clientId: keyBytes('clientId'),
  timestampMs: keyBytes('timestampMs'),
  sequence: keyBytes('sequence'),
  ifVersion: keyBytes('ifVersion'),
  onlyIfAbsent: keyBytes('onlyIfAbsent'),
  onlyIfPresent: keyBytes('onlyIfPresent'),
} as const;

const writer = new SlabWriter();

// ─── encoding ───────────────────────────────────────────────────────────────────────────────

/** A reply's bytes by hand when its shape is a hot one, else undefined (the caller packs it generically). */
export function encodeServerFrameFast(frame: ServerFrame): Uint8Array | undefined {
  if (frame.ok) {
    if (frame.results !== undefined || frame.result === undefined || !isPlainResult(frame.result)) return undefined;
    writer.begin();
    writer.mapHeader(3);
    writer.raw(KEY.id);
    writer.unsigned(frame.id);
    writer.raw(KEY.ok);
    writer.byte(TRUE);
    writer.raw(KEY.result);
    writeKeyResult(frame.result);
    return writer.finish();
  }
  if (frame.id === null) return undefined;
  writer.begin();
  writer.mapHeader(3);
  writer.raw(KEY.id);
  writer.unsigned(frame.id);
  writer.raw(KEY.ok);
  writer.byte(FALSE);
  writer.raw(KEY.error);
  writer.mapHeader(2);
  writer.raw(KEY.code);
  writer.string(frame.error.code);
  writer.raw(KEY.message);
  writer.string(frame.error.message);
  return writer.finish();
}

function writeKeyResult(result: KeyResult): void {
  writer.mapHeader(3);
  writer.raw(KEY.applied);
  writer.boolean(result.applied);
  writer.raw(KEY.version);
  writer.unsigned(result.version);
  writer.raw(KEY.value);
  if (result.value === null) writer.byte(NIL);
  else writer.binary(result.value);
}

/**
 * A get / set / delete request's bytes by hand, fields in the order id, op, key, value,
 * consistency, ifVersion, onlyIfAbsent, onlyIfPresent, requestId (absent ones left out); else
 * undefined (the caller packs it generically).
 */
export function encodeRequestFast(id: number, frame: DistributiveOmit<ClientFrame, 'id'>): Uint8Array | undefined {
  if (frame.op !== 'get' && frame.op !== 'set' && frame.op !== 'delete') return undefined;
  const { requestId } = frame;
  if (requestId !== undefined && !isPlainRequestId(requestId)) return undefined;
  const value = frame.op === 'set' ? frame.value : undefined;
  const consistency = frame.op === 'get' ? frame.consistency : undefined;
  const ifVersion = frame.op === 'get' ? undefined : frame.ifVersion;
  const onlyIfAbsent = frame.op === 'set' ? frame.onlyIfAbsent : undefined;
  const onlyIfPresent = frame.op === 'set' ? frame.onlyIfPresent : undefined;
  if (ifVersion !== undefined && !isPlainNumber(ifVersion)) return undefined;
  writer.begin();
  writer.mapHeader(
    3 +
      Number(value !== undefined) +
      Number(consistency !== undefined) +
      Number(ifVersion !== undefined) +
      Number(onlyIfAbsent !== undefined) +
      Number(onlyIfPresent !== undefined) +
      Number(requestId !== undefined),
  );
  writer.raw(KEY.id);
  writer.unsigned(id);
  writer.raw(KEY.op);
  writer.raw(OP_BYTES[frame.op]);
  writer.raw(KEY.key);
  writer.binary(frame.key);
  if (value !== undefined) {
    writer.raw(KEY.value);
    writer.binary(value);
  }
  if (consistency !== undefined) {
    writer.raw(KEY.consistency);
    writer.raw(CONSISTENCY_BYTES[consistency]);
  }
  if (ifVersion !== undefined) {
    writer.raw(KEY.ifVersion);
    writer.unsigned(ifVersion);
  }
  if (onlyIfAbsent !== undefined) {
    writer.raw(KEY.onlyIfAbsent);
    writer.boolean(onlyIfAbsent);
  }
  if (onlyIfPresent !== undefined) {
    writer.raw(KEY.onlyIfPresent);
    writer.boolean(onlyIfPresent);
  }
  if (requestId !== undefined) {
    writer.raw(KEY.requestId);
    writeRequestId(requestId);
  }
  return writer.finish();
}

export type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

const OP_BYTES = { get: keyBytes('get'), set: keyBytes('set'), delete: keyBytes('delete') } as const;
const CONSISTENCY_BYTES = { linearizable: keyBytes('linearizable'), local: keyBytes('local') } as const;

function writeRequestId(requestId: RequestId): void {
  writer.mapHeader(3);
  writer.raw(KEY.clientId);
  writer.string(requestId.clientId);
  writer.raw(KEY.timestampMs);
  writer.unsigned(requestId.timestampMs);
  writer.raw(KEY.sequence);
  writer.unsigned(requestId.sequence);
}

/** A result of the expected types (a router that breaks its contract gets the generic, tolerant packer). */
function isPlainResult(result: KeyResult): boolean {
  return typeof result.applied === 'boolean' && isPlainNumber(result.version) && (result.value === null || result.value instanceof Uint8Array);
}

/** Non-negative safe integers: what msgpackr writes as uint or (≥ 2^32) float64. */
function isPlainNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isPlainRequestId(requestId: RequestId): boolean {
  return typeof requestId.clientId === 'string' && isPlainNumber(requestId.timestampMs) && isPlainNumber(requestId.sequence);
}

// ─── decoding ───────────────────────────────────────────────────────────────────────────────

/** Thrown inside the fast reader when the bytes leave the subset it handles; never escapes this module. */
const NOT_FAST = Symbol('not fast');

/** Where a float64 is assembled from a frame's bytes (a DataView per read would be an allocation). */
const float64Bytes = new Uint8Array(8);
const float64View = new DataView(float64Bytes.buffer);

/** A cursor over one frame; every read checks bounds and types and throws NOT_FAST on a surprise. */
class Reader {
  position = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get done(): boolean {
    return this.position === this.bytes.length;
  }

  private byte(): number {
    if (this.position >= this.bytes.length) throw NOT_FAST;
    return this.bytes[this.position++];
  }

  private bigEndian(width: number): number {
    if (this.position + width > this.bytes.length) throw NOT_FAST;
    let value = 0;
    for (let i = 0; i < width; i++) value = value * 256 + this.bytes[this.position++];
    return value;
  }

  mapHeader(): number {
    const head = this.byte();
    if ((head & 0xf0) === 0x80) return head & 0x0f;
    if (head === MAP16) return this.bigEndian(2);
    throw NOT_FAST;
  }

  /** Length of a str whose bytes start at `position` afterwards. */
  private stringLength(): number {
    const head = this.byte();
    if ((head & 0xe0) === 0xa0) return head & 0x1f;
    if (head === STR8) return this.bigEndian(1);
    if (head === STR16) return this.bigEndian(2);
    if (head === STR32) return this.bigEndian(4);
    throw NOT_FAST;
  }

  /** Matches an ASCII map key against `KEY` and returns its name. */
  key(): keyof typeof KEY {
    const length = this.stringLength();
    if (this.position + length > this.bytes.length) throw NOT_FAST;
    const name = asciiKey(this.bytes, this.position, length);
    this.position += length;
    return name;
  }

  /** Which of `spellings` (encoded strs) comes next, without making a string; NOT_FAST for anything else. */
  spelled<T extends string>(spellings: Readonly<Record<T, Uint8Array>>): T {
    for (const name in spellings) {
      const spelled = spellings[name];
      if (this.position + spelled.length > this.bytes.length) continue;
      let same = true;
      for (let i = 0; i < spelled.length && same; i++) same = spelled[i] === this.bytes[this.position + i];
      if (same) {
        this.position += spelled.length;
        return name;
      }
    }
    throw NOT_FAST;
  }

  string(): string {
    const length = this.stringLength();
    if (this.position + length > this.bytes.length) throw NOT_FAST;
    const bytes = this.bytes;
    const start = this.position;
    this.position += length;
    return Buffer.from(bytes.buffer, bytes.byteOffset + start, length).toString('utf8');
  }

  /** A non-negative integer: uint of any width or an integral float64, as msgpackr writes them. */
  unsigned(): number {
    const head = this.byte();
    if (head < 0x80) return head;
    switch (head) {
      case UINT8:
        return this.bigEndian(1);
      case UINT16:
        return this.bigEndian(2);
      case UINT32:
        return this.bigEndian(4);
      case UINT64: {
        const value = this.bigEndian(8);
        if (!Number.isSafeInteger(value)) throw NOT_FAST;
        return value;
      }
      case FLOAT64: {
        if (this.position + 8 > this.bytes.length) throw NOT_FAST;
        for (let i = 0; i < 8; i++) float64Bytes[i] = this.bytes[this.position++];
        const value = float64View.getFloat64(0);
        if (!Number.isSafeInteger(value) || value < 0) throw NOT_FAST;
        return value;
      }
      default:
        throw NOT_FAST;
    }
  }

  boolean(): boolean {
    const head = this.byte();
    if (head === TRUE) return true;
    if (head === FALSE) return false;
    throw NOT_FAST;
  }

  /** True (and consumed) when the next value is nil. */
  nil(): boolean {
    if (this.position >= this.bytes.length) throw NOT_FAST;
    if (this.bytes[this.position] !== NIL) return false;
    this.position++;
    return true;
  }

  /** A bin, copied out: the frame's bytes may be reused (uWS neuters them) or large (a TCP chunk). */
  binary(): Buffer {
    const head = this.byte();
    const length = head === BIN8 ? this.bigEndian(1) : head === BIN16 ? this.bigEndian(2) : head === BIN32 ? this.bigEndian(4) : -1;
    if (length < 0 || this.position + length > this.bytes.length) throw NOT_FAST;
    const copy = Buffer.allocUnsafe(length);
    copy.set(this.bytes.subarray(this.position, this.position + length));
    this.position += length;
    return copy;
  }
}

/** The KEY whose spelling the bytes are; NOT_FAST for any other key. */
function asciiKey(bytes: Uint8Array, start: number, length: number): keyof typeof KEY {
  const candidate = KEY_BY_LENGTH_AND_FIRST.get(length * 256 + (bytes[start] ?? 0));
  if (candidate === undefined) throw NOT_FAST;
  for (const name of candidate) {
    const spelled = KEY[name];
    let same = true;
    for (let i = 1; i < length && same; i++) same = spelled[i + 1] === bytes[start + i];
    if (same) return name;
  }
  throw NOT_FAST;
}

const KEY_BY_LENGTH_AND_FIRST = new Map<number, (keyof typeof KEY)[]>();
for (const name of Object.keys(KEY) as (keyof typeof KEY)[]) {
  const slot = name.length * 256 + name.charCodeAt(0);
  KEY_BY_LENGTH_AND_FIRST.set(slot, [...(KEY_BY_LENGTH_AND_FIRST.get(slot) ?? []), name]);
}

/** Fields of a get / set / delete request as read, before the per-op checks. */
interface RequestFields {
  id: number;
  op: keyof typeof OP_BYTES | undefined;
  key: Buffer | undefined;
  value: Buffer | undefined;
  consistency: keyof typeof CONSISTENCY_BYTES | undefined;
  requestId: RequestId | undefined;
  ifVersion: number | undefined;
  onlyIfAbsent: boolean | undefined;
  onlyIfPresent: boolean | undefined;
}

/**
 * A get / set / delete request read straight into its frame, or undefined when the bytes are
 * anything else — another op, an invalid or unusual field, trailing bytes — for the generic path.
 */
export function decodeClientFrameFast(bytes: Uint8Array): ClientFrame | undefined {
  return readFast(bytes, (reader) => requestFrame(readRequestFields(reader)));
}

/** What `read` makes of the whole of `bytes`; undefined when they leave the fast subset or have bytes left over. */
function readFast<T>(bytes: Uint8Array, read: (reader: Reader) => T | undefined): T | undefined {
  try {
    const reader = new Reader(bytes);
    const value = read(reader);
    return reader.done ? value : undefined;
  } catch (error) {
    if (error === NOT_FAST) return undefined;
    throw error;
  }
}

function readRequestFields(reader: Reader): RequestFields {
  const fields: RequestFields = {
    id: -1,
    op: undefined,
    key: undefined,
    value: undefined,
    consistency: undefined,
    requestId: undefined,
    ifVersion: undefined,
    onlyIfAbsent: undefined,
    onlyIfPresent: undefined,
  };
  for (let remaining = reader.mapHeader(); remaining > 0; remaining--) readRequestField(reader, fields);
  if (fields.id < 0 || fields.id > FRAME_ID_MAX) throw NOT_FAST;
  return fields;
}

function readRequestField(reader: Reader, fields: RequestFields): void {
  const name = reader.key();
  // nil means "absent" for the optional fields, as in the generic parser.
  switch (name) {
    case 'id':
      fields.id = reader.unsigned();
      return;
    case 'op':
      fields.op = reader.spelled(OP_BYTES);
      return;
    case 'key':
      fields.key = reader.binary();
      return;
    case 'value':
      fields.value = reader.binary();
      return;
    case 'consistency':
      fields.consistency = reader.nil() ? undefined : reader.spelled(CONSISTENCY_BYTES);
      return;
    case 'requestId':
      fields.requestId = readRequestId(reader);
      return;
    case 'ifVersion':
      fields.ifVersion = reader.nil() ? undefined : reader.unsigned();
      return;
    case 'onlyIfAbsent':
      fields.onlyIfAbsent = reader.nil() ? undefined : reader.boolean();
      return;
    case 'onlyIfPresent':
      fields.onlyIfPresent = reader.nil() ? undefined : reader.boolean();
      return;
    default:
      throw NOT_FAST;
  }
}

function readRequestId(reader: Reader): RequestId {
  let clientId: string | undefined;
  let timestampMs = -1;
  let sequence = -1;
  for (let remaining = reader.mapHeader(); remaining > 0; remaining--) {
    const name = reader.key();
    if (name === 'clientId') clientId = reader.string();
    else if (name === 'timestampMs') timestampMs = reader.unsigned();
    else if (name === 'sequence') sequence = reader.unsigned();
    else throw NOT_FAST;
  }
  if (clientId === undefined || clientId.length === 0 || clientId.length > 128 || timestampMs < 0 || sequence < 0) throw NOT_FAST;
  return { clientId, timestampMs, sequence };
}

/** The frame the generic parser would build from the same fields; undefined when it would refuse them. */
function requestFrame(fields: RequestFields): ClientFrame | undefined {
  const { id, key, value, consistency, ifVersion, onlyIfAbsent, onlyIfPresent } = fields;
  if (key === undefined) return undefined;
  let frame: Record<string, unknown>;
  switch (fields.op) {
    case 'get':
      // Fields another op would take: the generic parser ignores them; rare enough to leave to it.
      if (value !== undefined || ifVersion !== undefined || onlyIfAbsent !== undefined || onlyIfPresent !== undefined) return undefined;
      frame = { id, op: 'get', key };
      if (consistency !== undefined) frame.consistency = consistency;
      break;
    case 'set':
      if (value === undefined || consistency !== undefined) return undefined;
      frame = { id, op: 'set', key, value };
      if (ifVersion !== undefined) frame.ifVersion = ifVersion;
      if (onlyIfAbsent !== undefined) frame.onlyIfAbsent = onlyIfAbsent;
      if (onlyIfPresent !== undefined) frame.onlyIfPresent = onlyIfPresent;
      break;
    case 'delete':
      if (value !== undefined || consistency !== undefined || onlyIfAbsent !== undefined || onlyIfPresent !== undefined) return undefined;
      frame = { id, op: 'delete', key };
      if (ifVersion !== undefined) frame.ifVersion = ifVersion;
      break;
    default:
      return undefined;
  }
  if (fields.requestId !== undefined) frame.requestId = fields.requestId;
  return frame as unknown as ClientFrame;
}

/** Reply fields as read. */
interface ReplyFields {
  id: number;
  ok: boolean | undefined;
  result: KeyResult | undefined;
  error: WireError | undefined;
}

/**
 * A single-result or error reply read straight into its frame, or undefined for anything else
 * (multi-key results, a nil id, unusual encodings) for the generic path.
 */
export function decodeServerFrameFast(bytes: Uint8Array): ServerFrame | undefined {
  return readFast(bytes, readReply);
}

function readReply(reader: Reader): ServerFrame | undefined {
  const fields: ReplyFields = { id: -1, ok: undefined, result: undefined, error: undefined };
  for (let remaining = reader.mapHeader(); remaining > 0; remaining--) readReplyField(reader, fields);
  if (fields.id < 0 || fields.id > FRAME_ID_MAX) return undefined;
  if (fields.ok === true && fields.result !== undefined && fields.error === undefined) {
    return { id: fields.id, ok: true, result: fields.result };
  }
  if (fields.ok === false && fields.error !== undefined && fields.result === undefined) {
    return { id: fields.id, ok: false, error: fields.error };
  }
  return undefined;
}

function readReplyField(reader: Reader, fields: ReplyFields): void {
  switch (reader.key()) {
    case 'id':
      fields.id = reader.unsigned();
      return;
    case 'ok':
      fields.ok = reader.boolean();
      return;
    case 'result':
      fields.result = readKeyResult(reader);
      return;
    case 'error':
      fields.error = readWireError(reader);
      return;
    default:
      throw NOT_FAST;
  }
}

function readKeyResult(reader: Reader): KeyResult {
  let applied: boolean | undefined;
  let version = -1;
  let value: Buffer | null = null;
  for (let remaining = reader.mapHeader(); remaining > 0; remaining--) {
    const name = reader.key();
    if (name === 'applied') applied = reader.boolean();
    else if (name === 'version') version = reader.unsigned();
    else if (name === 'value') value = reader.nil() ? null : reader.binary();
    else throw NOT_FAST;
  }
  if (applied === undefined || version < 0) throw NOT_FAST;
  return { applied, version, value };
}

function readWireError(reader: Reader): WireError {
  let code: string | undefined;
  let message: string | undefined;
  for (let remaining = reader.mapHeader(); remaining > 0; remaining--) {
    const name = reader.key();
    if (name === 'code') code = reader.string();
    else if (name === 'message') message = reader.string();
    else throw NOT_FAST;
  }
  if (code === undefined || message === undefined) throw NOT_FAST;
  return { code: (Object.hasOwn(errorCatalogue, code) ? code : 'INTERNAL') as ErrorCode, message };
}
