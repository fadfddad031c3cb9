/**
 * The proof applicator: the per-key operations of src/api/operations.ts on top of an engine stack.
 * Writes are proposed and evaluated at apply time (consensus/evaluate.ts, the same semantics as
 * the PaxosStore path); reads call `sync` and read the snapshot it returns.
 *
 *   entry body = [key: str, kind: str, value: bin | nil, delta: str | nil, ifVersion: int | nil,
 *                 onlyIfAbsent: bool, onlyIfPresent: bool]
 *   LocalStore key  K/<key>  →  msgpackr [version, value: bin | nil (deleted)]
 */
import { Packr } from 'msgpackr';
import type { KeyOperation, KeyResult } from '../../api/operations.js';
import { evaluate } from '../../consensus/evaluate.js';
import type { ChosenEntry } from '../../consensus/paxos-log.js';
import { PaxosStoreError } from '../../errors.js';
import type { ReadView } from '../../storage/engine.js';
import type { IApplicator, IEngine, StackEntry, Transaction } from '../../engines/types.js';

const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();

type Body = [string, string, Uint8Array | null, string | null, number | null, boolean, boolean];

export function kvKey(key: string): Uint8Array {
  return encoder.encode(`K/${key}`);
}

function readKey(view: { get(key: Uint8Array): Uint8Array | undefined }, key: string): ChosenEntry {
  const stored = view.get(kvKey(key));
  if (stored === undefined) return { entryId: 0, payload: null };
  const [version, value] = packr.unpack(stored) as [number, Uint8Array | null];
  return { entryId: version, payload: { value: value === null ? null : new Uint8Array(value), proposerId: 0, requestId: null, sessions: [] } };
}

function toBody(key: string, operation: KeyOperation): Body {
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

function fromBody(body: Body): { key: string; operation: KeyOperation } {
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

  apply(transaction: Transaction, entry: StackEntry): unknown {
    if (entry.body === null || entry.body === undefined) return null; // a control entry of an engine
    const { key, operation } = fromBody(entry.body as Body);
    const evaluation = evaluate(operation, readKey(transaction, key));
    if (evaluation.kind === 'wrongType') throw new PaxosStoreError('WRONG_TYPE', evaluation.message);
    if (evaluation.kind === 'write') {
      transaction.put(kvKey(key), packr.pack([evaluation.result.version, evaluation.value]));
      this.writesApplied++;
    }
    return evaluation.result;
  }

  postApply(): void {}
}

/** The wrapper (Delos's name for the API half of an application) over the top of a stack. */
export class KvService {
  constructor(private readonly top: IEngine) {}

  async execute(key: string, operation: KeyOperation): Promise<KeyResult> {
    if (operation.kind !== 'get') return (await this.top.propose({ headers: {}, body: toBody(key, operation) })) as KeyResult;
    const snapshot = await this.top.sync();
    try {
      return readResult(snapshot, key);
    } finally {
      snapshot.release();
    }
  }
}

export function readResult(view: ReadView, key: string): KeyResult {
  const chosen = readKey(view, key);
  return { applied: true, version: chosen.entryId, value: chosen.payload?.value ?? null };
}
