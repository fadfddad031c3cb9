/**
 * Incremental RESP2 request parser: bytes from a TCP stream in, commands (arrays of byte strings)
 * out, one at a time, so the connection can stop pulling commands when it has enough in flight
 * and leave the rest buffered (backpressure without losing or reordering anything).
 *
 * Two request forms, as Redis accepts them:
 *
 *   multibulk (what every client library and redis-cli send):
 *
 *     *<count>\r\n  $<length>\r\n <length bytes> \r\n  ...  (count times)
 *     └ header ┘    └─ bulk header ┘└── bulk body ──────┘
 *     e.g. "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n"
 *
 *   inline (telnet / nc): one line of whitespace-separated words ending in \n (or \r\n);
 *     "double quotes" take \n \r \t \b \a \\ \" \xHH escapes, 'single quotes' take \' only.
 *     e.g. "SET k \"two words\"\r\n"
 *
 * `*0` and `*-1` headers and empty inline lines are skipped, as Redis does.
 *
 * Zero copy: a complete bulk inside the current buffer is returned as a Buffer view of the socket
 * chunk (Node allocates a fresh chunk per read, so views stay valid). Only the unparsed tail of a
 * chunk is copied when the next chunk arrives, and that tail is bounded: a header line (≤
 * headerLineBytesMax), an inline line (≤ inlineBytesMax) or a bulk shorter than
 * largeBulkBytesMin. A larger bulk split across chunks is copied exactly once, into a buffer of
 * its final size (no quadratic re-concatenation of a 16 MiB value arriving in 64 KiB reads).
 *
 * Errors are PaxosStoreError('PROTOCOL_ERROR') with Redis's wording after "Protocol error: ";
 * after one, the stream cannot be resynchronised and the connection must be closed.
 */
import { PaxosStoreError } from '../../errors.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT } from '../../storage/engine.js';

export interface RespParserLimits {
  /** Largest `*<count>` accepted (Redis: 1024*1024). */
  readonly argumentsMax: number;
  /** Largest `$<length>`: the value limit plus room for a key-sized slack, so a value a little over
   * the store's limit gets a clean VALUE_TOO_LARGE reply instead of a dropped connection. */
  readonly bulkBytesMax: number;
  /** Longest inline command line (Redis: 64 KiB). */
  readonly inlineBytesMax: number;
  /** Longest `*…` or `$…` header line including \r\n: a sign, 20 digits and slack. */
  readonly headerLineBytesMax: number;
  /** Sum of bulk lengths in one command (bounds the memory one MSET can pin). */
  readonly commandBytesMax: number;
}

export const RESP_PARSER_LIMITS_DEFAULT: RespParserLimits = {
  argumentsMax: 1024 * 1024,
  bulkBytesMax: VALUE_BYTES_MAX_DEFAULT + KEY_BYTES_MAX,
  inlineBytesMax: 64 * 1024,
  headerLineBytesMax: 32,
  commandBytesMax: 128 * 1024 * 1024,
};

/** A bulk at least this long that is split across chunks is assembled in its own buffer. */
const largeBulkBytesMin = 16 * 1024;

const ASTERISK = 0x2a;
const DOLLAR = 0x24;
const CR = 0x0d;
const LF = 0x0a;

const EMPTY = Buffer.alloc(0);

function protocolError(message: string): PaxosStoreError {
  return new PaxosStoreError('PROTOCOL_ERROR', `Protocol error: ${message}`);
}

export class RespParser {
  private buffer: Buffer = EMPTY;
  private offset = 0;
  /** Arguments still expected by the multibulk command being parsed; 0 between commands. */
  private argumentsRemaining = 0;
  private arguments: Buffer[] = [];
  private commandBytes = 0;
  /** Length from the current `$` header, or -1 while the next thing is a `$` header. */
  private bulkLength = -1;
  /** Large split bulk being assembled (body + CRLF), and how much of it has arrived. */
  private largeBulk: Buffer | null = null;
  private largeBulkFilled = 0;
  private failure: PaxosStoreError | null = null;

  constructor(private readonly limits: RespParserLimits = RESP_PARSER_LIMITS_DEFAULT) {}

  /** Bytes received but not yet returned as commands (for backpressure accounting). */
  get bufferedBytes(): number {
    return this.buffer.length - this.offset + this.largeBulkFilled;
  }

  /** Adds bytes from the socket. Never throws; a framing error surfaces from the next next(). */
  append(chunk: Buffer): void {
    if (this.failure !== null || chunk.length === 0) return;
    if (this.largeBulk !== null) chunk = this.fillLargeBulk(chunk);
    if (this.offset >= this.buffer.length) {
      this.buffer = chunk;
    } else {
      this.buffer = Buffer.concat([this.buffer.subarray(this.offset), chunk]);
    }
    this.offset = 0;
  }

  /**
   * The next complete command, or undefined when more bytes are needed. Throws a PROTOCOL_ERROR
   * PaxosStoreError for malformed input, and keeps throwing it (the stream is unrecoverable).
   */
  next(): Buffer[] | undefined {
    if (this.failure !== null) throw this.failure;
    try {
      return this.parseCommand();
    } catch (error) {
      if (error instanceof PaxosStoreError) this.failure = error;
      throw error;
    }
  }

  private parseCommand(): Buffer[] | undefined {
    if (this.largeBulk !== null) return undefined;
    // (A command whose last argument was a large bulk completed inside append(): arguments
    // is then non-empty with nothing remaining, and is returned below.)
    while (this.argumentsRemaining === 0 && this.arguments.length === 0) {
      if (this.offset >= this.buffer.length) return undefined;
      if (this.buffer[this.offset] !== ASTERISK) {
        const inline = this.parseInline();
        if (inline === undefined) return undefined;
        if (inline.length > 0) return inline;
        continue;
      }
      const count = this.parseHeaderLine('multibulk count');
      if (count === undefined) return undefined;
      if (count > this.limits.argumentsMax) throw protocolError('invalid multibulk length');
      if (count > 0) {
        this.argumentsRemaining = count;
        this.arguments = [];
        this.commandBytes = 0;
      }
    }
    while (this.argumentsRemaining > 0) {
      if (!this.parseBulk()) return undefined;
    }
    const command = this.arguments;
    this.arguments = [];
    return command;
  }

  /** Parses one `$` bulk of the current command; false when more bytes are needed. */
  private parseBulk(): boolean {
    if (this.bulkLength < 0) {
      if (this.offset >= this.buffer.length) return false;
      const first = this.buffer[this.offset];
      if (first !== DOLLAR) throw protocolError(`expected '$', got '${String.fromCharCode(first)}'`);
      const length = this.parseHeaderLine('bulk length');
      if (length === undefined) return false;
      if (length < 0 || length > this.limits.bulkBytesMax) throw protocolError('invalid bulk length');
      this.commandBytes += length;
      if (this.commandBytes > this.limits.commandBytesMax) throw protocolError('command too large');
      this.bulkLength = length;
    }
    const available = this.buffer.length - this.offset;
    const length = this.bulkLength;
    if (available >= length + 2) {
      const end = this.offset + length;
      if (this.buffer[end] !== CR || this.buffer[end + 1] !== LF) throw protocolError('expected CRLF after bulk');
      this.pushArgument(this.buffer.subarray(this.offset, end));
      this.offset = end + 2;
      return true;
    }
    if (length >= largeBulkBytesMin) {
      // Move what we have into a buffer of the final size; append() fills the rest.
      this.largeBulk = Buffer.allocUnsafe(length + 2);
      this.buffer.copy(this.largeBulk, 0, this.offset);
      this.largeBulkFilled = available;
      this.buffer = EMPTY;
      this.offset = 0;
    }
    return false;
  }

  private pushArgument(argument: Buffer): void {
    this.arguments.push(argument);
    this.argumentsRemaining--;
    this.bulkLength = -1;
  }

  /** Copies the head of `chunk` into the large bulk; returns the part of `chunk` left over. */
  private fillLargeBulk(chunk: Buffer): Buffer {
    const target = this.largeBulk!;
    const taken = Math.min(chunk.length, target.length - this.largeBulkFilled);
    chunk.copy(target, this.largeBulkFilled, 0, taken);
    this.largeBulkFilled += taken;
    if (this.largeBulkFilled < target.length) return EMPTY;
    const length = target.length - 2;
    this.largeBulk = null;
    this.largeBulkFilled = 0;
    if (target[length] !== CR || target[length + 1] !== LF) {
      this.failure = protocolError('expected CRLF after bulk');
      return EMPTY;
    }
    this.pushArgument(target.subarray(0, length));
    return chunk.subarray(taken);
  }

  /**
   * Parses `*<n>\r\n` or `$<n>\r\n` at the offset (the type byte is already checked) and advances
   * past it; undefined when the line is incomplete.
   */
  private parseHeaderLine(what: string): number | undefined {
    const buffer = this.buffer;
    const start = this.offset + 1;
    const limit = Math.min(buffer.length, this.offset + this.limits.headerLineBytesMax - 1);
    let position = start;
    while (position < limit && buffer[position] !== CR) position++;
    if (position === limit) {
      // No CR within the allowed line length: either more bytes are coming or the line is too long.
      if (limit < buffer.length || buffer.length - this.offset >= this.limits.headerLineBytesMax - 1) {
        throw protocolError(`too big ${what} string`);
      }
      return undefined;
    }
    if (position + 1 >= buffer.length) return undefined;
    if (buffer[position + 1] !== LF) throw protocolError(`invalid ${what}`);
    const value = parseDecimal(buffer, start, position);
    if (value === undefined) throw protocolError(`invalid ${what}`);
    this.offset = position + 2;
    return value;
  }

  /** One inline command line; [] for a blank line, undefined when the line is incomplete. */
  private parseInline(): Buffer[] | undefined {
    const buffer = this.buffer;
    const newline = buffer.indexOf(LF, this.offset);
    if (newline < 0) {
      if (buffer.length - this.offset > this.limits.inlineBytesMax) throw protocolError('too big inline request');
      return undefined;
    }
    if (newline - this.offset > this.limits.inlineBytesMax) throw protocolError('too big inline request');
    const end = newline > this.offset && buffer[newline - 1] === CR ? newline - 1 : newline;
    const words = splitInline(buffer, this.offset, end);
    this.offset = newline + 1;
    return words;
  }
}

/** Signed base-10 integer in buffer[start, end); undefined unless it is all digits (≤ 18 of them). */
function parseDecimal(buffer: Buffer, start: number, end: number): number | undefined {
  let negative = false;
  if (start < end && buffer[start] === 0x2d) {
    negative = true;
    start++;
  }
  if (start >= end || end - start > 18) return undefined;
  let value = 0;
  for (let i = start; i < end; i++) {
    const digit = buffer[i] - 0x30;
    if (digit < 0 || digit > 9) return undefined;
    value = value * 10 + digit;
  }
  return negative ? -value : value;
}

const SPACE_BYTES = new Set([0x20, 0x09, 0x0b, 0x0c, 0x0d, 0x0a]);
/** Backslash escapes inside double quotes: \n \r \t \b \a (by the letter's byte). */
const ESCAPES: ReadonlyMap<number, number> = new Map([
  [0x6e, 0x0a],
  [0x72, 0x0d],
  [0x74, 0x09],
  [0x62, 0x08],
  [0x61, 0x07],
]);

function hexValue(byte: number): number {
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}

/** Splits an inline line into words, honouring quotes the way redis-cli's own splitter does. */
export function splitInline(buffer: Buffer, start: number, end: number): Buffer[] {
  const words: Buffer[] = [];
  let position = start;
  for (;;) {
    while (position < end && SPACE_BYTES.has(buffer[position])) position++;
    if (position >= end) return words;
    const word: number[] = [];
    const quote = buffer[position] === 0x22 || buffer[position] === 0x27 ? buffer[position] : 0;
    if (quote !== 0) position++;
    let closed = quote === 0;
    while (position < end) {
      const byte = buffer[position];
      if (quote === 0) {
        if (SPACE_BYTES.has(byte)) break;
        word.push(byte);
        position++;
      } else if (byte === quote) {
        position++;
        closed = true;
        // A closing quote must be followed by a space or the end of the line.
        if (position < end && !SPACE_BYTES.has(buffer[position])) throw protocolError('unbalanced quotes in request');
        break;
      } else if (byte === 0x5c && position + 1 < end) {
        position += escapeInto(word, buffer, position, end, quote);
      } else {
        word.push(byte);
        position++;
      }
    }
    if (!closed) throw protocolError('unbalanced quotes in request');
    words.push(Buffer.from(word));
  }
}

/** Appends the byte(s) a backslash escape at `position` stands for; returns the bytes consumed. */
function escapeInto(word: number[], buffer: Buffer, position: number, end: number, quote: number): number {
  const next = buffer[position + 1];
  if (quote === 0x27) {
    word.push(next === 0x27 ? 0x27 : 0x5c);
    return next === 0x27 ? 2 : 1;
  }
  if (next === 0x78 && position + 3 < end) {
    const high = hexValue(buffer[position + 2]);
    const low = hexValue(buffer[position + 3]);
    if (high >= 0 && low >= 0) {
      word.push(high * 16 + low);
      return 4;
    }
  }
  word.push(ESCAPES.get(next) ?? next);
  return 2;
}
