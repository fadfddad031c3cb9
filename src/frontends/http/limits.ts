/**
 * Bounds of the HTTP and WebSocket front end, validated once when the server starts.
 */
import { PaxosStoreError } from '../../errors.js';
import { KEY_BYTES_MAX, VALUE_BYTES_MAX_DEFAULT } from '../../storage/engine.js';

export interface HttpLimits {
  /** Largest key (after URL decoding). */
  readonly keyBytesMax: number;
  /** Largest value in a PUT body or a WebSocket set/append; larger bodies get 413 while streaming. */
  readonly valueBytesMax: number;
  /** Largest POST /v1/kv/_batch body. */
  readonly batchBodyBytesMax: number;
  /** Most keys in one batch, mget or mset. */
  readonly batchItemsMax: number;
  /** Largest WebSocket message; uWebSockets.js closes the connection (1009) on a larger one. */
  readonly wsFrameBytesMax: number;
  /** Requests one WebSocket connection may have in flight; more are answered OVERLOADED. */
  readonly wsInFlightMax: number;
  /** Above this many unsent reply bytes, a connection's new requests wait until its send buffer drains. */
  readonly wsSendHighWaterBytes: number;
  /** Hard ceiling of a connection's unsent reply bytes: a client that stops reading is disconnected. */
  readonly wsSendBufferBytesMax: number;
  /** Seconds without traffic before a WebSocket is closed; uWebSockets.js pings before that. */
  readonly wsIdleTimeoutSeconds: number;
}

const MIB = 1024 * 1024;

export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  keyBytesMax: KEY_BYTES_MAX,
  valueBytesMax: VALUE_BYTES_MAX_DEFAULT,
  batchBodyBytesMax: 32 * MIB,
  batchItemsMax: 1000,
  wsFrameBytesMax: VALUE_BYTES_MAX_DEFAULT + KEY_BYTES_MAX + 4096,
  wsInFlightMax: 4096,
  wsSendHighWaterBytes: 1 * MIB,
  wsSendBufferBytesMax: 2 * (VALUE_BYTES_MAX_DEFAULT + KEY_BYTES_MAX + 4096),
  wsIdleTimeoutSeconds: 120,
};

/** Defaults overlaid with `overrides`, every field checked to be a positive integer. */
export function resolveHttpLimits(overrides: Partial<HttpLimits> = {}): HttpLimits {
  const limits = { ...DEFAULT_HTTP_LIMITS, ...overrides };
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `limit ${name} must be a positive integer, got ${value}`);
    }
  }
  if (limits.wsSendBufferBytesMax < limits.wsSendHighWaterBytes) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'wsSendBufferBytesMax must be at least wsSendHighWaterBytes');
  }
  return limits;
}
