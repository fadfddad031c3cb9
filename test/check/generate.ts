/**
 * Test helpers: hand-written history entries, random histories that are linearizable by
 * construction (a sequential run of the model with intervals jittered around the linearization
 * points), and an exhaustive reference checker for tiny histories.
 */
import type { KeyOperation, KeyResult } from '../../src/api/operations.js';
import type { HistoryOperation, Outcome } from '../../src/check/history.js';
import { applyOperation, INITIAL_STATE, type RegisterState, step } from '../../src/check/model.js';
import type { Random } from '../../src/util/random.js';

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

export const ok = (applied: boolean, version: number, value: string | null): Outcome => ({
  type: 'ok',
  result: { applied, version, value: value === null ? null : bytes(value) },
});
export const unknown: Outcome = { type: 'unknown' };
export const wrongType: Outcome = { type: 'error', code: 'WRONG_TYPE' };

export const get: KeyOperation = { kind: 'get', consistency: 'linearizable' };
export const getLocal: KeyOperation = { kind: 'get', consistency: 'local' };
export const set = (value: string, conditions: { ifVersion?: number; onlyIfAbsent?: boolean; onlyIfPresent?: boolean } = {}): KeyOperation => ({
  kind: 'set',
  value: bytes(value),
  ...conditions,
});
export const del = (ifVersion?: number): KeyOperation => (ifVersion === undefined ? { kind: 'delete' } : { kind: 'delete', ifVersion });
export const incr = (delta: number): KeyOperation => ({ kind: 'incr', delta: BigInt(delta) });
export const append = (value: string): KeyOperation => ({ kind: 'append', value: bytes(value) });

/** One history entry on key "k" (or `key`). */
export function entry(clientId: string, invokeTime: number, returnTime: number, operation: KeyOperation, outcome: Outcome, key = 'k'): HistoryOperation {
  return { clientId, key, operation, invokeTime, returnTime, outcome };
}

/** A sequential history: entry i runs over [10i, 10i + 5]. */
export function sequential(steps: ReadonlyArray<readonly [KeyOperation, Outcome]>): HistoryOperation[] {
  return steps.map(([operation, outcome], i) => entry(`c${i % 3}`, 10 * i, 10 * i + 5, operation, outcome));
}

const VALUES = ['a', 'b', 'c', '7', '-3', '12', ''];

function randomOperation(random: Random, state: RegisterState): KeyOperation {
  const nearVersion = (): number => Math.max(0, state.version + random.range(-1, 1));
  switch (random.int(8)) {
    case 0:
    case 1:
      return random.chance(0.25) ? getLocal : get;
    case 2:
      return set(random.pick(VALUES));
    case 3: {
      const conditions = random.pick([{ ifVersion: nearVersion() }, { onlyIfAbsent: true }, { onlyIfPresent: true }]);
      return set(random.pick(VALUES), conditions);
    }
    case 4:
      return del(random.chance(0.5) ? nearVersion() : undefined);
    case 5:
    case 6:
      return incr(random.range(-5, 5));
    default:
      return append(random.pick(VALUES));
  }
}

export interface GeneratedHistory {
  readonly history: HistoryOperation[];
  /** Highest version any key reached. */
  readonly versionMax: number;
}

/**
 * Runs random operations against the model one at a time (operation i takes effect at time
 * 10i), then widens each interval around its point by up to `jitter` ticks on each side: the
 * points are a linearization, so the history is linearizable. Some writes get an unknown outcome
 * (half of them took effect, half did not); local gets return a random earlier state.
 */
export function randomLinearizableHistory(random: Random, options: { operations: number; keys: number; jitter: number; unknownProbability: number }): GeneratedHistory {
  const states = new Map<string, RegisterState[]>();
  const history: HistoryOperation[] = [];
  let versionMax = 0;
  for (let i = 0; i < options.operations; i++) {
    const key = `k${random.int(options.keys)}`;
    const past = states.get(key) ?? [INITIAL_STATE];
    states.set(key, past);
    const state = past[past.length - 1];
    const operation = randomOperation(random, state);
    const expected = applyOperation(state, operation);
    let outcome: Outcome;
    if (operation.kind === 'get' && operation.consistency === 'local') {
      const seen = random.pick(past);
      outcome = { type: 'ok', result: { applied: true, version: seen.version, value: seen.value } };
    } else if (operation.kind !== 'get' && random.chance(options.unknownProbability)) {
      outcome = unknown;
      if (expected.type === 'ok' && random.chance(0.5)) past.push(expected.next);
    } else {
      outcome = expected.type === 'ok' ? { type: 'ok', result: expected.result } : wrongType;
      if (expected.type === 'ok' && expected.next !== state) past.push(expected.next);
    }
    versionMax = Math.max(versionMax, past[past.length - 1].version);
    const point = 10 * i;
    const invokeTime = point - random.int(options.jitter + 1);
    const returnTime = outcome.type === 'unknown' && random.chance(0.5) ? Number.POSITIVE_INFINITY : point + 1 + random.int(options.jitter + 1);
    history.push({ clientId: `c${i}`, key, operation, invokeTime, returnTime, outcome });
  }
  return { history, versionMax };
}

/** Replaces one entry's result (a copy of the history). */
export function withResult(history: readonly HistoryOperation[], index: number, change: (result: KeyResult) => KeyResult): HistoryOperation[] {
  const copy = [...history];
  const original = copy[index];
  if (original.outcome.type !== 'ok') throw new Error('withResult needs an ok outcome');
  copy[index] = { ...original, outcome: { type: 'ok', result: change(original.outcome.result) } };
  return copy;
}

/**
 * The definition, checked by brute force: some order of the operations (each unknown one placed
 * anywhere after its invocation or left out, each local get anywhere before its return) respects
 * real time and replays on the model. Single key; the only pruning is remembering dead
 * (placed set, state) pairs, so it handles up to ~16 operations.
 */
export function bruteForceLinearizable(history: readonly HistoryOperation[]): boolean {
  const operations = history.filter((op) => !(op.operation.kind === 'get' && op.outcome.type === 'unknown'));
  const isOptional = operations.map((op) => op.outcome.type === 'unknown');
  const effectiveInvoke = (op: HistoryOperation): number => (op.operation.kind === 'get' && op.operation.consistency === 'local' ? -Infinity : op.invokeTime);
  const effectiveReturn = (op: HistoryOperation): number => (op.outcome.type === 'unknown' ? Infinity : op.returnTime);
  const mustPrecede = operations.map((b) => operations.map((a) => effectiveReturn(a) < effectiveInvoke(b)));
  const placed = operations.map(() => false);
  const dead = new Set<string>();
  const explore = (state: RegisterState): boolean => {
    if (operations.every((_, i) => placed[i] || isOptional[i])) return true;
    const configuration = `${placed.map(Number).join('')}:${state.version}:${state.value === null ? '-' : Buffer.from(state.value).toString('hex')}`;
    if (dead.has(configuration)) return false;
    for (let b = 0; b < operations.length; b++) {
      if (placed[b] || mustPrecede[b].some((before, a) => before && !placed[a])) continue;
      const next = step(state, operations[b].operation, operations[b].outcome);
      if (next === undefined) continue;
      placed[b] = true;
      const found = explore(next);
      placed[b] = false;
      if (found) return true;
    }
    dead.add(configuration);
    return false;
  };
  return explore(INITIAL_STATE);
}
