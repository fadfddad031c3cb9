/**
 * A minimal RFC 6455 WebSocket client over node:net / node:tls, so the client library needs no
 * dependency (Node 20 has a global WebSocket only behind --experimental-websocket). It speaks
 * what the PaxosStore server needs: binary messages, fragmentation, ping/pong, close; no
 * extensions (no permessage-deflate), no subprotocols.
 *
 * Frame layout (RFC 6455 §5.2):
 *
 *    0               1               2               3
 *    0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 4 5 6 7
 *   +-+-+-+-+-------+-+-------------+-------------------------------+
 *   |F|R|R|R| opcode|M| payload len |   extended payload length     |
 *   |I|S|S|S|  (4)  |A|     (7)     |  (16 bits if len = 126,       |
 *   |N|V|V|V|       |S|             |   64 bits if len = 127)       |
 *   | |1|2|3|       |K|             |                               |
 *   +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
 *   |  masking key (4 bytes, present iff MASK; client → server always masked)  |
 *   +---------------------------------------------------------------+
 *   |  payload (XOR-ed with the masking key byte i % 4 when masked)  |
 *   +---------------------------------------------------------------+
 *
 * Opcodes: 0 continuation, 1 text, 2 binary, 8 close, 9 ping, 10 pong. Control frames are never
 * fragmented and carry at most 125 bytes. Frames from a server are never masked.
 */
import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import * as net from 'node:net';
import * as tls from 'node:tls';
import { PaxosStoreError } from '../errors.js';

const HANDSHAKE_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const HANDSHAKE_BYTES_MAX = 16 * 1024;
const CONTROL_PAYLOAD_BYTES_MAX = 125;

const OPCODE_CONTINUATION = 0x0;
const OPCODE_TEXT = 0x1;
const OPCODE_BINARY = 0x2;
const OPCODE_CLOSE = 0x8;
const OPCODE_PING = 0x9;
const OPCODE_PONG = 0xa;

export const CLOSE_NORMAL = 1000;
export const CLOSE_PROTOCOL_ERROR = 1002;
export const CLOSE_MESSAGE_TOO_BIG = 1009;
/** Not sent on the wire: reported when the TCP connection ended without a close frame. */
export const CLOSE_ABNORMAL = 1006;

export interface WebSocketHandlers {
  /** One complete message (text messages are delivered as their UTF-8 bytes). */
  readonly onMessage: (data: Buffer) => void;
  /** Called exactly once, however the connection ends. */
  readonly onClose: (code: number, reason: string) => void;
}

export interface WebSocketConnectOptions {
  readonly connectTimeoutMs: number;
  /** Largest incoming message; a larger one closes the connection with 1009. */
  readonly maxMessageBytes: number;
}

export class WebSocketConnection {
  private readonly incoming = new ByteQueue();
  private fragments: Buffer[] = [];
  private fragmentsBytes = 0;
  private closed = false;
  private closeSent = false;
  /** Frames of this tick, written together at its end (one write, one syscall). */
  private outgoing: Buffer[] = [];
  private readonly writeOutgoing = (): void => this.flushOutgoing();

  private constructor(
    private readonly socket: net.Socket,
    private readonly handlers: WebSocketHandlers,
    private readonly maxMessageBytes: number,
  ) {}

  /** Opens the TCP (or TLS for wss:) connection and completes the opening handshake. */
  static connect(url: URL, handlers: WebSocketHandlers, options: WebSocketConnectOptions): Promise<WebSocketConnection> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'wss:';
      if (!secure && url.protocol !== 'ws:') {
        reject(new PaxosStoreError('INVALID_ARGUMENT', `not a ws: or wss: URL: ${url.href}`));
        return;
      }
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = Number(url.port || (secure ? 443 : 80));
      const socket = secure ? tls.connect({ host, port, servername: host }) : net.connect({ host, port });
      socket.setNoDelay(true);
      const key = randomBytes(16).toString('base64');
      let header = Buffer.alloc(0);
      const fail = (error: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(
          error instanceof PaxosStoreError ? error : new PaxosStoreError('IO_ERROR', `${url.href}: ${error.message}`),
        );
      };
      const timer = setTimeout(
        () => fail(new PaxosStoreError('TIMEOUT', `${url.href}: no handshake within ${options.connectTimeoutMs} ms`)),
        options.connectTimeoutMs,
      );
      const onData = (chunk: Buffer) => {
        header = Buffer.concat([header, chunk]);
        const end = header.indexOf('\r\n\r\n');
        if (end < 0) {
          if (header.length > HANDSHAKE_BYTES_MAX) fail(new PaxosStoreError('PROTOCOL_ERROR', 'handshake response too long'));
          return;
        }
        socket.off('data', onData);
        socket.off('error', fail);
        socket.off('close', onEarlyClose);
        clearTimeout(timer);
        const problem = checkHandshake(header.subarray(0, end).toString('latin1'), key);
        if (problem !== undefined) {
          socket.destroy();
          reject(new PaxosStoreError('PROTOCOL_ERROR', `${url.href}: ${problem}`));
          return;
        }
        const connection = new WebSocketConnection(socket, handlers, options.maxMessageBytes);
        connection.attach(header.subarray(end + 4));
        resolve(connection);
      };
      const onEarlyClose = () => fail(new Error('connection closed during the handshake'));
      socket.on('data', onData);
      socket.on('error', fail);
      socket.on('close', onEarlyClose);
      socket.write(
        `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
  }

  /** Bytes handed to the socket and not yet written to the kernel. */
  get bufferedAmount(): number {
    return this.socket.writableLength;
  }

  get isOpen(): boolean {
    return !this.closed && !this.closeSent;
  }

  /**
   * Sends one binary message; false when the connection is closing or closed (nothing sent).
   * Messages sent in the same tick leave in one write.
   */
  send(data: Uint8Array): boolean {
    if (!this.isOpen) return false;
    this.enqueue(encodeClientFrame(OPCODE_BINARY, data));
    return true;
  }

  ping(payload: Uint8Array = new Uint8Array(0)): void {
    if (this.isOpen) this.enqueue(encodeClientFrame(OPCODE_PING, payload));
  }

  /** Every frame goes through here, so frames leave in the order they were made (a close frame last). */
  private enqueue(frame: Buffer): void {
    this.outgoing.push(frame);
    if (this.outgoing.length === 1) process.nextTick(this.writeOutgoing);
  }

  private flushOutgoing(): void {
    const frames = this.outgoing;
    this.outgoing = [];
    if (this.closed || frames.length === 0) return;
    this.socket.write(frames.length === 1 ? frames[0] : Buffer.concat(frames));
  }

  /** Starts the closing handshake; the socket is destroyed if the server does not answer in time. */
  close(code = CLOSE_NORMAL, reason = ''): void {
    if (this.closed) return;
    this.sendClose(code, reason);
    setTimeout(() => this.finish(code, reason), 1000).unref();
  }

  /** Drops the TCP connection at once, without a closing handshake. */
  destroy(reason = 'destroyed'): void {
    this.finish(CLOSE_ABNORMAL, reason);
  }

  private attach(leftover: Buffer): void {
    this.socket.on('data', (chunk: Buffer) => this.onData(chunk));
    this.socket.on('error', () => this.finish(CLOSE_ABNORMAL, 'socket error'));
    this.socket.on('close', () => this.finish(CLOSE_ABNORMAL, 'connection lost'));
    if (leftover.length > 0) queueMicrotask(() => this.onData(leftover));
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    // Usually nothing is queued and the chunk holds whole frames: read them in place.
    let offset = 0;
    while (this.incoming.length === 0 && offset < chunk.length) {
      const header = parseFrameHeader(chunk, offset, this.maxMessageBytes);
      if (typeof header === 'string') {
        this.failOnHeader(header);
        return;
      }
      if (header === undefined || chunk.length - offset < header.headerBytes + header.payloadBytes) break;
      const start = offset + header.headerBytes;
      offset = start + header.payloadBytes;
      this.onFrame({ fin: header.fin, opcode: header.opcode, payload: chunk.subarray(start, offset) });
      if (this.closed) return;
    }
    if (offset === chunk.length) return;
    this.incoming.push(offset === 0 ? chunk : chunk.subarray(offset));
    this.drainIncoming();
  }

  /** Frames spread over several chunks: read through the queue. */
  private drainIncoming(): void {
    while (this.incoming.length >= 2) {
      const head = this.incoming.peek(Math.min(this.incoming.length, FRAME_HEADER_BYTES_MAX));
      const header = parseFrameHeader(head, 0, this.maxMessageBytes);
      if (typeof header === 'string') {
        this.failOnHeader(header);
        return;
      }
      if (header === undefined || this.incoming.length < header.headerBytes + header.payloadBytes) return;
      this.incoming.skip(header.headerBytes);
      this.onFrame({ fin: header.fin, opcode: header.opcode, payload: this.incoming.take(header.payloadBytes) });
      if (this.closed) return;
    }
  }

  private failOnHeader(problem: string): void {
    this.failConnection(problem === 'too big' ? CLOSE_MESSAGE_TOO_BIG : CLOSE_PROTOCOL_ERROR, problem);
  }

  private onFrame(frame: Frame): void {
    switch (frame.opcode) {
      case OPCODE_PING:
        if (this.isOpen) this.enqueue(encodeClientFrame(OPCODE_PONG, frame.payload));
        return;
      case OPCODE_PONG:
        return;
      case OPCODE_CLOSE: {
        const code = frame.payload.length >= 2 ? frame.payload.readUInt16BE(0) : 1005;
        const reason = frame.payload.subarray(2).toString('utf8');
        this.sendClose(code === 1005 ? CLOSE_NORMAL : code, '');
        this.finish(code, reason);
        return;
      }
      case OPCODE_TEXT:
      case OPCODE_BINARY:
      case OPCODE_CONTINUATION:
        this.onDataFrame(frame);
        return;
      default:
        this.failConnection(CLOSE_PROTOCOL_ERROR, `unknown opcode ${frame.opcode}`);
    }
  }

  private onDataFrame(frame: Frame): void {
    const continuing = this.fragments.length > 0;
    if (frame.opcode === OPCODE_CONTINUATION ? !continuing : continuing) {
      this.failConnection(CLOSE_PROTOCOL_ERROR, 'unexpected continuation or interleaved message');
      return;
    }
    if (frame.fin && !continuing) {
      this.handlers.onMessage(frame.payload);
      return;
    }
    this.fragmentsBytes += frame.payload.length;
    if (this.fragmentsBytes > this.maxMessageBytes) {
      this.failConnection(CLOSE_MESSAGE_TOO_BIG, 'too big');
      return;
    }
    this.fragments.push(frame.payload);
    if (frame.fin) {
      const message = Buffer.concat(this.fragments, this.fragmentsBytes);
      this.fragments = [];
      this.fragmentsBytes = 0;
      this.handlers.onMessage(message);
    }
  }

  private sendClose(code: number, reason: string): void {
    if (this.closeSent || this.closed) return;
    this.closeSent = true;
    const reasonBytes = Buffer.from(reason, 'utf8').subarray(0, CONTROL_PAYLOAD_BYTES_MAX - 2);
    const payload = Buffer.alloc(2 + reasonBytes.length);
    payload.writeUInt16BE(code, 0);
    reasonBytes.copy(payload, 2);
    // Written now, behind the frames of this tick: the connection may be destroyed before the tick ends.
    this.outgoing.push(encodeClientFrame(OPCODE_CLOSE, payload));
    this.flushOutgoing();
  }

  private failConnection(code: number, reason: string): void {
    this.sendClose(code, reason);
    this.socket.end();
    this.finish(code, reason);
  }

  private finish(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
    this.handlers.onClose(code, reason);
  }
}

/** Returns a problem description, or undefined when the server accepted the upgrade properly. */
function checkHandshake(head: string, key: string): string | undefined {
  const [statusLine, ...headerLines] = head.split('\r\n');
  if (!/^HTTP\/1\.1 101\b/.test(statusLine)) return `upgrade refused: ${statusLine}`;
  const headers = new Map<string, string>();
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  if (headers.get('upgrade')?.toLowerCase() !== 'websocket') return 'missing Upgrade: websocket';
  if (!/\bupgrade\b/i.test(headers.get('connection') ?? '')) return 'missing Connection: Upgrade';
  const expected = createHash('sha1').update(key + HANDSHAKE_GUID).digest('base64');
  if (headers.get('sec-websocket-accept') !== expected) return 'wrong Sec-WebSocket-Accept';
  if (headers.has('sec-websocket-extensions')) return 'server chose an extension we did not offer';
  return undefined;
}

interface Frame {
  readonly fin: boolean;
  readonly opcode: number;
  readonly payload: Buffer;
}

interface FrameHeader {
  readonly fin: boolean;
  readonly opcode: number;
  readonly headerBytes: number;
  readonly payloadBytes: number;
}

/** 2 bytes, 8 of extended length; server frames carry no masking key. */
const FRAME_HEADER_BYTES_MAX = 10;

/**
 * Reads the header of the frame starting at `offset`: the header, undefined when `bytes` ends
 * before the header does, or a protocol violation. The payload may still be incomplete.
 */
function parseFrameHeader(bytes: Buffer, offset: number, maxMessageBytes: number): FrameHeader | string | undefined {
  const available = bytes.length - offset;
  if (available < 2) return undefined;
  const first = bytes[offset];
  const second = bytes[offset + 1];
  const fin = (first & 0x80) !== 0;
  if ((first & 0x70) !== 0) return 'reserved bits set without an extension';
  const opcode = first & 0x0f;
  if ((second & 0x80) !== 0) return 'a server must not mask frames';
  let payloadBytes = second & 0x7f;
  let headerBytes = 2;
  if (payloadBytes === 126) {
    if (available < 4) return undefined;
    payloadBytes = bytes.readUInt16BE(offset + 2);
    headerBytes = 4;
  } else if (payloadBytes === 127) {
    if (available < 10) return undefined;
    const high = bytes.readUInt32BE(offset + 2);
    if (high > 0x1fffff) return 'too big';
    payloadBytes = high * 2 ** 32 + bytes.readUInt32BE(offset + 6);
    headerBytes = 10;
  }
  if (opcode >= OPCODE_CLOSE && (!fin || payloadBytes > CONTROL_PAYLOAD_BYTES_MAX)) return 'malformed control frame';
  if (payloadBytes > maxMessageBytes) return 'too big';
  return { fin, opcode, headerBytes, payloadBytes };
}

/** Encodes one client frame: FIN set, masked with a fresh random key. */
export function encodeClientFrame(opcode: number, payload: Uint8Array): Buffer {
  const length = payload.length;
  const headerBytes = length < 126 ? 2 : length <= 0xffff ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerBytes + 4 + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = 0x80 | length;
  } else if (length <= 0xffff) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  const maskOffset = takeMaskBytes();
  maskPool.copy(frame, headerBytes, maskOffset, maskOffset + 4);
  maskInto(frame, headerBytes + 4, payload, maskOffset);
  return frame;
}

/** target[start + i] = payload[i] XOR mask[i % 4]: four bytes per step, then the tail. */
function maskInto(target: Buffer, start: number, payload: Uint8Array, maskOffset: number): void {
  const length = payload.length;
  const mask0 = maskPool[maskOffset];
  const mask1 = maskPool[maskOffset + 1];
  const mask2 = maskPool[maskOffset + 2];
  const mask3 = maskPool[maskOffset + 3];
  const whole = length - (length % 4);
  let i = 0;
  for (; i < whole; i += 4) {
    target[start + i] = payload[i] ^ mask0;
    target[start + i + 1] = payload[i + 1] ^ mask1;
    target[start + i + 2] = payload[i + 2] ^ mask2;
    target[start + i + 3] = payload[i + 3] ^ mask3;
  }
  if (i < length) target[start + i] = payload[i] ^ mask0;
  if (i + 1 < length) target[start + i + 1] = payload[i + 1] ^ mask1;
  if (i + 2 < length) target[start + i + 2] = payload[i + 2] ^ mask2;
}

/**
 * Masking keys come from a pool refilled from the CSPRNG 4 KiB at a time: RFC 6455 wants them
 * unpredictable, and one randomBytes call per frame costs more than the rest of the encoding.
 */
const maskPool = Buffer.alloc(4096);
let maskPoolOffset = maskPool.length;

function takeMaskBytes(): number {
  if (maskPoolOffset + 4 > maskPool.length) {
    randomFillSync(maskPool);
    maskPoolOffset = 0;
  }
  const offset = maskPoolOffset;
  maskPoolOffset += 4;
  return offset;
}

/** A FIFO of received chunks that hands out exact byte ranges without re-concatenating everything. */
class ByteQueue {
  private chunks: Buffer[] = [];
  length = 0;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** The first `count` bytes, without consuming them. */
  peek(count: number): Buffer {
    if (this.chunks[0].length >= count) return this.chunks[0].subarray(0, count);
    return Buffer.concat(this.chunks, count);
  }

  skip(count: number): void {
    this.take(count);
  }

  take(count: number): Buffer {
    this.length -= count;
    const first = this.chunks[0];
    if (first !== undefined && first.length >= count) {
      if (first.length === count) this.chunks.shift();
      else this.chunks[0] = first.subarray(count);
      return first.subarray(0, count);
    }
    const result = Buffer.allocUnsafe(count);
    let filled = 0;
    while (filled < count) {
      const chunk = this.chunks[0];
      const used = Math.min(chunk.length, count - filled);
      chunk.copy(result, filled, 0, used);
      filled += used;
      if (used === chunk.length) this.chunks.shift();
      else this.chunks[0] = chunk.subarray(used);
    }
    return result;
  }
}
