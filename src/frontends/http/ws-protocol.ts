/**
 * The WebSocket protocol on `/v1/ws`, shared by the server (ws-handler.ts) and the TypeScript
 * client (src/client). One binary WebSocket message carries one msgpack map:
 *
 *   request   { id: uint32, op, ...operation fields, requestId?: { clientId, timestampMs, sequence } }
 *
 *     op        fields                                                  reply
 *     'get'     key, consistency?: 'linearizable' | 'local'             result
 *     'set'     key, value, ifVersion?, onlyIfAbsent?, onlyIfPresent?   result (value = previous)
 *     'delete'  key, ifVersion?                                         result (value = previous)
 *     'incr'    key, delta: int64                                       result (value = new, ASCII)
 *     'append'  key, value                                              result (value = new)
 *     'mget'    keys: key[], consistency?                               results[]
 *     'mset'    entries: [key, value][]                                 results[]
 *     'ping'    —                                                       (no result)
 *
 *   reply     { id, ok: true, result?: { applied, version, value: bin | nil }, results?: item[] }
 *           | { id, ok: false, error: { code, message } }        (id is nil when the request had none)
 *   item      { ok: true, result } | { ok: false, error }
 *
 * Keys and values are msgpack bin (a str is accepted and taken as UTF-8). Versions are unsigned
 * integers. Requests are pipelined: a client may send many before reading replies, and replies
 * come back in completion order, matched by `id` (unique among the connection's in-flight requests).
 *
 * `requestId` makes a write idempotent across retries and replicas: a client that resends a write
 * (after a timeout or a failover) with the same requestId gets it applied at most once; the
 * consensus layer deduplicates on the chosen entry. Without one the server makes up a fresh id.
 * For mset, the one requestId covers every key (deduplication is per key).
 */
import { Packr } from 'msgpackr';
import type { Consistency, KeyResult, RequestId } from '../../api/operations.js';
import { type ErrorCode, errorCatalogue, PaxosStoreError } from '../../errors.js';

export type WireKey = Uint8Array;

interface FrameBase {
  readonly id: number;
  readonly requestId?: RequestId;
}

export type ClientFrame =
  | (FrameBase & { readonly op: 'get'; readonly key: WireKey; readonly consistency?: Consistency })
  | (FrameBase & {
      readonly op: 'set';
      readonly key: WireKey;
      readonly value: Uint8Array;
      readonly ifVersion?: number;
      readonly onlyIfAbsent?: boolean;
      readonly onlyIfPresent?: boolean;
    })
  | (FrameBase & { readonly op: 'delete'; readonly key: WireKey; readonly ifVersion?: number })
  | (FrameBase & { readonly op: 'incr'; readonly key: WireKey; readonly delta: bigint })
  | (FrameBase & { readonly op: 'append'; readonly key: WireKey; readonly value: Uint8Array })
  | (FrameBase & { readonly op: 'mget'; readonly keys: readonly WireKey[]; readonly consistency?: Consistency })
  | (FrameBase & { readonly op: 'mset'; readonly entries: readonly (readonly [WireKey, Uint8Array])[] })
  | (FrameBase & { readonly op: 'ping' });

export type ClientOperationName = ClientFrame['op'];

export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

export type WireItem = { readonly ok: true; readonly result: KeyResult } | { readonly ok: false; readonly error: WireError };

export type ServerFrame =
  | { readonly id: number; readonly ok: true; readonly result?: KeyResult; readonly results?: readonly WireItem[] }
  | { readonly id: number | null; readonly ok: false; readonly error: WireError };

/** Request ids are uint32 so that both ends can keep them in plain numbers and typed arrays. */
export const FRAME_ID_MAX = 0xffff_ffff;

/**
 * One packer configuration for both ends. `copyBuffers` because the server decodes straight from
 * uWebSockets.js's ArrayBuffer, which is neutered when the message handler returns; int64 values
 * (incr deltas, very large versions) decode as bigint.
 */
const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, int64AsType: 'bigint' });

export function encodeFrame(frame: ClientFrame | ServerFrame): Uint8Array {
  return packr.pack(frame);
}

/** Decodes msgpack bytes; throws PROTOCOL_ERROR when they are not one complete msgpack value. */
export function decodeMsgpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw new PaxosStoreError('PROTOCOL_ERROR', `malformed msgpack frame: ${(error as Error).message}`);
  }
}

export type ParsedClientFrame =
  | { readonly ok: true; readonly frame: ClientFrame }
  | { readonly ok: false; readonly id: number | null; readonly error: PaxosStoreError };

/** Validates a decoded request; a bad frame yields its id (when it has a usable one) and a typed error. */
export function parseClientFrame(decoded: unknown): ParsedClientFrame {
  if (!isRecord(decoded)) {
    return { ok: false, id: null, error: invalid('PROTOCOL_ERROR', 'a request must be a msgpack map') };
  }
  const id = asFrameId(decoded.id);
  if (id === undefined) return { ok: false, id: null, error: invalid('PROTOCOL_ERROR', 'request id must be a uint32') };
  try {
    return { ok: true, frame: parseOperation(id, decoded) };
  } catch (error) {
    if (error instanceof PaxosStoreError) return { ok: false, id, error };
    throw error;
  }
}

function parseOperation(id: number, frame: Record<string, unknown>): ClientFrame {
  const requestId = frame.requestId === undefined ? undefined : parseRequestId(frame.requestId);
  const base = requestId === undefined ? { id } : { id, requestId };
  switch (frame.op) {
    case 'get':
      return { ...base, op: 'get', key: bytesField(frame.key, 'key'), ...optionalConsistency(frame.consistency) };
    case 'set':
      return {
        ...base,
        op: 'set',
        key: bytesField(frame.key, 'key'),
        value: bytesField(frame.value, 'value'),
        ...optionalVersion(frame.ifVersion),
        ...optionalFlag('onlyIfAbsent', frame.onlyIfAbsent),
        ...optionalFlag('onlyIfPresent', frame.onlyIfPresent),
      };
    case 'delete':
      return { ...base, op: 'delete', key: bytesField(frame.key, 'key'), ...optionalVersion(frame.ifVersion) };
    case 'incr':
      return { ...base, op: 'incr', key: bytesField(frame.key, 'key'), delta: integerField(frame.delta, 'delta') };
    case 'append':
      return { ...base, op: 'append', key: bytesField(frame.key, 'key'), value: bytesField(frame.value, 'value') };
    case 'mget':
      return {
        ...base,
        op: 'mget',
        keys: arrayField(frame.keys, 'keys').map((key) => bytesField(key, 'keys[]')),
        ...optionalConsistency(frame.consistency),
      };
    case 'mset':
      return { ...base, op: 'mset', entries: arrayField(frame.entries, 'entries').map(parseEntry) };
    case 'ping':
      return { ...base, op: 'ping' };
    default:
      throw invalid('UNKNOWN_COMMAND', `unknown op ${JSON.stringify(frame.op)}`);
  }
}

function parseEntry(entry: unknown): readonly [WireKey, Uint8Array] {
  if (!Array.isArray(entry) || entry.length !== 2) throw invalid('INVALID_ARGUMENT', 'each mset entry must be [key, value]');
  return [bytesField(entry[0], 'entries[][0]'), bytesField(entry[1], 'entries[][1]')];
}

function parseRequestId(value: unknown): RequestId {
  if (!isRecord(value) || typeof value.clientId !== 'string' || value.clientId.length === 0 || value.clientId.length > 128) {
    throw invalid('INVALID_ARGUMENT', 'requestId.clientId must be a string of 1–128 characters');
  }
  const timestampMs = asSafeInteger(value.timestampMs);
  const sequence = asSafeInteger(value.sequence);
  if (timestampMs === undefined || sequence === undefined || timestampMs < 0 || sequence < 0) {
    throw invalid('INVALID_ARGUMENT', 'requestId.timestampMs and requestId.sequence must be non-negative integers');
  }
  return { clientId: value.clientId, timestampMs, sequence };
}

/** Validates a decoded reply (the client's side of the edge). */
export function parseServerFrame(decoded: unknown): ServerFrame {
  if (!isRecord(decoded) || typeof decoded.ok !== 'boolean') throw invalid('PROTOCOL_ERROR', 'a reply must be a map with ok');
  if (decoded.ok === false) {
    const id = decoded.id === null ? null : asFrameId(decoded.id);
    if (id === undefined) throw invalid('PROTOCOL_ERROR', 'reply id must be a uint32 or nil');
    return { id, ok: false, error: parseWireError(decoded.error) };
  }
  const id = asFrameId(decoded.id);
  if (id === undefined) throw invalid('PROTOCOL_ERROR', 'reply id must be a uint32');
  const reply: { id: number; ok: true; result?: KeyResult; results?: WireItem[] } = { id, ok: true };
  if (decoded.result !== undefined) reply.result = parseKeyResult(decoded.result);
  if (decoded.results !== undefined) {
    reply.results = arrayField(decoded.results, 'results').map((item): WireItem => {
      if (!isRecord(item)) throw invalid('PROTOCOL_ERROR', 'a result item must be a map');
      return item.ok === true
        ? { ok: true, result: parseKeyResult(item.result) }
        : { ok: false, error: parseWireError(item.error) };
    });
  }
  return reply;
}

function parseKeyResult(value: unknown): KeyResult {
  if (!isRecord(value) || typeof value.applied !== 'boolean') throw invalid('PROTOCOL_ERROR', 'malformed result');
  const version = asSafeInteger(value.version);
  if (version === undefined || version < 0) throw invalid('PROTOCOL_ERROR', 'malformed result version');
  if (value.value !== null && value.value !== undefined && !(value.value instanceof Uint8Array)) {
    throw invalid('PROTOCOL_ERROR', 'result value must be bin or nil');
  }
  return { applied: value.applied, version, value: (value.value as Uint8Array | null | undefined) ?? null };
}

function parseWireError(value: unknown): WireError {
  if (!isRecord(value) || typeof value.code !== 'string' || typeof value.message !== 'string') {
    throw invalid('PROTOCOL_ERROR', 'malformed error');
  }
  const code = (Object.hasOwn(errorCatalogue, value.code) ? value.code : 'INTERNAL') as ErrorCode;
  return { code, message: value.message };
}

export function toWireError(error: unknown): WireError {
  if (error instanceof PaxosStoreError) return { code: error.code, message: error.message };
  return { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

function invalid(code: ErrorCode, message: string): PaxosStoreError {
  return new PaxosStoreError(code, message);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

function asFrameId(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= FRAME_ID_MAX ? value : undefined;
}

function asSafeInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : undefined;
  }
  return undefined;
}

function bytesField(value: unknown, name: string): Uint8Array {
  if (value instanceof Uint8Array) return value;
  // Buffer (a Uint8Array) like msgpackr's decoded bin, so every decoded key and value has one type.
  if (typeof value === 'string') return Buffer.from(value, 'utf8');
  throw invalid('INVALID_ARGUMENT', `${name} must be bin or str`);
}

function integerField(value: unknown, name: string): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  throw invalid('INVALID_ARGUMENT', `${name} must be an integer`);
}

function arrayField(value: unknown, name: string): unknown[] {
  if (!Array.isArray(value)) throw invalid('INVALID_ARGUMENT', `${name} must be an array`);
  return value;
}

function optionalConsistency(value: unknown): { consistency?: Consistency } {
  if (value === undefined || value === null) return {};
  if (value === 'linearizable' || value === 'local') return { consistency: value };
  throw invalid('INVALID_ARGUMENT', 'consistency must be "linearizable" or "local"');
}

function optionalVersion(value: unknown): { ifVersion?: number } {
  if (value === undefined || value === null) return {};
  const version = asSafeInteger(value);
  if (version === undefined || version < 0) throw invalid('INVALID_ARGUMENT', 'ifVersion must be a non-negative integer');
  return { ifVersion: version };
}

function optionalFlag<N extends string>(name: N, value: unknown): { [K in N]?: boolean } {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'boolean') throw invalid('INVALID_ARGUMENT', `${name} must be a boolean`);
  return { [name]: value } as { [K in N]?: boolean };
}
