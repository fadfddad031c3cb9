/**
 * REST routes for single keys:
 *
 *   GET    /v1/kv/:key[?consistency=linearizable|local]   200 value bytes | 404
 *   PUT    /v1/kv/:key   body = value bytes                200 {applied, version} | 412
 *          If-Match: <version>  (compare-and-set)   If-Match: *  (only if present)
 *          If-None-Match: *     (only if absent, create-only)
 *   DELETE /v1/kv/:key   [If-Match: <version>]            200 {applied, version} | 404 | 412
 *   POST   /v1/kv/:key?op=incr[&delta=N]                   200 new value (ASCII integer)
 *   POST   /v1/kv/:key?op=append   body = bytes to append  200 new value
 *
 * `:key` is percent-decoded into raw bytes. Every reply about a key carries `X-Version` (and an
 * `ETag` with the same number) holding the key's version after the operation. Writes may carry
 * `X-Client-Id` and `X-Request-Sequence`: a retry with the same pair is applied at most once.
 */
import type { KeyOperation, KeyResult, RequestId } from '../../api/operations.js';
import { PaxosStoreError } from '../../errors.js';
import type { RequestMetrics } from '../../metrics/request-metrics.js';
import type { Router } from '../../router/types.js';
import type { HttpRequest, HttpResponse, TemplatedApp } from '../uws.js';
import type { RequestIdSource } from './execute.js';
import {
  beginExchange,
  type Exchange,
  errorReply,
  type HttpReply,
  jsonReply,
  OCTET_STREAM,
  percentDecode,
  readBody,
  respond,
} from './http-io.js';
import type { HttpLimits } from './limits.js';

export interface HttpContext {
  readonly router: Router;
  readonly limits: HttpLimits;
  readonly metrics: RequestMetrics;
  readonly requestIds: RequestIdSource;
  /** HTTP exchanges started and not yet answered (for /v1/status and metrics). */
  readonly http: { inFlight: number };
}

/**
 * Runs one asynchronous exchange: `start` must read everything it needs from the request before
 * its first await (uWS frees the request when the handler returns). Errors become JSON replies.
 */
export function serve(
  context: HttpContext,
  res: HttpResponse,
  operation: string,
  start: (exchange: Exchange) => Promise<HttpReply>,
): void {
  const exchange = beginExchange(res);
  context.http.inFlight += 1;
  let pending: Promise<HttpReply>;
  try {
    pending = start(exchange);
  } catch (error) {
    pending = Promise.reject(error);
  }
  pending.then(
    (reply) => finish(context, exchange, operation, reply, 'ok'),
    (error: unknown) => {
      const version = error instanceof PaxosStoreError ? error.details?.version : undefined;
      const reply = errorReply(error, typeof version === 'number' ? versionHeaders(version) : undefined);
      finish(context, exchange, operation, reply, error instanceof PaxosStoreError ? error.code : 'INTERNAL');
    },
  );
}

function finish(
  context: HttpContext,
  exchange: Exchange,
  operation: string,
  reply: HttpReply,
  outcome: Parameters<RequestMetrics['record']>[2],
): void {
  context.http.inFlight -= 1;
  respond(exchange, reply);
  context.metrics.record('http', operation, outcome, (performance.now() - exchange.startedMs) * 1000);
}

/**
 * Registers the key routes under `path` (default /v1/kv). The Delos routes reuse them with a
 * context whose router is a log group's (server.ts): `path` /v1/delos/<group>, metric operation
 * names prefixed with `operationPrefix` (e.g. delos_set) so they stay apart from /v1/kv's.
 */
export function registerKeyRoutes(app: TemplatedApp, context: HttpContext, path = '/v1/kv', operationPrefix = ''): void {
  app.get(`${path}/:key`, (res, req) => serve(context, res, `${operationPrefix}get`, () => getKey(context, req)));
  app.put(`${path}/:key`, (res, req) => serve(context, res, `${operationPrefix}set`, (exchange) => putKey(context, req, exchange)));
  app.del(`${path}/:key`, (res, req) => serve(context, res, `${operationPrefix}delete`, () => deleteKey(context, req)));
  app.post(`${path}/:key`, (res, req) => {
    const operation = new URLSearchParams(req.getQuery() ?? '').get('op') ?? '';
    serve(context, res, `${operationPrefix}${operation === 'incr' || operation === 'append' ? operation : 'unknown'}`, (exchange) =>
      postKey(context, req, exchange, operation),
    );
  });
}

async function getKey(context: HttpContext, req: HttpRequest): Promise<HttpReply> {
  const key = parseKey(req.getParameter(0), context.limits);
  const consistencyText = new URLSearchParams(req.getQuery() ?? '').get('consistency') ?? 'linearizable';
  if (consistencyText !== 'linearizable' && consistencyText !== 'local') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'consistency must be linearizable or local');
  }
  const result = await context.router.execute(key, { kind: 'get', consistency: consistencyText }, context.requestIds.next());
  if (result.value === null) throw new PaxosStoreError('NOT_FOUND', 'key not found', { version: result.version });
  return { status: 200, contentType: OCTET_STREAM, body: result.value, headers: versionHeaders(result.version) };
}

async function putKey(context: HttpContext, req: HttpRequest, exchange: Exchange): Promise<HttpReply> {
  // onData first: whatever fails below, the body is consumed (or the connection closed) properly.
  const body = readBodyQuietly(exchange, req, context.limits.valueBytesMax, 'VALUE_TOO_LARGE');
  const key = parseKey(req.getParameter(0), context.limits);
  const conditions = parseConditions(req.getHeader('if-match'), req.getHeader('if-none-match'));
  const requestId = requestIdFromHeaders(readRequestIdHeaders(req), context.requestIds);
  const value = await body;
  const result = await context.router.execute(key, { kind: 'set', value, ...conditions }, requestId);
  if (!result.applied) throw preconditionFailed(result);
  return writeReply(result);
}

async function deleteKey(context: HttpContext, req: HttpRequest): Promise<HttpReply> {
  const key = parseKey(req.getParameter(0), context.limits);
  const { ifVersion, onlyIfAbsent } = parseConditions(req.getHeader('if-match'), req.getHeader('if-none-match'));
  if (onlyIfAbsent) throw new PaxosStoreError('INVALID_ARGUMENT', 'If-None-Match is not supported on DELETE');
  const requestId = requestIdFromHeaders(readRequestIdHeaders(req), context.requestIds);
  const operation: KeyOperation = ifVersion === undefined ? { kind: 'delete' } : { kind: 'delete', ifVersion };
  const result = await context.router.execute(key, operation, requestId);
  if (!result.applied) {
    if (ifVersion !== undefined && result.version !== ifVersion) throw preconditionFailed(result);
    throw new PaxosStoreError('NOT_FOUND', 'key not found', { version: result.version });
  }
  return writeReply(result);
}

async function postKey(context: HttpContext, req: HttpRequest, exchange: Exchange, operation: string): Promise<HttpReply> {
  const body = readBodyQuietly(exchange, req, context.limits.valueBytesMax, 'VALUE_TOO_LARGE');
  const key = parseKey(req.getParameter(0), context.limits);
  const query = new URLSearchParams(req.getQuery() ?? '');
  const requestId = requestIdFromHeaders(readRequestIdHeaders(req), context.requestIds);
  let keyOperation: KeyOperation;
  if (operation === 'incr') {
    const deltaText = query.get('delta') ?? '1';
    if (!/^-?[0-9]{1,19}$/.test(deltaText)) throw new PaxosStoreError('INVALID_ARGUMENT', 'delta must be an integer');
    keyOperation = { kind: 'incr', delta: BigInt(deltaText) };
  } else if (operation === 'append') {
    keyOperation = { kind: 'append', value: await body };
  } else {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'POST /v1/kv/:key needs ?op=incr or ?op=append');
  }
  await body;
  const result = await context.router.execute(key, keyOperation, requestId);
  return { status: 200, contentType: OCTET_STREAM, body: result.value ?? new Uint8Array(0), headers: versionHeaders(result.version) };
}

/** readBody whose rejection is handled even if a synchronous parse error comes first. */
function readBodyQuietly(
  exchange: Exchange,
  req: HttpRequest,
  bytesMax: number,
  tooLargeCode: 'VALUE_TOO_LARGE' | 'REQUEST_TOO_LARGE',
): Promise<Uint8Array> {
  const body = readBody(exchange, req.getHeader('content-length'), bytesMax, tooLargeCode);
  body.catch(() => {});
  return body;
}

export function parseKey(segment: string, limits: HttpLimits): Uint8Array {
  return checkKey(percentDecode(segment), limits);
}

export function checkKey(key: Uint8Array, limits: HttpLimits): Uint8Array {
  if (key.length === 0) throw new PaxosStoreError('INVALID_ARGUMENT', 'empty key');
  if (key.length > limits.keyBytesMax) {
    throw new PaxosStoreError('KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${limits.keyBytesMax}`);
  }
  return key;
}

interface Conditions {
  ifVersion?: number;
  onlyIfAbsent?: boolean;
  onlyIfPresent?: boolean;
}

/** If-Match: `5`, `"5"` or `*`; If-None-Match: only `*`. One condition per request. */
export function parseConditions(ifMatch: string, ifNoneMatch: string): Conditions {
  if (ifMatch !== '' && ifNoneMatch !== '') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'use either If-Match or If-None-Match, not both');
  }
  if (ifNoneMatch !== '') {
    if (ifNoneMatch.trim() !== '*') throw new PaxosStoreError('INVALID_ARGUMENT', 'If-None-Match supports only *');
    return { onlyIfAbsent: true };
  }
  if (ifMatch === '') return {};
  const text = ifMatch.trim();
  if (text === '*') return { onlyIfPresent: true };
  const match = /^"?([0-9]{1,15})"?$/.exec(text);
  if (match === null) throw new PaxosStoreError('INVALID_ARGUMENT', 'If-Match must be a version number or *');
  return { ifVersion: Number(match[1]) };
}

/** The request id from X-Client-Id and X-Request-Sequence (read by the caller), or fresh ids reserving `count` sequences. */
export function requestIdFromHeaders(headers: RequestIdHeaders, source: RequestIdSource, count = 1): RequestId {
  const { clientId, sequenceText } = headers;
  if (clientId === '' && sequenceText === '') return source.next(count);
  if (clientId === '' || clientId.length > 128 || !/^[0-9]{1,15}$/.test(sequenceText)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'X-Client-Id (1–128 chars) and X-Request-Sequence (integer) go together');
  }
  return { clientId, timestampMs: Date.now(), sequence: Number(sequenceText) };
}

export interface RequestIdHeaders {
  readonly clientId: string;
  readonly sequenceText: string;
}

/** Copies the request-id headers out of the request (valid only during the handler). */
export function readRequestIdHeaders(req: HttpRequest): RequestIdHeaders {
  return { clientId: req.getHeader('x-client-id'), sequenceText: req.getHeader('x-request-sequence') };
}

export function versionHeaders(version: number): Record<string, string> {
  return { 'X-Version': String(version), ETag: `"${version}"` };
}

/** `logPosition` is present only on the Delos routes: the log position of the entry that applied the write. */
function writeReply(result: KeyResult & { readonly logPosition?: number }): HttpReply {
  if (result.logPosition === undefined) return jsonReply(200, { applied: result.applied, version: result.version }, versionHeaders(result.version));
  const headers = { ...versionHeaders(result.version), 'X-Log-Position': String(result.logPosition) };
  return jsonReply(200, { applied: result.applied, version: result.version, logPosition: result.logPosition }, headers);
}

function preconditionFailed(result: KeyResult): PaxosStoreError {
  return new PaxosStoreError('PRECONDITION_FAILED', 'precondition failed; the key is at another version', {
    version: result.version,
  });
}
