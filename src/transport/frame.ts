/**
 * The peer wire format: every byte two shard workers exchange over TCP is inside one frame.
 *
 *   byte 0      2        3        4                8                12
 *   +-----------+--------+--------+----------------+----------------+---------------------------+
 *   | magic     | version| flags  | payloadBytes   | crc32c         | payload (payloadBytes)    |
 *   | 0x50 0x58 | 1      |        | uint32 BE      | uint32 BE      |                           |
 *   | ("PX")    |        |        |                |                |                           |
 *   +-----------+--------+--------+----------------+----------------+---------------------------+
 *
 *   crc32c  CRC32C (src/storage/crc32c.ts) of header bytes 0..7 followed by the payload as sent
 *           (so a corrupt length or flag byte is caught too, and before any decompression).
 *   flags   bit 0  FLAG_LZ4: the payload is an lz4 block (lz4-napi `compressSync`: uncompressed
 *                  size as uint32 LE, then the block); used when the uncompressed payload is at
 *                  least `compressionThresholdBytes` and compression actually shrinks it.
 *           bit 1  FLAG_HANDSHAKE: the payload is one handshake message (./handshake.ts), the
 *                  only kind a connection may carry before it is authenticated.
 *           other bits must be zero.
 *   payload (after decompression) a msgpack array of messages: [message, message, ...].
 *
 * Limits: `payloadBytes` and the uncompressed size are both at most `frameBytesMax`; the
 * decoder checks them from the header before buffering or decompressing anything, so a hostile
 * length cannot make it allocate. Any violation is a PaxosStoreError (PROTOCOL_ERROR, or
 * CORRUPTION for a checksum mismatch); the caller drops the connection.
 */

import { compressSync, uncompressSync } from 'lz4-napi';
import { PaxosStoreError } from '../errors.js';
import { crc32c } from '../storage/crc32c.js';
import { assert } from '../util/assert.js';

export const FRAME_HEADER_BYTES = 12;
export const FRAME_MAGIC = 0x5058;
export const FRAME_VERSION = 1;
export const FLAG_LZ4 = 1;
export const FLAG_HANDSHAKE = 2;
const FLAGS_KNOWN = FLAG_LZ4 | FLAG_HANDSHAKE;
const LZ4_SIZE_PREFIX_BYTES = 4;

export interface DecodedFrame {
  readonly flags: number;
  /** Uncompressed payload. */
  readonly payload: Buffer;
  /** Bytes the frame occupied on the wire, header included. */
  readonly wireBytes: number;
}

function writeHeader(frame: Buffer, flags: number, payloadBytes: number): void {
  frame.writeUInt16BE(FRAME_MAGIC, 0);
  frame[2] = FRAME_VERSION;
  frame[3] = flags;
  frame.writeUInt32BE(payloadBytes, 4);
  frame.writeUInt32BE(crc32c(frame, crc32c(frame, 0, 0, 8), FRAME_HEADER_BYTES), 8);
}

/** Wraps a finished payload into a frame. */
export function encodeFrame(payload: Uint8Array, flags: number): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.length);
  frame.set(payload, FRAME_HEADER_BYTES);
  writeHeader(frame, flags, payload.length);
  return frame;
}

/** The largest msgpack array header (array32): what a frame adds around its messages at most. */
export const MESSAGE_ARRAY_HEADER_BYTES_MAX = 5;

/** Bytes of the msgpack array header for `count` items. */
function arrayHeaderBytes(count: number): number {
  return count < 16 ? 1 : count < 0x10000 ? 3 : 5;
}

function writeArrayHeader(target: Buffer, offset: number, count: number): number {
  if (count < 16) {
    target[offset] = 0x90 | count;
    return offset + 1;
  }
  if (count < 0x10000) {
    target[offset] = 0xdc;
    target.writeUInt16BE(count, offset + 1);
    return offset + 3;
  }
  target[offset] = 0xdd;
  target.writeUInt32BE(count, offset + 1);
  return offset + 5;
}

/**
 * Builds one frame from already msgpack-encoded messages (each one complete msgpack value):
 * the payload is their concatenation behind a msgpack array header, so no message is encoded
 * twice. Compresses with lz4 when the payload reaches `compressionThresholdBytes` and shrinks.
 */
export function encodeMessageFrame(
  encodedMessages: readonly Uint8Array[],
  messagesBytes: number,
  compressionThresholdBytes: number,
): { frame: Buffer; compressed: boolean } {
  assert(encodedMessages.length > 0, 'a message frame carries at least one message');
  const payloadBytes = arrayHeaderBytes(encodedMessages.length) + messagesBytes;
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payloadBytes);
  let offset = writeArrayHeader(frame, FRAME_HEADER_BYTES, encodedMessages.length);
  for (const message of encodedMessages) {
    frame.set(message, offset);
    offset += message.length;
  }
  assert(offset === frame.length, 'message frame size accounting');
  if (payloadBytes >= compressionThresholdBytes) {
    const compressed = compressSync(frame.subarray(FRAME_HEADER_BYTES));
    if (compressed.length < payloadBytes) return { frame: encodeFrame(compressed, FLAG_LZ4), compressed: true };
  }
  writeHeader(frame, 0, payloadBytes);
  return { frame, compressed: false };
}

function protocolError(message: string): PaxosStoreError {
  return new PaxosStoreError('PROTOCOL_ERROR', message);
}

/**
 * Incremental frame decoder over the chunks of one TCP stream. `push` chunks as they arrive and
 * call `next` until it returns undefined; it throws on the first malformed frame, after which
 * the stream is unusable (the caller drops the connection).
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Adjustable: a connection allows only small frames until it is authenticated. */
  frameBytesMax: number;

  constructor(frameBytesMax: number) {
    this.frameBytesMax = frameBytesMax;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
  }

  next(): DecodedFrame | undefined {
    if (this.bufferedBytes < FRAME_HEADER_BYTES) return undefined;
    const header = this.peek(FRAME_HEADER_BYTES);
    if (header.readUInt16BE(0) !== FRAME_MAGIC) throw protocolError(`bad frame magic 0x${header.readUInt16BE(0).toString(16)}`);
    if (header[2] !== FRAME_VERSION) throw protocolError(`unsupported frame version ${header[2]}`);
    const flags = header[3];
    if ((flags & ~FLAGS_KNOWN) !== 0) throw protocolError(`unknown frame flags 0x${flags.toString(16)}`);
    const payloadBytes = header.readUInt32BE(4);
    if (payloadBytes > this.frameBytesMax) throw protocolError(`frame of ${payloadBytes} bytes exceeds frameBytesMax ${this.frameBytesMax}`);
    const wireBytes = FRAME_HEADER_BYTES + payloadBytes;
    if (this.bufferedBytes < wireBytes) return undefined;
    const frame = this.take(wireBytes);
    const expected = frame.readUInt32BE(8);
    const actual = crc32c(frame, crc32c(frame, 0, 0, 8), FRAME_HEADER_BYTES);
    if (actual !== expected) throw new PaxosStoreError('CORRUPTION', `frame checksum mismatch (0x${actual.toString(16)} != 0x${expected.toString(16)})`);
    const payload = frame.subarray(FRAME_HEADER_BYTES);
    return { flags, payload: flags & FLAG_LZ4 ? this.decompress(payload) : payload, wireBytes };
  }

  private decompress(payload: Buffer): Buffer {
    if (payload.length < LZ4_SIZE_PREFIX_BYTES) throw protocolError('lz4 payload shorter than its size prefix');
    const uncompressedBytes = payload.readUInt32LE(0);
    if (uncompressedBytes > this.frameBytesMax) {
      throw protocolError(`lz4 payload expands to ${uncompressedBytes} bytes, above frameBytesMax ${this.frameBytesMax}`);
    }
    let result: Buffer;
    try {
      result = uncompressSync(payload);
    } catch (error) {
      throw new PaxosStoreError('PROTOCOL_ERROR', `lz4 payload does not decompress: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (result.length !== uncompressedBytes) throw protocolError('lz4 payload size does not match its prefix');
    return result;
  }

  /**
   * The first `length` bytes without consuming them. When they span chunks, merges just the
   * chunks needed (never all of them: a frame arriving in many small chunks stays linear).
   */
  private peek(length: number): Buffer {
    if (this.chunks[0].length < length) {
      let count = 0;
      for (let covered = 0; covered < length; count++) covered += this.chunks[count].length;
      this.chunks.splice(0, count, Buffer.concat(this.chunks.slice(0, count)));
    }
    return this.chunks[0].subarray(0, length);
  }

  private take(length: number): Buffer {
    const first = this.peek(length);
    const head = this.chunks[0];
    if (head.length === length) this.chunks.shift();
    else this.chunks[0] = head.subarray(length);
    this.bufferedBytes -= length;
    return first;
  }
}
