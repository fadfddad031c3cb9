/**
 * RESP2 replies: a small typed union the command handlers return, and an encoder that writes many
 * of them into one output buffer, so a pipeline's replies leave in one socket write.
 *
 *   simple string  +OK\r\n                 error   -ERR message\r\n
 *   integer        :42\r\n                 bulk    $5\r\nhello\r\n      null bulk   $-1\r\n
 *   array          *2\r\n<reply><reply>    null array  *-1\r\n
 *
 * Simple strings and errors cannot carry CR or LF (the line would end early and the client would
 * read the rest as the next reply); the encoder replaces them with spaces, as Redis does for error
 * strings, so user input echoed in an error message cannot forge replies.
 */

export type Reply =
  | { readonly kind: 'simple'; readonly text: string }
  | { readonly kind: 'error'; readonly text: string }
  | { readonly kind: 'integer'; readonly value: number | bigint }
  | { readonly kind: 'bulk'; readonly value: Uint8Array | string | null }
  | { readonly kind: 'array'; readonly items: readonly Reply[] | null };

export const reply = {
  simple: (text: string): Reply => ({ kind: 'simple', text }),
  /** `text` starts with the error prefix, e.g. "ERR syntax error" or "CONTENTION …". */
  error: (text: string): Reply => ({ kind: 'error', text }),
  integer: (value: number | bigint): Reply => ({ kind: 'integer', value }),
  bulk: (value: Uint8Array | string | null): Reply => ({ kind: 'bulk', value }),
  array: (items: readonly Reply[] | null): Reply => ({ kind: 'array', items }),
  ok: { kind: 'simple', text: 'OK' } as Reply,
  nullBulk: { kind: 'bulk', value: null } as Reply,
};

/** Bulk values at least this long are passed to the socket by reference instead of copied. */
const referenceBytesMin = 16 * 1024;
const scratchBytes = 64 * 1024;
const CRLF = Buffer.from('\r\n');
const LINE_BREAKS = /[\r\n]/g;
const OK_BYTES = Buffer.from('+OK\r\n');
const NULL_BULK_BYTES = Buffer.from('$-1\r\n');

function withoutLineBreaks(text: string): string {
  return text.includes('\r') || text.includes('\n') ? text.replace(LINE_BREAKS, ' ') : text;
}

/**
 * Accumulates encoded replies. Small pieces are copied into a shared scratch buffer; `finish()`
 * copies the used part out (the scratch is reused by the next connection's flush, while the
 * socket keeps the returned buffers until written) and returns the chunks to write in order.
 * One encoder per process is enough: encoding is synchronous.
 */
export class ReplyEncoder {
  private scratch = Buffer.allocUnsafe(scratchBytes);
  private position = 0;
  private chunks: Buffer[] = [];

  write(value: Reply): void {
    // The two most frequent replies of a pipelined SET / GET-miss workload, pre-encoded.
    if (value === reply.ok || value === reply.nullBulk) {
      this.raw(value === reply.ok ? OK_BYTES : NULL_BULK_BYTES);
      return;
    }
    switch (value.kind) {
      case 'simple':
        this.line(0x2b, withoutLineBreaks(value.text));
        return;
      case 'error':
        this.line(0x2d, withoutLineBreaks(value.text));
        return;
      case 'integer':
        this.line(0x3a, value.value.toString());
        return;
      case 'bulk':
        this.bulk(value.value);
        return;
      case 'array':
        if (value.items === null) {
          this.line(0x2a, '-1');
          return;
        }
        this.header(0x2a, value.items.length);
        for (const item of value.items) this.write(item);
        return;
    }
  }

  /** The encoded bytes since the last finish(), as buffers the caller may keep. */
  finish(): Buffer[] {
    this.cut();
    const chunks = this.chunks;
    this.chunks = [];
    return chunks;
  }

  private bulk(value: Uint8Array | string | null): void {
    if (value === null) {
      this.line(0x24, '-1');
      return;
    }
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    this.header(0x24, bytes.length);
    if (bytes.length >= referenceBytesMin) {
      this.cut();
      this.chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      this.raw(CRLF);
    } else {
      this.raw(bytes);
      this.raw(CRLF);
    }
  }

  /** `<type byte><decimal n>\r\n` for a length, without building a string. */
  private header(type: number, n: number): void {
    this.reserve(20);
    const scratch = this.scratch;
    scratch[this.position++] = type;
    const start = this.position;
    do {
      scratch[this.position++] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
    scratch.subarray(start, this.position).reverse();
    scratch[this.position++] = 0x0d;
    scratch[this.position++] = 0x0a;
  }

  /** `<type byte><ASCII text>\r\n` */
  private line(type: number, text: string): void {
    this.reserve(text.length * 3 + 3);
    this.scratch[this.position++] = type;
    this.position += this.scratch.write(text, this.position, 'utf8');
    this.scratch[this.position++] = 0x0d;
    this.scratch[this.position++] = 0x0a;
  }

  private raw(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.scratch.set(bytes, this.position);
    this.position += bytes.length;
  }

  private reserve(bytes: number): void {
    if (this.position + bytes <= this.scratch.length) return;
    this.cut();
    if (bytes > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(bytes, scratchBytes));
  }

  /** Moves the scratch's used bytes into a chunk of their own. */
  private cut(): void {
    if (this.position === 0) return;
    this.chunks.push(Buffer.from(this.scratch.subarray(0, this.position)));
    this.position = 0;
  }
}

/** Encodes replies into one buffer (tests, and callers that want a single write). */
export function encodeReplies(replies: readonly Reply[]): Buffer {
  const encoder = new ReplyEncoder();
  for (const value of replies) encoder.write(value);
  return Buffer.concat(encoder.finish());
}
