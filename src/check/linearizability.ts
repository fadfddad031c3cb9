/**
 * Linearizability checker for per-key histories (issue 3): partitions the history by key
 * (linearizability is compositional, so each key is checked on its own), runs the Wing–Gong/Lowe
 * search of search.ts on each, and for a violation shrinks the history to the earliest time at
 * which the violation is certain, so a human reads a short window instead of thousands of ops.
 *
 * Local-consistency gets (`consistency: 'local'`) may be stale, so they are not checked as
 * linearizable reads but against the weaker rule they do promise: the (value, version) they
 * return is a state the key really had at some point before the get returned. In the search that
 * is a read whose interval starts at -∞ instead of at its invocation.
 */
import { PaxosStoreError } from '../errors.js';
import { describeStuckPoint } from './describe.js';
import { type HistoryOperation, validateHistoryOperation } from './history.js';
import { constrainingOutcome } from './model.js';
import { type SearchBudget, type SearchOperation, type SearchResult, searchLinearization } from './search.js';

export interface CheckOptions {
  /** Time the search may spend on one key before the verdict is 'unknown'. Default 10 s. */
  readonly timeBudgetMs?: number;
  /**
   * Search steps allowed per key (default unlimited). Unlike the time budget this gives the same
   * verdict on every machine, which a simulator that must reproduce a seed wants.
   */
  readonly searchStepsMax?: number;
  /** Estimated memory the cache of visited configurations may use per key. Default 256 MiB. */
  readonly cacheBytesMax?: number;
}

export type CheckResult =
  | { readonly verdict: 'linearizable'; readonly keysChecked: number; readonly operationsChecked: number }
  | { readonly verdict: 'violation'; readonly key: string; readonly explanation: string; readonly operations: readonly HistoryOperation[] }
  | { readonly verdict: 'unknown'; readonly key: string; readonly reason: string };

export const TIME_BUDGET_MS_DEFAULT = 10_000;
export const CACHE_BYTES_MAX_DEFAULT = 256 * 1024 * 1024;

/** The operations of one key that constrain the search, with the history entry each came from. */
export interface KeyHistory {
  readonly key: string;
  readonly operations: readonly SearchOperation[];
  readonly origins: readonly HistoryOperation[];
}

export function checkLinearizability(history: readonly HistoryOperation[], options: CheckOptions = {}): CheckResult {
  const timeBudgetMs = options.timeBudgetMs ?? TIME_BUDGET_MS_DEFAULT;
  const stepsMax = options.searchStepsMax ?? Number.POSITIVE_INFINITY;
  const cacheBytesMax = options.cacheBytesMax ?? CACHE_BYTES_MAX_DEFAULT;
  if (!(timeBudgetMs >= 0) || !(stepsMax > 0) || !(cacheBytesMax > 0)) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'checker budgets must be positive numbers', { timeBudgetMs, stepsMax, cacheBytesMax });
  }
  history.forEach(validateHistoryOperation);
  const budgetFromNow = (): SearchBudget => ({ deadlineMs: performance.now() + timeBudgetMs, stepsMax, cacheBytesMax });

  let firstUnknown: CheckResult | undefined;
  let operationsChecked = 0;
  const keys = partitionByKey(history);
  for (const keyHistory of keys) {
    operationsChecked += keyHistory.operations.length;
    const result = searchLinearization(keyHistory.operations, budgetFromNow());
    if (result.type === 'violation') return explainViolation(keyHistory, result, budgetFromNow());
    if (result.type === 'unknown' && firstUnknown === undefined) {
      firstUnknown = { verdict: 'unknown', key: keyHistory.key, reason: `${result.reason} after ${result.steps} steps on ${keyHistory.operations.length} operations` };
    }
  }
  return firstUnknown ?? { verdict: 'linearizable', keysChecked: keys.length, operationsChecked };
}

/** Per-key histories in key order, with the operations that put no constraint left out. */
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
 * Binary search for the earliest return time at which the prefix is already not linearizable
 * (monotone: see prefixAt), within one time budget; falls back to the full history.
 */
function shrinkToEarliestViolation(
  keyHistory: KeyHistory,
  fullResult: SearchResult & { type: 'violation' },
  budget: SearchBudget,
): { window: KeyHistory; partial: readonly number[]; cutTime: number } {
  const returnTimes = [...new Set(keyHistory.operations.map((operation) => operation.returnTime).filter(Number.isFinite))].sort((a, b) => a - b);
  let found = { window: keyHistory, partial: fullResult.partial, cutTime: Number.POSITIVE_INFINITY };
  let low = 0;
  let high = returnTimes.length - 1;
  while (low <= high && performance.now() < budget.deadlineMs) {
    const middle = (low + high) >>> 1;
    const window = prefixAt(keyHistory, returnTimes[middle]);
    const result = searchLinearization(window.operations, budget);
    if (result.type === 'violation') {
      found = { window, partial: result.partial, cutTime: returnTimes[middle] };
      high = middle - 1;
    } else {
      low = middle + 1;
    }
  }
  return found;
}

function explainViolation(keyHistory: KeyHistory, fullResult: SearchResult & { type: 'violation' }, budget: SearchBudget): CheckResult {
  const { window, partial, cutTime } = shrinkToEarliestViolation(keyHistory, fullResult, budget);
  const stuck = describeStuckPoint(window, partial);
  const when = Number.isFinite(cutTime)
    ? `The violation is certain by time ${cutTime}: the ${window.operations.length} operations invoked by then already admit no linearization (writes still running at ${cutTime} are treated as outcome unknown, reads still running are left out).`
    : `No shorter prefix of the history could be shown to fail within the budget.`;
  const explanation = `key ${JSON.stringify(keyHistory.key)}: no linearization of its ${keyHistory.operations.length} operations exists.\n${when}\n${stuck.text}`;
  return { verdict: 'violation', key: keyHistory.key, explanation, operations: stuck.operations };
}
