/**
 * Evaluates a per-key operation (src/api/operations.ts) against the key's chosen entry. Called at
 * the linearization point: for a write that is applied, the entry it was computed from is the one
 * right before the entry that gets chosen for it; for a read or a write that is not applied, the
 * chosen entry confirmed latest by a consistent read.
 */
import { fitsInt64, type KeyOperation, type KeyResult, parseInteger, type RequestId } from '../api/operations.js';
import type { ChosenEntry, EntryPayload, SessionRecord } from './paxos-log.js';

export type Evaluation =
  /** The operation writes `value` (null: tombstone) at entry chosen+1 and then returns `result`. */
  | { readonly kind: 'write'; readonly value: Uint8Array | null; readonly result: KeyResult }
  /** Nothing is written: a read, or a precondition stopped the write. */
  | { readonly kind: 'noWrite'; readonly result: KeyResult }
  /** INCR on a value that is not an int64, or overflow: determinate error, nothing written. */
  | { readonly kind: 'wrongType'; readonly message: string };

export function evaluate(operation: KeyOperation, chosen: ChosenEntry): Evaluation {
  const version = chosen.entryId;
  const current = chosen.payload?.value ?? null;
  const unchanged: Evaluation = { kind: 'noWrite', result: { applied: operation.kind === 'get', version, value: current } };
  switch (operation.kind) {
    case 'get':
      return unchanged;
    case 'set': {
      if (operation.ifVersion !== undefined && operation.ifVersion !== version) return unchanged;
      if (operation.onlyIfAbsent && current !== null) return unchanged;
      if (operation.onlyIfPresent && current === null) return unchanged;
      return { kind: 'write', value: operation.value, result: { applied: true, version: version + 1, value: current } };
    }
    case 'delete': {
      if ((operation.ifVersion !== undefined && operation.ifVersion !== version) || current === null) return unchanged;
      return { kind: 'write', value: null, result: { applied: true, version: version + 1, value: current } };
    }
    case 'incr': {
      const base = parseInteger(current);
      if (base === undefined) return { kind: 'wrongType', message: 'value is not an integer or out of range' };
      const sum = base + operation.delta;
      if (!fitsInt64(sum)) return { kind: 'wrongType', message: 'increment or decrement would overflow' };
      const value = new TextEncoder().encode(sum.toString());
      return { kind: 'write', value, result: { applied: true, version: version + 1, value } };
    }
    case 'append': {
      const value = new Uint8Array((current?.length ?? 0) + operation.value.length);
      if (current !== null) value.set(current, 0);
      value.set(operation.value, current?.length ?? 0);
      return { kind: 'write', value, result: { applied: true, version: version + 1, value } };
    }
  }
}

export type SessionLookup =
  | { readonly kind: 'new' }
  /** This request was already applied: return its original result. */
  | { readonly kind: 'duplicate'; readonly result: KeyResult }
  /** Older than every remembered write of this client on this key: its fate is unknown here. */
  | { readonly kind: 'superseded' };

/** Applied writes remembered per client per key (lets a client pipeline a few writes on a key). */
export const SESSION_RECORDS_PER_CLIENT_MAX = 4;

export function lookUpSession(chosen: ChosenEntry, requestId: RequestId): SessionLookup {
  let count = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const record of chosen.payload?.sessions ?? []) {
    if (record.clientId !== requestId.clientId) continue;
    if (record.sequence === requestId.sequence) return { kind: 'duplicate', result: record.result };
    count++;
    oldest = Math.min(oldest, record.sequence);
  }
  return count >= SESSION_RECORDS_PER_CLIENT_MAX && requestId.sequence < oldest ? { kind: 'superseded' } : { kind: 'new' };
}

/**
 * The payload for entry chosen+1: the new value plus the session table with this write added.
 * Keeps the newest SESSION_RECORDS_PER_CLIENT_MAX records of this client and the records of the
 * `sessionsMax - 1` clients that wrote most recently before it.
 */
export function buildPayload(
  chosen: ChosenEntry,
  value: Uint8Array | null,
  result: KeyResult,
  proposerId: number,
  requestId: RequestId,
  sessionsMax: number,
): EntryPayload {
  const previous = chosen.payload?.sessions ?? [];
  const own: SessionRecord = { clientId: requestId.clientId, sequence: requestId.sequence, result };
  // Runs on every write: plain loops, no intermediate arrays or Set (session tables are short).
  const sessions: SessionRecord[] = [own];
  for (const record of previous) if (record.clientId === requestId.clientId) sessions.push(record);
  if (sessions.length > 1) sessions.sort((a, b) => b.sequence - a.sequence);
  if (sessions.length > SESSION_RECORDS_PER_CLIENT_MAX) sessions.length = SESSION_RECORDS_PER_CLIENT_MAX;
  const otherClients: string[] = [];
  for (const record of previous) {
    if (record.clientId === requestId.clientId) continue;
    if (!otherClients.includes(record.clientId)) {
      if (otherClients.length >= sessionsMax - 1) continue;
      otherClients.push(record.clientId);
    }
    sessions.push(record);
  }
  return { value, proposerId, requestId, sessions };
}
