/**
 * Request and response plumbing on uWebSockets.js, where the rules are strict:
 * - `HttpRequest` lives only until the handler returns: everything needed later (URL parts,
 *   headers) is copied out synchronously.
 * - Body chunks handed to `onData` are neutered when the callback returns: they are copied.
 * - A response not ended inside the handler must have `onAborted`; after an abort it must not be
 *   touched. Writes after an await happen inside `cork` (one syscall, and required by uWS).
 */
import { PaxosStoreError } from '../../errors.js';
import type { HttpResponse } from '../uws.js';

/** Per-request state that outlives the handler. */
export interface Exchange {
  readonly res: HttpResponse;
  readonly startedMs: number;
  aborted: boolean;
  responded: boolean;
  /** Set when the request body was not fully read: the connection cannot be reused. */
  closeConnection: boolean;
}

export interface HttpReply {
  readonly status: number;
  readonly contentType: string;
  readonly body: string | Uint8Array;
  readonly headers?: Readonly<Record<string, string>>;
}

const JSON_TYPE = 'application/json';
export const OCTET_STREAM = 'application/octet-stream';

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: 'OK',
  400: 'Bad Request',
  401: 'Unauthorized',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  412: 'Precondition Failed',
  413: 'Payload Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  507: 'Insufficient Storage',
};

/** Starts an asynchronous exchange: attaches the abort handler uWS requires before the handler returns. */
export function beginExchange(res: HttpResponse): Exchange {
  const exchange: Exchange = { res, startedMs: performance.now(), aborted: false, responded: false, closeConnection: false };
  res.onAborted(() => {
    exchange.aborted = true;
  });
  return exchange;
}

/** Writes the reply unless the client went away; safe to call after awaits (corks). Returns false when nothing was sent. */
export function respond(exchange: Exchange, reply: HttpReply): boolean {
  if (exchange.aborted || exchange.responded) return false;
  exchange.responded = true;
  exchange.res.cork(() => {
    exchange.res.writeStatus(`${reply.status} ${STATUS_TEXT[reply.status] ?? 'Unknown'}`);
    exchange.res.writeHeader('Content-Type', reply.contentType);
    for (const [name, value] of Object.entries(reply.headers ?? {})) exchange.res.writeHeader(name, value);
    exchange.res.end(reply.body, exchange.closeConnection);
  });
  return true;
}

export function jsonReply(status: number, value: unknown, headers?: Record<string, string>): HttpReply {
  return { status, contentType: JSON_TYPE, body: JSON.stringify(value), ...(headers === undefined ? {} : { headers }) };
}

/** The JSON error body `{ error: { code, message, ...details } }` with the catalogue's status. */
export function errorReply(error: unknown, headers?: Record<string, string>): HttpReply {
  const typed =
    error instanceof PaxosStoreError
      ? error
      : new PaxosStoreError('INTERNAL', error instanceof Error ? error.message : String(error));
  return jsonReply(typed.httpStatus, { error: { code: typed.code, message: typed.message, ...typed.details } }, headers);
}

/**
 * Reads the request body, copying each chunk, and rejects with REQUEST_TOO_LARGE (413) as soon as
 * the declared Content-Length or the bytes received exceed `bytesMax`, without buffering the rest.
 * Must be called synchronously inside the uWS handler (onData is registered right away).
 */
export function readBody(
  exchange: Exchange,
  contentLengthHeader: string,
  bytesMax: number,
  tooLargeCode: 'VALUE_TOO_LARGE' | 'REQUEST_TOO_LARGE',
): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    const tooLarge = (bytes: number) => {
      exchange.closeConnection = true;
      reject(new PaxosStoreError(tooLargeCode, `request body of ${bytes} bytes exceeds the limit of ${bytesMax}`));
    };
    const declared = contentLengthHeader === '' ? undefined : Number(contentLengthHeader);
    if (declared !== undefined && declared > bytesMax) {
      // Answer at once; onData is still attached so uWS drains what the client already sent.
      exchange.res.onData(() => {});
      tooLarge(declared);
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let done = false;
    exchange.res.onData((chunk, isLast) => {
      if (done) return;
      received += chunk.byteLength;
      if (received > bytesMax) {
        done = true;
        tooLarge(received);
        return;
      }
      // Copy: uWS neuters `chunk` when this callback returns.
      chunks.push(Buffer.from(new Uint8Array(chunk)));
      if (isLast) {
        done = true;
        resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, received));
      }
    });
  });
}

/**
 * Decodes a percent-encoded URL path segment into raw bytes, so keys are binary-safe: `%FF` is
 * the byte 0xFF (decodeURIComponent would reject it as invalid UTF-8).
 */
export function percentDecode(segment: string): Uint8Array {
  const text = Buffer.from(segment, 'utf8');
  const bytes = new Uint8Array(text.length);
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const byte = text[i];
    if (byte !== 0x25 /* % */) {
      bytes[length++] = byte;
      continue;
    }
    const high = hexValue(text[i + 1]);
    const low = hexValue(text[i + 2]);
    if (high < 0 || low < 0) throw new PaxosStoreError('INVALID_ARGUMENT', 'malformed percent-encoding in the key');
    bytes[length++] = (high << 4) | low;
    i += 2;
  }
  return bytes.subarray(0, length);
}

function hexValue(byte: number | undefined): number {
  if (byte === undefined) return -1;
  if (byte >= 0x30 && byte <= 0x39) return byte - 0x30;
  const lower = byte | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
