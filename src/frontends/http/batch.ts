/**
 * POST /v1/kv/_batch — many sets and gets in one request, each reported on its own:
 *
 *   request  { "encoding": "utf8" | "base64",            (default utf8; applies to keys and values)
 *              "consistency": "linearizable" | "local",  (for the gets; default linearizable)
 *              "sets": [ { "key": "a", "value": "1", "ifVersion": 3 }, … ],
 *              "gets": [ "a", "b", … ] }
 *   reply    { "sets": [ { "key": "a", "applied": true, "version": 4 }
 *                      | { "key": "a", "error": { "code", "message" } }, … ],
 *              "gets": [ { "key": "a", "found": true, "version": 4, "value": "1" }
 *                      | { "key": "b", "found": false, "version": 0 }
 *                      | { "key": "c", "error": { … } }, … ] }
 *
 * Sets run first (concurrently), then gets, so a batch reads its own writes; it is not atomic
 * across keys. With utf8 encoding a value that is not valid UTF-8 comes back in base64 with
 * `"valueEncoding": "base64"` on its item. Sets may be retried safely with X-Client-Id and
 * X-Request-Sequence: set i uses sequence + i.
 */
import type { Consistency, KeyOperation } from '../../api/operations.js';
import { PaxosStoreError } from '../../errors.js';
import type { HttpRequest, TemplatedApp } from '../uws.js';
import { executeMany } from './execute.js';
import { type Exchange, type HttpReply, jsonReply, readBody } from './http-io.js';
import { checkKey, type HttpContext, readRequestIdHeaders, requestIdFromHeaders, serve } from './kv-routes.js';

type Encoding = 'utf8' | 'base64';

interface BatchRequest {
  readonly encoding: Encoding;
  readonly consistency: Consistency;
  readonly sets: readonly { readonly key: Uint8Array; readonly keyText: string; readonly operation: KeyOperation }[];
  readonly gets: readonly { readonly key: Uint8Array; readonly keyText: string }[];
}

export function registerBatchRoute(app: TemplatedApp, context: HttpContext): void {
  app.post('/v1/kv/_batch', (res, req) => serve(context, res, 'batch', (exchange) => runBatch(context, req, exchange)));
}

async function runBatch(context: HttpContext, req: HttpRequest, exchange: Exchange): Promise<HttpReply> {
  const bodyPromise = readBody(exchange, req.getHeader('content-length'), context.limits.batchBodyBytesMax, 'REQUEST_TOO_LARGE');
  bodyPromise.catch(() => {});
  const requestIdHeaders = readRequestIdHeaders(req);
  const batch = parseBatch(await bodyPromise, context);
  const requestId = requestIdFromHeaders(requestIdHeaders, context.requestIds, Math.max(1, batch.sets.length));
  const setResults = await executeMany(context.router, batch.sets, requestId);
  const getResults = await executeMany(
    context.router,
    batch.gets.map(({ key }) => ({ key, operation: { kind: 'get', consistency: batch.consistency } })),
    context.requestIds.next(),
  );
  return jsonReply(200, {
    sets: setResults.map((item, index) => {
      const key = batch.sets[index].keyText;
      return item.ok ? { key, applied: item.result.applied, version: item.result.version } : { key, error: item.error };
    }),
    gets: getResults.map((item, index) => {
      const key = batch.gets[index].keyText;
      if (!item.ok) return { key, error: item.error };
      const { value, version } = item.result;
      return value === null ? { key, found: false, version } : { key, found: true, version, ...encodeValue(value, batch.encoding) };
    }),
  });
}

function parseBatch(body: Uint8Array, context: HttpContext): BatchRequest {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
  } catch (error) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `malformed JSON: ${(error as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'the batch must be a JSON object');
  }
  const fields = json as Record<string, unknown>;
  const encoding = fields.encoding ?? 'utf8';
  if (encoding !== 'utf8' && encoding !== 'base64') throw new PaxosStoreError('INVALID_ARGUMENT', 'encoding must be utf8 or base64');
  const consistency = fields.consistency ?? 'linearizable';
  if (consistency !== 'linearizable' && consistency !== 'local') {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'consistency must be linearizable or local');
  }
  const setsField = fields.sets ?? [];
  const getsField = fields.gets ?? [];
  if (!Array.isArray(setsField) || !Array.isArray(getsField)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'sets and gets must be arrays');
  }
  if (setsField.length + getsField.length > context.limits.batchItemsMax) {
    throw new PaxosStoreError('REQUEST_TOO_LARGE', `a batch holds at most ${context.limits.batchItemsMax} items`);
  }
  const decodeKey = (text: unknown) => {
    if (typeof text !== 'string') throw new PaxosStoreError('INVALID_ARGUMENT', 'keys must be strings');
    return { key: checkKey(decodeText(text, encoding), context.limits), keyText: text };
  };
  const sets = setsField.map((item: unknown) => {
    if (typeof item !== 'object' || item === null) throw new PaxosStoreError('INVALID_ARGUMENT', 'each set is {key, value}');
    const { key: keyField, value: valueField, ifVersion } = item as Record<string, unknown>;
    if (typeof valueField !== 'string') throw new PaxosStoreError('INVALID_ARGUMENT', 'set values must be strings');
    const value = decodeText(valueField, encoding);
    if (value.length > context.limits.valueBytesMax) {
      throw new PaxosStoreError('VALUE_TOO_LARGE', `value is ${value.length} bytes; the limit is ${context.limits.valueBytesMax}`);
    }
    if (ifVersion !== undefined && (!Number.isSafeInteger(ifVersion) || (ifVersion as number) < 0)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', 'ifVersion must be a non-negative integer');
    }
    const operation: KeyOperation =
      ifVersion === undefined ? { kind: 'set', value } : { kind: 'set', value, ifVersion: ifVersion as number };
    return { ...decodeKey(keyField), operation };
  });
  return { encoding, consistency, sets, gets: getsField.map(decodeKey) };
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeText(text: string, encoding: Encoding): Uint8Array {
  if (encoding === 'utf8') return Buffer.from(text, 'utf8');
  if (text.length % 4 !== 0 || !BASE64.test(text)) throw new PaxosStoreError('INVALID_ARGUMENT', 'malformed base64');
  return Buffer.from(text, 'base64');
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function encodeValue(value: Uint8Array, encoding: Encoding): { value: string; valueEncoding?: 'base64' } {
  const base64 = () => Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  if (encoding === 'base64') return { value: base64() };
  try {
    return { value: strictUtf8.decode(value) };
  } catch {
    return { value: base64(), valueEncoding: 'base64' };
  }
}
