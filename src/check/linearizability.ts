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
import { frontierAfter, type KeyHistory, partitionByKey, prefixAt } from './key-history.js';
import { type SearchBudget, searchLinearization } from './search.js';

export { describeViolation } from './describe.js';

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
    const fast = searchLinearization(keyHistory.operations, budgetFromNow(), 'fingerprint');
    const result: CheckResult | undefined =
      fast.type === 'violation'
        ? confirmViolation(keyHistory, fast.partial, budgetFromNow)
        : fast.type === 'unknown'
          ? { verdict: 'unknown', key: keyHistory.key, reason: `${fast.reason} after ${fast.steps} steps on ${keyHistory.operations.length} operations` }
          : undefined;
    if (result?.verdict === 'violation') return result;
    firstUnknown ??= result;
  }
  return firstUnknown ?? { verdict: 'linearizable', keysChecked: keys.length, operationsChecked };
}

/**
 * Turns a violation found with the fingerprint cache into a report: shrinks it to the earliest
 * failing prefix (probes with the fingerprint cache), then confirms that window with the exact
 * cache (and, should that fail, the full history). Undefined when the exact search finds a
 * linearization after all (a fingerprint collision).
 */
/** A failing prefix of a key's history; `earliest` when no earlier prefix fails. */
interface Window {
  readonly window: KeyHistory;
  readonly cutTime: number;
  readonly earliest: boolean;
}

function confirmViolation(keyHistory: KeyHistory, partial: readonly number[], budgetFromNow: () => SearchBudget): CheckResult | undefined {
  const shrunk = shrinkToEarliestViolation(keyHistory, partial, budgetFromNow());
  const full: Window = { window: keyHistory, cutTime: Number.POSITIVE_INFINITY, earliest: false };
  for (const attempt of [shrunk, full]) {
    const exact = searchLinearization(attempt.window.operations, budgetFromNow(), 'exact');
    if (exact.type === 'violation') return reportViolation(keyHistory, attempt, exact.partial);
    if (exact.type === 'unknown') {
      return { verdict: 'unknown', key: keyHistory.key, reason: `a violation was found but could not be confirmed exactly: ${exact.reason}` };
    }
  }
  return undefined;
}

/**
 * The earliest return time at which the prefix is already not linearizable (monotone in time:
 * see prefixAt). The search starts where the partial linearization got stuck, where the answer
 * usually is, gallops away from it and then bisects, all within one time budget; when that runs
 * out the shortest failing prefix found so far is used.
 */
function shrinkToEarliestViolation(keyHistory: KeyHistory, partial: readonly number[], budget: SearchBudget): Window {
  const times = [...new Set(keyHistory.operations.map((operation) => operation.returnTime).filter(Number.isFinite))].sort((a, b) => a - b);
  const failsAt = (index: number): boolean => searchLinearization(prefixAt(keyHistory, times[index]).operations, budget, 'fingerprint').type === 'violation';
  // Invariant: the prefix at `times[failing]` fails (the last one is the full history), the one at `times[passing]` does not.
  let failing = times.length - 1;
  let passing = -1;
  const stuckAt = frontierAfter(keyHistory, partial).returnTime;
  const start = Math.max(0, Math.min(failing, times.findIndex((time) => time >= stuckAt)));
  const outOfTime = (): boolean => performance.now() > budget.deadlineMs;
  if (start < failing && !outOfTime()) {
    if (failsAt(start)) failing = start;
    else passing = start;
  }
  const downward = failing === start;
  for (let stride = 1; !outOfTime(); stride *= 2) {
    const probe = downward ? failing - stride : passing + stride;
    if (probe <= passing || probe >= failing) break;
    const fails = failsAt(probe);
    if (fails) failing = probe;
    else passing = probe;
    if (fails !== downward) break;
  }
  while (failing - passing > 1 && !outOfTime()) {
    const middle = (passing + failing) >>> 1;
    if (failsAt(middle)) failing = middle;
    else passing = middle;
  }
  return { window: prefixAt(keyHistory, times[failing]), cutTime: times[failing], earliest: failing - passing === 1 };
}

function reportViolation(keyHistory: KeyHistory, { window, cutTime, earliest }: Window, partial: readonly number[]): CheckResult {
  const stuck = describeStuckPoint(window, partial);
  const when = Number.isFinite(cutTime)
    ? `The violation is certain by time ${cutTime}${earliest ? ', and not before' : ''}: the ${window.operations.length} operations invoked by then already admit no linearization (writes still running at ${cutTime} are treated as outcome unknown, reads still running are left out).${earliest ? '' : ' (The search for the earliest such time ran out of budget.)'}`
    : 'The shortest failing prefix found could not be confirmed; this is the whole history.';
  const explanation = `key ${JSON.stringify(keyHistory.key)}: no linearization of its ${keyHistory.operations.length} operations exists.\n${when}\n${stuck.text}`;
  return { verdict: 'violation', key: keyHistory.key, explanation, operations: stuck.operations };
}
