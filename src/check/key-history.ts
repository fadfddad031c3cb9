/**
 * One key's share of a history, in the form the search takes (search.ts), with the history entry
 * each operation came from; and the two views of it that reports need: the prefix at a time,
 * and the frontier where a partial linearization got stuck.
 */
import type { HistoryOperation } from './history.js';
import { constrainingOutcome } from './model.js';
import type { SearchOperation } from './search.js';

export interface KeyHistory {
  readonly key: string;
  readonly operations: readonly SearchOperation[];
  readonly origins: readonly HistoryOperation[];
}

/**
 * Per-key histories in key order, with the operations that put no constraint left out. A local
 * get may return any state the key had before it returned, so its interval starts at -∞; an
 * operation with unknown outcome may take effect any time after its invocation, so its interval
 * ends at +∞ even when the client gave up at a known time.
 */
export function partitionByKey(history: readonly HistoryOperation[]): KeyHistory[] {
  const byKey = new Map<string, { operations: SearchOperation[]; origins: HistoryOperation[] }>();
  for (const entry of history) {
    const outcome = constrainingOutcome(entry);
    if (outcome === undefined) continue;
    let group = byKey.get(entry.key);
    if (group === undefined) byKey.set(entry.key, (group = { operations: [], origins: [] }));
    const isLocalGet = entry.operation.kind === 'get' && entry.operation.consistency === 'local';
    group.operations.push({
      operation: entry.operation,
      outcome,
      invokeTime: isLocalGet ? Number.NEGATIVE_INFINITY : entry.invokeTime,
      returnTime: outcome.type === 'unknown' ? Number.POSITIVE_INFINITY : entry.returnTime,
    });
    group.origins.push(entry);
  }
  return [...byKey.keys()].sort().map((key) => ({ key, ...byKey.get(key)! }));
}

/**
 * The history as it stood at time `cutTime`: operations that had returned keep their outcome,
 * writes still running become unknown, reads still running and everything invoked later are
 * left out. If the full history is linearizable, so is every such prefix (take its
 * linearization, keep the operations that remain: all dropped ones come after every kept one
 * with a known outcome), so a prefix that is not linearizable proves the violation by `cutTime`.
 */
export function prefixAt(keyHistory: KeyHistory, cutTime: number): KeyHistory {
  const operations: SearchOperation[] = [];
  const origins: HistoryOperation[] = [];
  keyHistory.operations.forEach((operation, index) => {
    const origin = keyHistory.origins[index];
    if (operation.returnTime <= cutTime) {
      operations.push(operation);
    } else if (origin.invokeTime <= cutTime && operation.operation.kind !== 'get') {
      operations.push({ ...operation, outcome: { type: 'unknown' }, returnTime: Number.POSITIVE_INFINITY });
    } else {
      return;
    }
    origins.push(origin);
  });
  return { key: keyHistory.key, operations, origins };
}

/**
 * Where a partial linearization is stuck: the earliest return among the operations with a known
 * outcome not in it (one of them must come next, before anything invoked later), and the
 * operations not in it that were invoked by then, i.e. the candidates for the next place.
 */
export function frontierAfter(keyHistory: KeyHistory, partial: readonly number[]): { returnTime: number; candidates: number[] } {
  const linearized = new Set(partial);
  const remaining = keyHistory.operations.map((_, index) => index).filter((index) => !linearized.has(index));
  let returnTime = Number.POSITIVE_INFINITY;
  for (const index of remaining) {
    const operation = keyHistory.operations[index];
    if (operation.outcome.type !== 'unknown') returnTime = Math.min(returnTime, operation.returnTime);
  }
  const candidates = remaining.filter((index) => keyHistory.operations[index].invokeTime <= returnTime);
  return { returnTime, candidates };
}

/**
 * Operations not in the partial linearization whose ok result reports a version the key has
 * already left (below `version`, or for an applied write, at or below it): they fit nowhere later.
 */
export function frontierPassed(keyHistory: KeyHistory, partial: readonly number[], version: number): number[] {
  const linearized = new Set(partial);
  return keyHistory.operations.flatMap((operation, index) => {
    if (linearized.has(index) || operation.outcome.type !== 'ok') return [];
    const result = operation.outcome.result;
    const pinned = result.applied && operation.operation.kind !== 'get' ? result.version - 1 : result.version;
    return pinned < version ? [index] : [];
  });
}
