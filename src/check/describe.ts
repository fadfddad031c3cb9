/**
 * Human-readable text for checker verdicts: operations, outcomes, states, and the point where
 * the search got stuck (the longest partial linearization and why no remaining operation fits
 * after it). Formatting only; no search happens here.
 */
import type { KeyOperation } from '../api/operations.js';
import { assert } from '../util/assert.js';
import type { HistoryOperation, Outcome } from './history.js';
import { frontierAfter, frontierPassed, type KeyHistory } from './key-history.js';
import type { CheckResult } from './linearizability.js';
import type { SearchOperation } from './search.js';
import { applyOperation, type Expectation, INITIAL_STATE, type RegisterState, step } from './model.js';

const VALUE_PREVIEW_BYTES_MAX = 32;
/** Operations of the partial linearization shown before the stuck point. */
const CONTEXT_OPERATIONS_MAX = 8;
/** Writes with unknown outcome shown among the candidates at the stuck point (the latest ones). */
const UNKNOWN_CANDIDATES_SHOWN_MAX = 6;

export function formatValue(value: Uint8Array | null): string {
  if (value === null) return 'null';
  const shown = value.subarray(0, VALUE_PREVIEW_BYTES_MAX);
  const printable = shown.every((byte) => byte >= 0x20 && byte < 0x7f);
  const text = printable ? JSON.stringify(String.fromCharCode(...shown)) : `0x${Buffer.from(shown).toString('hex')}`;
  return value.length > shown.length ? `${text}…(${value.length} bytes)` : text;
}

export function formatOperation(operation: KeyOperation): string {
  switch (operation.kind) {
    case 'get':
      return operation.consistency === 'local' ? 'get(local)' : 'get';
    case 'set': {
      const conditions = [
        operation.ifVersion !== undefined ? ` ifVersion=${operation.ifVersion}` : '',
        operation.onlyIfAbsent === true ? ' NX' : '',
        operation.onlyIfPresent === true ? ' XX' : '',
      ];
      return `set ${formatValue(operation.value)}${conditions.join('')}`;
    }
    case 'delete':
      return operation.ifVersion !== undefined ? `delete ifVersion=${operation.ifVersion}` : 'delete';
    case 'incr':
      return `incr ${operation.delta >= 0n ? '+' : ''}${operation.delta}`;
    case 'append':
      return `append ${formatValue(operation.value)}`;
  }
}

export function formatOutcome(outcome: Outcome | Expectation): string {
  switch (outcome.type) {
    case 'ok': {
      const { applied, version, value } = outcome.result;
      return `ok ${applied ? 'applied' : 'not applied'} v${version} ${formatValue(value)}`;
    }
    case 'error':
      return `error ${outcome.code}`;
    case 'unknown':
      return 'unknown';
  }
}

export function formatState(state: RegisterState): string {
  return `(v${state.version}, ${formatValue(state.value)})`;
}

export function formatHistoryOperation(entry: HistoryOperation): string {
  const end = Number.isFinite(entry.returnTime) ? String(entry.returnTime) : '∞';
  return `[${entry.invokeTime}..${end}] ${entry.clientId}: ${formatOperation(entry.operation)} → ${formatOutcome(entry.outcome)}`;
}

/**
 * Text for the point where the longest partial linearization of `window` ends: the last few
 * operations linearized, the state there, and for every operation that could come next why it
 * cannot. `operations` is that context plus those candidates, in invocation order.
 */
export function describeStuckPoint(window: KeyHistory, partial: readonly number[]): { text: string; operations: HistoryOperation[] } {
  const lines: string[] = [];
  let state = INITIAL_STATE;
  const states: RegisterState[] = [];
  for (const index of partial) {
    const operation = window.operations[index];
    const next = step(state, operation.operation, operation.outcome);
    assert(next !== undefined, 'a partial linearization found by the search replays on the model');
    states.push((state = next));
  }
  const contextStart = Math.max(0, partial.length - CONTEXT_OPERATIONS_MAX);
  lines.push(`Longest partial linearization: ${partial.length} operations${contextStart > 0 ? `; the last ${partial.length - contextStart}` : ''}:`);
  if (partial.length === 0) lines.push(`  (none: not even the first operation fits the initial state ${formatState(INITIAL_STATE)})`);
  if (new Set(partial).size < partial.length) {
    lines.push('  (a write with unknown outcome may appear more than once: the pass that proved the violation let them take effect repeatedly, which only allows more)');
  }
  for (let position = contextStart; position < partial.length; position++) {
    lines.push(`  ${formatHistoryOperation(window.origins[partial[position]])}   ⇒ ${formatState(states[position])}`);
  }

  const { returnTime, candidates } = frontierAfter(window, partial);
  const known = candidates.filter((index) => window.operations[index].outcome.type !== 'unknown');
  // Unknown writes that would change nothing here are no part of the story; of the others, the
  // latest few are shown (a long history can have hundreds pending).
  const effective = candidates.filter((index) => {
    const { operation, outcome } = window.operations[index];
    return outcome.type === 'unknown' && step(state, operation, outcome) !== state;
  });
  const unknownShown = effective.slice(-UNKNOWN_CANDIDATES_SHOWN_MAX);
  const relevant = [...unknownShown, ...known];
  lines.push(`At state ${formatState(state)} none of the operations that may come next fits (an operation that returned at ${returnTime} must come before anything invoked later):`);
  for (const index of relevant) {
    lines.push(`  ${formatHistoryOperation(window.origins[index])}: ${whyNotNext(state, window.operations[index], window.origins[index])}`);
  }
  // Operations that saw a version the key has already left can never be linearized.
  const passed = frontierPassed(window, partial, state.version).filter((index) => !candidates.includes(index));
  for (const index of passed) {
    const version = (window.operations[index].outcome as Outcome & { type: 'ok' }).result.version;
    lines.push(`  ${formatHistoryOperation(window.origins[index])}: can never come: it reports version ${version}, the key is already at ${state.version} and versions never go back`);
  }
  relevant.push(...passed);
  const omitted = effective.length - unknownShown.length;
  if (omitted > 0) lines.push(`  (and ${omitted} earlier writes with unknown outcome that could take effect here, none leading to a linearization)`);
  const inert = candidates.length - known.length - effective.length;
  if (inert > 0) lines.push(`  (and ${inert} writes with unknown outcome that would have no effect here)`);
  const shown = [...partial.slice(contextStart), ...relevant].map((index) => window.origins[index]);
  shown.sort((a, b) => a.invokeTime - b.invokeTime);
  return { text: lines.join('\n'), operations: shown };
}

function whyNotNext(state: RegisterState, searched: SearchOperation, origin: HistoryOperation): string {
  const { operation, outcome } = searched;
  const next = step(state, operation, outcome);
  if (next === undefined) return `the specification gives ${formatOutcome(applyOperation(state, operation))} here`;
  if (outcome.type !== 'unknown') return 'fits here, but no linearization continues after it';
  const why = origin.outcome.type === 'unknown' ? 'outcome unknown' : 'still running at the cut, so outcome unknown';
  return `${why}; taking effect here leads to no linearization`;
}

/** A readable report of any verdict; for a violation, the explanation and the failing window. */
export function describeViolation(result: CheckResult): string {
  switch (result.verdict) {
    case 'linearizable':
      return `linearizable: ${result.keysChecked} keys, ${result.operationsChecked} operations checked`;
    case 'unknown':
      return `unknown: key ${JSON.stringify(result.key)}: ${result.reason}`;
    case 'violation':
      return [
        `NOT linearizable: ${result.explanation}`,
        `Failing window (${result.operations.length} operations, by invocation time):`,
        ...result.operations.map((entry) => `  ${formatHistoryOperation(entry)}`),
      ].join('\n');
  }
}
