/**
 * The primitives of the hand-written binary codecs (src/consensus/wire-codec.ts for PaxosLog
 * records and peer messages, src/ipc/ring-frame.ts for the hot ring frames). Integers are
 * unsigned LEB128 "varuint" up to 2^53 − 1, byte fields are varuint length (+ 1 when nullable)
 * then the bytes, strings are varuint byte length then UTF-8, f64 is little endian.
 *
 * A ByteWriter is reused for every encode of its module (one per thread); a ByteReader checks
 * every bound and throws PaxosStoreError with the code its caller chose, and returns byte fields
 * as copies, never views into the input (bytesOrNullView excepted, for inputs that never change).
 */
import { type ErrorCode, PaxosStoreError } from '../errors.js';

/** A growable output buffer; one per thread is reused for every encode. */
export class ByteWriter {
  private buffer = Buffer.allocUnsafe(4096);
  offset = 0;

  reset(reserve: number): void {
    this.offset = reserve;
  }

  private ensure(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.offset + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.offset);
    this.buffer = grown;
  }

  u8(value: number): void {
    this.ensure(1);
    this.buffer[this.offset++] = value;
  }

  varuint(value: number): void {
    this.ensure(8);
    const buffer = this.buffer;
    let offset = this.offset;
    if (value < 0x80000000) {
      while (value >= 0x80) {
        buffer[offset++] = (value & 0x7f) | 0x80;
        value >>>= 7;
      }
    } else {
      while (value >= 0x80) {
        buffer[offset++] = (value % 128) | 0x80;
        value = Math.floor(value / 128);
      }
    }
    buffer[offset++] = value;
    this.offset = offset;
  }

  f64(value: number): void {
    this.ensure(8);
    this.buffer.writeDoubleLE(value, this.offset);
    this.offset += 8;
  }

  bytes(value: Uint8Array): void {
    this.varuint(value.length);
    this.raw(value);
  }

  bytesOrNull(value: Uint8Array | null): void {
    if (value === null) {
      this.u8(0);
      return;
    }
    this.varuint(value.length + 1);
    this.raw(value);
  }

  string(value: string): void {
    // Client ids and the like are short ASCII: a JS loop beats two calls into the native UTF-8
    // encoder; the first non-ASCII character falls back to it (the bytes written so far are
    // overwritten, since the length prefix may then differ).
    const start = this.offset;
    if (value.length < 0x80) {
      this.ensure(value.length + 1);
      const buffer = this.buffer;
      buffer[start] = value.length;
      let index = 0;
      for (; index < value.length; index++) {
        const code = value.charCodeAt(index);
        if (code >= 0x80) break;
        buffer[start + 1 + index] = code;
      }
      if (index === value.length) {
        this.offset = start + 1 + index;
        return;
      }
    }
    const length = Buffer.byteLength(value, 'utf8');
    this.varuint(length);
    this.ensure(length);
    this.buffer.write(value, this.offset, length, 'utf8');
    this.offset += length;
  }

  raw(value: Uint8Array): void {
    this.ensure(value.length);
    this.buffer.set(value, this.offset);
    this.offset += value.length;
  }

  /**
   * A copy of the bytes written, from `start` to the current offset. Buffer.allocUnsafe takes
   * small copies from Node's shared pool instead of a malloc each: encoded records and messages
   * live only until written to disk or socket, so sharing a pool slab costs no lasting memory.
   */
  finish(start = 0): Uint8Array {
    const copy = Buffer.allocUnsafe(this.offset - start);
    this.buffer.copy(copy, 0, start, this.offset);
    return copy;
  }

  /** A view of the bytes written from `start`: valid only until the next `reset` (copy it at once). */
  view(start = 0): Uint8Array {
    return this.buffer.subarray(start, this.offset);
  }

  patch(position: number, value: number): void {
    this.buffer[position] = value;
  }

  patchUint16BE(position: number, value: number): void {
    this.buffer.writeUInt16BE(value, position);
  }

  patchUint32BE(position: number, value: number): void {
    this.buffer.writeUInt32BE(value, position);
  }
}

/** Scratch for little-endian float64 decoding without a DataView per call. */
const f64Scratch = new Float64Array(1);
const f64Bytes = new Uint8Array(f64Scratch.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Buffer's native UTF-8 decoder, called on a Uint8Array directly (no Buffer object per string). */
const utf8Slice = Buffer.prototype.utf8Slice as (this: Uint8Array, start: number, end: number) => string;
const latin1Slice = Buffer.prototype.latin1Slice as (this: Uint8Array, start: number, end: number) => string;

/** Key bytes as a Map key: latin1 keeps every byte distinct, and no Buffer object is made per call. */
export function keyName(key: Uint8Array): string {
  return latin1Slice.call(key, 0, key.length);
}

/** Up to this many bytes, copying byte by byte beats allocating a view for TypedArray#set. */
const SMALL_COPY_BYTES = 64;

export class ByteReader {
  offset = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly errorCode: ErrorCode,
    private readonly what: string,
    private readonly end = bytes.length,
    start = 0,
  ) {
    this.offset = start;
  }

  fail(detail: string): never {
    throw new PaxosStoreError(this.errorCode, `${this.what}: ${detail}`);
  }

  remaining(): number {
    return this.end - this.offset;
  }

  get done(): boolean {
    return this.offset === this.end;
  }

  u8(): number {
    if (this.offset >= this.end) this.fail('truncated');
    return this.bytes[this.offset++];
  }

  flag(): boolean {
    const value = this.u8();
    if (value > 1) this.fail(`flag byte ${value}`);
    return value === 1;
  }

  varuint(): number {
    let result = 0;
    let scale = 1;
    for (let index = 0; index < 8; index++) {
      const byte = this.u8();
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (!Number.isSafeInteger(result)) this.fail('integer above 2^53');
        return result;
      }
      scale *= 128;
    }
    return this.fail('varuint longer than 8 bytes');
  }

  f64(): number {
    if (this.offset + 8 > this.end) this.fail('truncated');
    for (let index = 0; index < 8; index++) f64Bytes[LITTLE_ENDIAN ? index : 7 - index] = this.bytes[this.offset + index];
    this.offset += 8;
    return f64Scratch[0];
  }

  bytesOfLength(length: number): Uint8Array {
    if (length > this.end - this.offset) this.fail('truncated');
    // A copy, never a view (Buffer#slice would share memory with the frame or record).
    const copy = this.copyOfRange(this.offset, this.offset + length);
    this.offset += length;
    return copy;
  }

  /** Like bytesOfLength, as a Buffer with memory of its own (for callers that hand it to Buffer users). */
  bufferOfLength(length: number): Buffer {
    if (length > this.end - this.offset) this.fail('truncated');
    const copy = Buffer.allocUnsafeSlow(length);
    copy.set(this.bytes.subarray(this.offset, this.offset + length));
    this.offset += length;
    return copy;
  }

  /** Like bytesOrNull, as a view into the input: only for inputs never modified afterwards. */
  bytesOrNullView(): Uint8Array | null {
    const lengthPlusOne = this.varuint();
    if (lengthPlusOne === 0) return null;
    const length = lengthPlusOne - 1;
    if (length > this.end - this.offset) this.fail('truncated');
    this.offset += length;
    return this.bytes.subarray(this.offset - length, this.offset);
  }

  skip(length: number): void {
    if (length > this.end - this.offset) this.fail('truncated');
    this.offset += length;
  }

  skipBytesOrNull(): void {
    const lengthPlusOne = this.varuint();
    if (lengthPlusOne > 0) this.skip(lengthPlusOne - 1);
  }

  skipString(): void {
    this.skip(this.varuint());
  }

  /** A copy of input bytes [start, end) already read (e.g. one field checked with the skip methods). */
  copyOfRange(start: number, end: number): Uint8Array {
    const copy = new Uint8Array(end - start);
    if (end - start <= SMALL_COPY_BYTES) {
      // Keys and small payloads: a loop, without the view object `subarray` would allocate.
      const bytes = this.bytes;
      for (let index = start; index < end; index++) copy[index - start] = bytes[index];
    } else {
      copy.set(this.bytes.subarray(start, end));
    }
    return copy;
  }

  string(): string {
    const length = this.varuint();
    if (length > this.end - this.offset) this.fail('truncated');
    const value = utf8Slice.call(this.bytes, this.offset, this.offset + length);
    this.offset += length;
    return value;
  }
}

