/**
 * A minimal pipelined RESP2 client over node:net, so the benchmark measures Redis, our RESP front
 * end, or any RESP server the same way (no client library in between).
 *
 * Wire format (RESP2). A command is an array of bulk strings:
 *
 *   *<argc>\r\n  then argc times:  $<byte length>\r\n<bytes>\r\n
 *
 * Replies start with a type byte and end with \r\n:
 *
 *   +OK\r\n                      simple string
 *   -ERR message\r\n             error
 *   :1234\r\n                    integer (signed, decimal)
 *   $5\r\nhello\r\n              bulk string   ($-1\r\n = null)
 *   *2\r\n<reply><reply>         array         (*-1\r\n = null), elements are replies
 *
 * Pipelining: replies come back in command order, so pending commands are a FIFO. The parser is
 * incremental (a reply may be split across TCP chunks) and bounded (bulk length, array length and
 * nesting depth), and a malformed reply is a PROTOCOL_ERROR that fails the connection.
 */

import net from 'node:net';
import { PaxosStoreError } from '../../errors.js';

export type RespReply =
  | { kind: 'simple'; value: string }
  | { kind: 'error'; message: string }
  | { kind: 'integer'; value: number }
  | { kind: 'bulk'; value: Buffer | null }
  | { kind: 'array'; items: RespReply[] | null };

/** Redis's own default `proto-max-bulk-len`. */
export const RESP_BULK_BYTES_MAX = 512 * 1024 * 1024;
export const RESP_ARRAY_LENGTH_MAX = 1024 * 1024;
export const RESP_NESTING_DEPTH_MAX = 32;
/** A type line (+, -, :, $, *) longer than this without \r\n is not a RESP server talking. */
export const RESP_LINE_BYTES_MAX = 64 * 1024;

const CRLF = Buffer.from('\r\n');

/** Encodes one command as a RESP array of bulk strings. */
export function encodeCommand(args: readonly (string | Uint8Array)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const argument of args) {
    const bytes = typeof argument === 'string' ? Buffer.from(argument) : Buffer.from(argument.buffer, argument.byteOffset, argument.byteLength);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, CRLF);
  }
  return Buffer.concat(parts);
}

/** Marker for "the buffer ends before this reply does". */
const INCOMPLETE = Symbol('incomplete');
type ParseStep = { reply: RespReply; end: number } | typeof INCOMPLETE;

function protocolError(message: string): PaxosStoreError {
  return new PaxosStoreError('PROTOCOL_ERROR', `RESP reply: ${message}`);
}

/** Finds the \r\n ending the line that starts at `start`; -1 when it is not in the buffer yet. */
function lineEnd(buffer: Buffer, start: number): number {
  const end = buffer.indexOf(CRLF, start);
  if (end === -1 && buffer.length - start > RESP_LINE_BYTES_MAX) throw protocolError(`line longer than ${RESP_LINE_BYTES_MAX} bytes`);
  if (end - start > RESP_LINE_BYTES_MAX) throw protocolError(`line longer than ${RESP_LINE_BYTES_MAX} bytes`);
  return end;
}

function parseInteger(text: string): number {
  if (!/^-?\d+$/.test(text)) throw protocolError(`"${text}" is not an integer`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) throw protocolError(`integer ${text} out of range`);
  return value;
}

function parseReply(buffer: Buffer, start: number, depth: number): ParseStep {
  if (start >= buffer.length) return INCOMPLETE;
  const end = lineEnd(buffer, start + 1);
  if (end === -1) return INCOMPLETE;
  const line = buffer.toString('latin1', start + 1, end);
  const next = end + 2;
  switch (buffer[start]) {
    case 0x2b: // +
      return { reply: { kind: 'simple', value: line }, end: next };
    case 0x2d: // -
      return { reply: { kind: 'error', message: line }, end: next };
    case 0x3a: // :
      return { reply: { kind: 'integer', value: parseInteger(line) }, end: next };
    case 0x24: // $
      return parseBulk(buffer, next, parseInteger(line));
    case 0x2a: // *
      return parseArray(buffer, next, parseInteger(line), depth);
    default:
      throw protocolError(`unknown type byte 0x${buffer[start].toString(16)}`);
  }
}

function parseBulk(buffer: Buffer, start: number, length: number): ParseStep {
  if (length === -1) return { reply: { kind: 'bulk', value: null }, end: start };
  if (length < 0 || length > RESP_BULK_BYTES_MAX) throw protocolError(`bulk length ${length} out of range`);
  if (buffer.length < start + length + 2) return INCOMPLETE;
  if (buffer[start + length] !== 0x0d || buffer[start + length + 1] !== 0x0a) throw protocolError('bulk string not terminated by CRLF');
  return { reply: { kind: 'bulk', value: Buffer.from(buffer.subarray(start, start + length)) }, end: start + length + 2 };
}

function parseArray(buffer: Buffer, start: number, length: number, depth: number): ParseStep {
  if (length === -1) return { reply: { kind: 'array', items: null }, end: start };
  if (length < 0 || length > RESP_ARRAY_LENGTH_MAX) throw protocolError(`array length ${length} out of range`);
  if (depth >= RESP_NESTING_DEPTH_MAX) throw protocolError(`arrays nested deeper than ${RESP_NESTING_DEPTH_MAX}`);
  const items: RespReply[] = [];
  let position = start;
  for (let i = 0; i < length; i++) {
    const step = parseReply(buffer, position, depth + 1);
    if (step === INCOMPLETE) return INCOMPLETE;
    items.push(step.reply);
    position = step.end;
  }
  return { reply: { kind: 'array', items }, end: position };
}

/**
 * Incremental reply parser: feed TCP chunks, get complete replies in order. Leftover bytes of a
 * partial reply are kept and re-parsed when the next chunk arrives (replies are small in a
 * benchmark, so re-parsing a partial reply is cheaper than a resumable state machine).
 */
export class RespReplyParser {
  private pending: Buffer = Buffer.alloc(0);

  feed(chunk: Buffer): RespReply[] {
    const buffer = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const replies: RespReply[] = [];
    let position = 0;
    for (;;) {
      const step = parseReply(buffer, position, 0);
      if (step === INCOMPLETE) break;
      replies.push(step.reply);
      position = step.end;
    }
    this.pending = position === buffer.length ? Buffer.alloc(0) : Buffer.from(buffer.subarray(position));
    return replies;
  }

  get bufferedBytes(): number {
    return this.pending.length;
  }
}

interface PendingCommand {
  resolve(reply: RespReply): void;
  reject(error: Error): void;
}

/** One TCP connection; `send` may be called many times without awaiting (pipelining). */
export class RespConnection {
  private readonly parser = new RespReplyParser();
  private readonly pending: PendingCommand[] = [];
  private pendingHead = 0;
  private failure: Error | undefined;
  private corked = false;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => this.fail(new PaxosStoreError('IO_ERROR', `RESP connection: ${error.message}`, undefined, { cause: error })));
    socket.on('close', () => this.fail(new PaxosStoreError('CLOSED', 'RESP connection closed')));
  }

  static connect(host: string, port: number, connectTimeoutMs = 5000): Promise<RespConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new PaxosStoreError('TIMEOUT', `RESP connect to ${host}:${port} timed out after ${connectTimeoutMs} ms`));
      }, connectTimeoutMs);
      socket.once('error', (error) => {
        clearTimeout(timer);
        reject(new PaxosStoreError('IO_ERROR', `RESP connect to ${host}:${port}: ${error.message}`, undefined, { cause: error }));
      });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RespConnection(socket));
      });
    });
  }

  get inFlight(): number {
    return this.pending.length - this.pendingHead;
  }

  send(args: readonly (string | Uint8Array)[]): Promise<RespReply> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      // Commands issued in the same tick leave in one TCP write (one syscall per burst).
      if (!this.corked) {
        this.corked = true;
        this.socket.cork();
        process.nextTick(() => {
          this.corked = false;
          this.socket.uncork();
        });
      }
      this.socket.write(encodeCommand(args));
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.once('close', () => resolve());
      this.socket.end();
      // A server that ignores our FIN must not hang the benchmark's exit.
      setTimeout(() => this.socket.destroy(), 1000).unref();
    });
  }

  private onData(chunk: Buffer): void {
    let replies: RespReply[];
    try {
      replies = this.parser.feed(chunk);
    } catch (error) {
      this.fail(error as Error);
      this.socket.destroy();
      return;
    }
    for (const reply of replies) {
      if (this.pendingHead >= this.pending.length) {
        this.fail(protocolError('reply without a pending command'));
        this.socket.destroy();
        return;
      }
      const command = this.pending[this.pendingHead];
      this.pending[this.pendingHead++] = undefined as unknown as PendingCommand;
      command.resolve(reply);
    }
    // Compact the FIFO once its consumed prefix dominates, so it stays bounded by the in-flight count.
    if (this.pendingHead > 1024 && this.pendingHead * 2 > this.pending.length) {
      this.pending.splice(0, this.pendingHead);
      this.pendingHead = 0;
    }
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    const waiting = this.pending.slice(this.pendingHead);
    this.pending.length = 0;
    this.pendingHead = 0;
    for (const command of waiting) command.reject(error);
  }
}
