/**
 * The proof applicator: the per-key operations of src/api/operations.ts on top of an engine stack.
 * Writes are proposed and evaluated at apply time (consensus/evaluate.ts, the same semantics as
 * the PaxosStore path); reads call `sync` and read the snapshot it returns.
 *
 *   entry body = [key: bin | str, kind: str, value: bin | nil, delta: str | nil, ifVersion: int | nil,
 *                 onlyIfAbsent: bool, onlyIfPresent: bool, (clientId: str, timestampMs: int, sequence: int)?]
 *   LocalStore key  K/<key bytes>  →  msgpackr [version, value: bin | nil (deleted), sessions?]
 *   sessions = [[clientId: str, sequence: int, version: int, applied: bool, value: bin | nil,
 *                logPosition: int | nil], …]
 *
 * Request-id dedup as on the per-key path, with its own rules (consensus/evaluate.ts: lookUpSession,
 * buildPayload): a write that carries a request id already in the key's session table returns the
 * stored result (logPosition included) instead of applying twice; one older than every remembered
 * write of its client on the key fails with PRECONDITION_FAILED (its outcome is unknown). The
 * table keeps the newest writes of the last KV_SESSIONS_MAX clients of each key.
 *
 * Keys are bytes (a string key is its UTF-8 encoding), so the server's binary keys are stored as
 * they are. A write's result also carries `logPosition`, the position of the log entry that
 * applied it (with BatchingEngine, the batch's entry).
 */
import { Packr } from 'msgpackr';
import type { KeyOperation, KeyResult, RequestId } from '../../api/operations.js';
import { buildPayload, evaluate, lookUpSession } from '../../consensus/evaluate.js';
import type { ChosenEntry, SessionRecord } from '../../consensus/paxos-log.js';
import { PaxosStoreError } from '../../errors.js';
import type { ReadView } from '../../storage/engine.js';
import type { IApplicator, IEngine, StackEntry, Transaction } from '../../engines/types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();

type Body = [Uint8Array | string, string, Uint8Array | null, string | null, number | null, boolean, boolean, ...(string | number)[]];
type StoredSession = [string, number, number, boolean, Uint8Array | null, number | null];

/** Clients whose recent writes each key remembers for dedup (the per-key path's default too). */
export const KV_SESSIONS_MAX = 16;

const KEY_PREFIX = encoder.encode('K/');

/**
 * Largest value a key may hold. A constant, not a setting: apply must decide alike on every
 * replica. Small because a BatchingEngine entry carries up to 256 proposals and travels whole in
 * one peer message (≤ 16 MiB frames): 256 × 32 KiB = 8 MiB.
 */
export const KV_VALUE_BYTES_MAX = 32 * 1024;

function valueTooLarge(bytes: number): PaxosStoreError {
  return new PaxosStoreError('VALUE_TOO_LARGE', `value is ${bytes} bytes; the Delos KV limit is ${KV_VALUE_BYTES_MAX}`);
}

/** A key as the applicator sees it: bytes (strings are UTF-8). */
export type KvKey = Uint8Array | string;

export function kvKey(key: KvKey): Uint8Array {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  const stored = new Uint8Array(KEY_PREFIX.length + bytes.length);
  stored.set(KEY_PREFIX);
  stored.set(bytes, KEY_PREFIX.length);
  return stored;
}

/** A write's result: the KeyResult of operations.ts plus the log position that applied it. */
export type KvWriteResult = KeyResult & { readonly logPosition: number };

function readKey(view: { get(key: Uint8Array): Uint8Array | undefined }, key: KvKey): ChosenEntry {
  const stored = view.get(kvKey(key));
  if (stored === undefined) return { entryId: 0, payload: null };
  const [version, value, sessions] = packr.unpack(stored) as [number, Uint8Array | null, StoredSession[] | undefined];
  return {
    entryId: version,
    payload: { value: plainBytes(value), proposerId: 0, requestId: null, sessions: (sessions ?? []).map(sessionFromStored) },
  };
}

function sessionFromStored([clientId, sequence, version, applied, value, logPosition]: StoredSession): SessionRecord {
  const result: KeyResult = { applied, version, value: plainBytes(value) };
  return { clientId, sequence, result: logPosition === null ? result : withPosition(result, logPosition) };
}

function sessionToStored(session: SessionRecord): StoredSession {
  const { applied, version, value, logPosition } = session.result as KeyResult & { logPosition?: number };
  return [session.clientId, session.sequence, version, applied, value, logPosition ?? null];
}

/** A KvWriteResult is a KeyResult (the session table and the ring reply carry the extra field). */
function withPosition(result: KeyResult, logPosition: number): KvWriteResult {
  return { ...result, logPosition };
}

function plainBytes(value: Uint8Array | null): Uint8Array | null {
  return value === null ? null : new Uint8Array(value);
}

function toBody(key: KvKey, operation: KeyOperation, requestId?: RequestId): Body {
  const body = operationBody(key, operation);
  if (requestId !== undefined) body.push(requestId.clientId, requestId.timestampMs, requestId.sequence);
  return body;
}

function operationBody(key: KvKey, operation: KeyOperation): Body {
  switch (operation.kind) {
    case 'set':
      return [key, 'set', operation.value, null, operation.ifVersion ?? null, operation.onlyIfAbsent ?? false, operation.onlyIfPresent ?? false];
    case 'delete':
      return [key, 'delete', null, null, operation.ifVersion ?? null, false, false];
    case 'incr':
      return [key, 'incr', null, operation.delta.toString(), null, false, false];
    case 'append':
      return [key, 'append', operation.value, null, null, false, false];
    case 'get':
      throw new PaxosStoreError('INVALID_ARGUMENT', 'a get is not proposed');
  }
}

function requestIdOf(body: Body): RequestId | null {
  if (body.length < 10) return null;
  const [clientId, timestampMs, sequence] = body.slice(7, 10);
  if (typeof clientId !== 'string' || typeof timestampMs !== 'number' || typeof sequence !== 'number') throw new PaxosStoreError('CORRUPTION', 'KV entry request id');
  return { clientId, timestampMs, sequence };
}

function fromBody(body: Body): { key: KvKey; operation: KeyOperation } {
  const [key, kind, value, delta, ifVersion, onlyIfAbsent, onlyIfPresent] = body;
  const bytes = value === null ? null : new Uint8Array(value);
  switch (kind) {
    case 'set':
      return { key, operation: { kind: 'set', value: bytes!, ifVersion: ifVersion ?? undefined, onlyIfAbsent, onlyIfPresent } };
    case 'delete':
      return { key, operation: { kind: 'delete', ifVersion: ifVersion ?? undefined } };
    case 'incr':
      return { key, operation: { kind: 'incr', delta: BigInt(delta!) } };
    case 'append':
      return { key, operation: { kind: 'append', value: bytes! } };
    default:
      throw new PaxosStoreError('CORRUPTION', `unknown KV entry kind ${kind}`);
  }
}

export class KvApplicator implements IApplicator {
  writesApplied = 0;

  /** `position` may be left out by callers that replay entries outside a log (tools): no logPosition then. */
  apply(transaction: Transaction, entry: StackEntry, position?: number): unknown {
    if (entry.body === null || entry.body === undefined) return null; // a control entry of an engine
    const body = entry.body as Body;
    const { key, operation } = fromBody(body);
    const requestId = requestIdOf(body);
    const chosen = readKey(transaction, key);
    if (requestId !== null) {
      const session = lookUpSession(chosen, requestId);
      if (session.kind === 'duplicate') return session.result;
      if (session.kind === 'superseded') {
        throw new PaxosStoreError('PRECONDITION_FAILED', 'a newer request of this client was already applied to this key; the outcome of this one is unknown');
      }
    }
    const evaluation = evaluate(operation, chosen);
    if (evaluation.kind === 'wrongType') throw new PaxosStoreError('WRONG_TYPE', evaluation.message);
    const result = position === undefined ? evaluation.result : withPosition(evaluation.result, position);
    if (evaluation.kind === 'write') {
      if (evaluation.value !== null && evaluation.value.length > KV_VALUE_BYTES_MAX) throw valueTooLarge(evaluation.value.length);
      const sessions = requestId === null ? (chosen.payload?.sessions ?? []) : buildPayload(chosen, evaluation.value, result, 0, requestId, KV_SESSIONS_MAX).sessions;
      const stored = sessions.length === 0 ? [result.version, evaluation.value] : [result.version, evaluation.value, sessions.map(sessionToStored)];
      transaction.put(kvKey(key), packr.pack(stored));
      this.writesApplied++;
    }
    return result;
  }

  postApply(): void {}
}

/** The wrapper (Delos's name for the API half of an application) over the top of a stack. */
export class KvService {
  constructor(private readonly top: IEngine) {}

  /**
   * A write resolves with a KvWriteResult (deduplicated by `requestId` when given); a get is
   * linearizable (it syncs first).
   */
  async execute(key: KvKey, operation: KeyOperation, requestId?: RequestId): Promise<KeyResult> {
    if ((operation.kind === 'set' || operation.kind === 'append') && operation.value.length > KV_VALUE_BYTES_MAX) throw valueTooLarge(operation.value.length);
    if (operation.kind !== 'get') return (await this.top.propose({ headers: {}, body: toBody(key, operation, requestId) })) as KvWriteResult;
    const snapshot = await this.top.sync();
    try {
      return readResult(snapshot, key);
    } finally {
      snapshot.release();
    }
  }
}

export function readResult(view: ReadView, key: KvKey): KeyResult {
  const chosen = readKey(view, key);
  return { applied: true, version: chosen.entryId, value: chosen.payload?.value ?? null };
}
