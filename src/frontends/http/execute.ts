/**
 * What the HTTP and WebSocket front ends share between their parsing and the Router: request ids
 * for requests that bring none, and multi-key calls (batch, mget, mset) composed from single-key
 * calls, which are not atomic across keys (src/router/types.ts).
 */
import { randomBytes } from 'node:crypto';
import type { KeyOperation, KeyResult, RequestId } from '../../api/operations.js';
import type { Router } from '../../router/types.js';
import { toWireError, type WireItem } from './ws-protocol.js';

/**
 * Makes request ids for requests that carry none. The client id is random per server instance:
 * reusing `(clientId, sequence)` after a restart could make the consensus layer's deduplication
 * answer a new write with an old result.
 */
export class RequestIdSource {
  private sequence = 0;

  constructor(
    readonly clientId: string = `server-${randomBytes(8).toString('hex')}`,
    private readonly clockMs: () => number = Date.now,
  ) {}

  /** A fresh id; `count` > 1 reserves that many consecutive sequences (see requestIdAt). */
  next(count = 1): RequestId {
    const id = { clientId: this.clientId, timestampMs: this.clockMs(), sequence: this.sequence + 1 };
    this.sequence += count;
    return id;
  }
}

/**
 * The id of item `offset` of a multi-key write that arrived with one id: consecutive sequences,
 * so each key gets its own id and a retry of the whole batch maps every key to the same id again.
 */
export function requestIdAt(base: RequestId, offset: number): RequestId {
  return offset === 0 ? base : { ...base, sequence: base.sequence + offset };
}

export interface KeyCall {
  readonly key: Uint8Array;
  readonly operation: KeyOperation;
}

/** Runs the calls concurrently; each settles into its own item, so one failure does not hide the others' results. */
export async function executeMany(router: Router, calls: readonly KeyCall[], requestIdBase: RequestId): Promise<WireItem[]> {
  const settled = await Promise.allSettled(
    calls.map(({ key, operation }, index) => router.execute(key, operation, requestIdAt(requestIdBase, index))),
  );
  return settled.map((outcome): WireItem =>
    outcome.status === 'fulfilled'
      ? { ok: true, result: outcome.value as KeyResult }
      : { ok: false, error: toWireError(outcome.reason) },
  );
}
