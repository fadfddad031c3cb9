/**
 * A deliberately simple RESP2 client for tests: raw bytes out, decoded replies in, so tests can
 * send exactly the bytes they mean (pipelines in one write, garbage, split frames) and see every
 * reply and the moment the server closes the connection.
 */
import net from 'node:net';

export type Decoded = string | number | bigint | null | Buffer | DecodedError | Decoded[];

export class DecodedError {
  constructor(readonly message: string) {}
}

/** Decodes one reply at `offset`; undefined when incomplete. */
function decode(buffer: Buffer, offset: number): { value: Decoded; end: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd < 0) return undefined;
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const next = lineEnd + 2;
  switch (buffer[offset]) {
    case 0x2b:
      return { value: line, end: next };
    case 0x2d:
      return { value: new DecodedError(line), end: next };
    case 0x3a: {
      const value = BigInt(line);
      return { value: Number.isSafeInteger(Number(value)) ? Number(value) : value, end: next };
    }
    case 0x24: {
      const length = Number(line);
      if (length < 0) return { value: null, end: next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.subarray(next, next + length), end: next + length + 2 };
    }
    case 0x2a: {
      const count = Number(line);
      if (count < 0) return { value: null, end: next };
      const items: Decoded[] = [];
      let position = next;
      for (let i = 0; i < count; i++) {
        const item = decode(buffer, position);
        if (item === undefined) return undefined;
        items.push(item.value);
        position = item.end;
      }
      return { value: items, end: position };
    }
    default:
      throw new Error(`bad reply byte ${buffer[offset]} at ${offset}: ${buffer.toString('latin1', offset, offset + 40)}`);
  }
}

/** Bulk replies as strings, recursively (most tests compare text). */
export function text(value: Decoded): unknown {
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value)) return value.map(text);
  if (value instanceof DecodedError) return `(error) ${value.message}`;
  return value;
}

export class RawClient {
  private received = Buffer.alloc(0);
  private replies: Decoded[] = [];
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.received = Buffer.concat([this.received, chunk]);
      for (;;) {
        const item = decode(this.received, 0);
        if (item === undefined) break;
        this.replies.push(item.value);
        this.received = this.received.subarray(item.end);
      }
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => resolve(new RawClient(socket)));
      socket.once('error', reject);
    });
  }

  write(bytes: string | Buffer): void {
    this.socket.write(bytes);
  }

  /** Waits for `count` replies (rejects if the connection closes first or after timeoutMs). */
  async read(count = 1, timeoutMs = 5000): Promise<Decoded[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.replies.length < count) {
      if (this.closed) throw new Error(`connection closed after ${this.replies.length} of ${count} replies`);
      if (Date.now() > deadline) throw new Error(`timed out with ${this.replies.length} of ${count} replies`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.replies.splice(0, count);
  }

  /** Sends one command as a multibulk and returns its decoded reply. */
  async command(...words: (string | Buffer)[]): Promise<Decoded> {
    this.write(encodeCommand(...words));
    return (await this.read(1))[0];
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 5000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('connection still open');
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}

export function encodeCommand(...words: (string | Buffer)[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${words.length}\r\n`)];
  for (const word of words) {
    const bytes = Buffer.from(word);
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}
