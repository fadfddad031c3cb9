import { describe, expect, it } from 'vitest';
import type { HistoryOperation } from '../../src/check/history.js';
import { type CheckResult, checkLinearizability } from '../../src/check/linearizability.js';
import { describeViolation } from '../../src/check/describe.js';
import { partitionByKey, prefixAt } from '../../src/check/key-history.js';
import { applyOperation, INITIAL_STATE, makeState, step } from '../../src/check/model.js';
import { searchLinearization } from '../../src/check/search.js';
import { Random } from '../../src/util/random.js';
import {
  append,
  bruteForceLinearizable,
  bytes,
  del,
  entry,
  get,
  getLocal,
  incr,
  ok,
  randomLinearizableHistory,
  sequential,
  set,
  unknown,
  withResult,
  wrongType,
} from './generate.js';

const verdict = (history: readonly HistoryOperation[]): CheckResult['verdict'] => checkLinearizability(history).verdict;

describe('model', () => {
  it('follows the semantics of operations.ts', () => {
    const absent = INITIAL_STATE;
    const a1 = makeState(bytes('a'), 1);
    expect(applyOperation(absent, set('a'))).toMatchObject({ result: { applied: true, version: 1, value: null }, next: a1 });
    expect(applyOperation(a1, set('b', { ifVersion: 0 }))).toMatchObject({ result: { applied: false, version: 1, value: bytes('a') } });
    expect(applyOperation(a1, set('b', { onlyIfAbsent: true })).type === 'ok' && applyOperation(a1, set('b', { onlyIfAbsent: true }))).toMatchObject({ result: { applied: false } });
    expect(applyOperation(absent, set('b', { onlyIfPresent: true }))).toMatchObject({ result: { applied: false, version: 0, value: null } });
    expect(applyOperation(absent, del())).toMatchObject({ result: { applied: false, version: 0, value: null } });
    expect(applyOperation(a1, del())).toMatchObject({ result: { applied: true, version: 2, value: bytes('a') }, next: makeState(null, 2) });
    expect(applyOperation(makeState(null, 2), incr(5))).toMatchObject({ result: { applied: true, version: 3, value: bytes('5') } });
    expect(applyOperation(makeState(bytes('-2'), 4), incr(-3))).toMatchObject({ result: { value: bytes('-5'), version: 5 } });
    expect(applyOperation(a1, incr(1))).toEqual({ type: 'error', code: 'WRONG_TYPE' });
    expect(applyOperation(makeState(bytes('9223372036854775807'), 1), incr(1))).toEqual({ type: 'error', code: 'WRONG_TYPE' });
    expect(applyOperation(a1, append('bc'))).toMatchObject({ result: { applied: true, version: 2, value: bytes('abc') } });
    expect(applyOperation(makeState(null, 3), append('x'))).toMatchObject({ result: { version: 4, value: bytes('x') } });
  });
  it('steps: results must match, unknown writes take effect, WRONG_TYPE only on non-integers', () => {
    const a1 = makeState(bytes('a'), 1);
    expect(step(a1, get, ok(true, 1, 'a'))).toBe(a1);
    expect(step(a1, get, ok(true, 1, 'b'))).toBeUndefined();
    expect(step(a1, get, ok(true, 2, 'a'))).toBeUndefined();
    expect(step(a1, set('b'), ok(false, 2, 'a'))).toBeUndefined();
    expect(step(a1, set('b'), unknown)).toMatchObject({ version: 2, value: bytes('b') });
    expect(step(a1, incr(1), wrongType)).toBe(a1);
    expect(step(makeState(bytes('1'), 1), incr(1), wrongType)).toBeUndefined();
    expect(step(a1, incr(1), unknown)).toBe(a1);
    expect(step(a1, set('b'), { type: 'error', code: 'TIMEOUT' })).toMatchObject({ version: 2 });
  });
});

describe('known-linearizable histories', () => {
  it('accepts a sequential history of every kind of operation', () => {
    const history = sequential([
      [get, ok(true, 0, null)],
      [set('a'), ok(true, 1, null)],
      [get, ok(true, 1, 'a')],
      [set('b', { onlyIfAbsent: true }), ok(false, 1, 'a')],
      [set('b', { ifVersion: 1 }), ok(true, 2, 'a')],
      [del(), ok(true, 3, 'b')],
      [get, ok(true, 3, null)],
      [del(), ok(false, 3, null)],
      [incr(5), ok(true, 4, '5')],
      [append('x'), ok(true, 5, '5x')],
      [incr(1), wrongType],
      [get, ok(true, 5, '5x')],
    ]);
    expect(verdict(history)).toBe('linearizable');
  });
  it('accepts concurrent writes observed in either order', () => {
    const history = [
      entry('c1', 0, 10, set('a'), ok(true, 2, 'b')),
      entry('c2', 1, 11, set('b'), ok(true, 1, null)),
      entry('c3', 2, 3, get, ok(true, 0, null)),
      entry('c4', 5, 12, get, ok(true, 1, 'b')),
      entry('c3', 13, 14, get, ok(true, 2, 'a')),
    ];
    expect(verdict(history)).toBe('linearizable');
  });
  it('accepts one CAS winning and one losing on the same version', () => {
    const history = [
      entry('c1', 0, 10, set('x', { ifVersion: 0 }), ok(true, 1, null)),
      entry('c2', 1, 11, set('y', { ifVersion: 0 }), ok(false, 1, 'x')),
      entry('c3', 12, 13, get, ok(true, 1, 'x')),
    ];
    expect(verdict(history)).toBe('linearizable');
  });
  it('accepts concurrent increments and appends in some order', () => {
    const history = [
      entry('c1', 0, 10, incr(1), ok(true, 2, '3')),
      entry('c2', 0, 10, incr(2), ok(true, 1, '2')),
      entry('c3', 11, 20, append('a'), ok(true, 3, '3a')),
      entry('c4', 12, 19, incr(1), wrongType),
      entry('c5', 12, 21, append('b'), ok(true, 4, '3ab')),
    ];
    expect(verdict(history)).toBe('linearizable');
  });
  it('accepts unknown writes that took effect, even after the client gave up, and ones that never did', () => {
    const tookEffectLate = [
      entry('c1', 0, 5, set('a'), unknown),
      entry('c2', 10, 11, get, ok(true, 0, null)),
      entry('c2', 20, 21, get, ok(true, 1, 'a')),
    ];
    expect(verdict(tookEffectLate)).toBe('linearizable');
    const neverTookEffect = [
      entry('c1', 0, Number.POSITIVE_INFINITY, set('a'), unknown),
      entry('c1', 1, 5, incr(1), { type: 'error', code: 'NO_QUORUM' }),
      entry('c2', 10, 11, set('b'), ok(true, 1, null)),
      entry('c2', 20, 21, get, ok(true, 1, 'b')),
      entry('c3', 22, Number.POSITIVE_INFINITY, get, unknown),
    ];
    expect(verdict(neverTookEffect)).toBe('linearizable');
  });
  it('accepts tombstones that bump the version and conditional writes against them', () => {
    const history = sequential([
      [set('a'), ok(true, 1, null)],
      [del(), ok(true, 2, 'a')],
      [get, ok(true, 2, null)],
      [set('b', { onlyIfPresent: true }), ok(false, 2, null)],
      [del(1), ok(false, 2, null)],
      [set('b', { onlyIfAbsent: true }), ok(true, 3, null)],
      [del(2), ok(false, 3, 'b')],
      [del(3), ok(true, 4, 'b')],
    ]);
    expect(verdict(history)).toBe('linearizable');
  });
  it('accepts a stale local get but not a local get of a state that never existed', () => {
    const writes = [entry('c1', 0, 1, set('a'), ok(true, 1, null)), entry('c1', 2, 3, set('b'), ok(true, 2, 'a'))];
    expect(verdict([...writes, entry('c2', 10, 11, getLocal, ok(true, 1, 'a'))])).toBe('linearizable');
    expect(verdict([...writes, entry('c2', 10, 11, getLocal, ok(true, 1, 'b'))])).toBe('violation');
    // A local get cannot see the future: the write started after it returned.
    expect(verdict([entry('c2', 0, 1, getLocal, ok(true, 1, 'a')), entry('c1', 2, 3, set('a'), ok(true, 1, null))])).toBe('violation');
  });
  it('counts an operation invoked at the tick another returns as concurrent with it', () => {
    expect(verdict([entry('c2', 0, 10, get, ok(true, 1, 'a')), entry('c1', 10, 20, set('a'), ok(true, 1, null))])).toBe('linearizable');
    expect(verdict([entry('c2', 0, 10, get, ok(true, 1, 'a')), entry('c1', 10, Number.POSITIVE_INFINITY, set('a'), unknown)])).toBe('linearizable');
    expect(verdict([entry('c2', 0, 10, get, ok(true, 1, 'a')), entry('c1', 11, 20, set('a'), ok(true, 1, null))])).toBe('violation');
  });
  it('checks keys independently and counts them', () => {
    const history = [entry('c1', 0, 1, set('a'), ok(true, 1, null), 'x'), entry('c1', 2, 3, get, ok(true, 0, null), 'y')];
    expect(checkLinearizability(history)).toEqual({ verdict: 'linearizable', keysChecked: 2, operationsChecked: 2 });
  });
});

describe('known-violating histories', () => {
  const violates = (history: readonly HistoryOperation[]): CheckResult & { verdict: 'violation' } => {
    const result = checkLinearizability(history);
    expect(result.verdict).toBe('violation');
    return result as CheckResult & { verdict: 'violation' };
  };
  it('rejects a stale read after a completed write', () => {
    const result = violates([
      entry('c1', 0, 1, set('a'), ok(true, 1, null)),
      entry('c1', 2, 3, set('b'), ok(true, 2, 'a')),
      entry('c2', 4, 5, get, ok(true, 1, 'a')),
    ]);
    expect(result.explanation).toContain('get → ok applied v1 "a"');
    expect(result.explanation).toContain('the specification gives ok applied v2 "b"');
    expect(result.operations.map((op) => op.invokeTime)).toContain(4);
  });
  it('rejects a version going backwards', () => {
    violates([
      entry('c1', 0, 10, set('a'), ok(true, 1, null)),
      entry('c2', 0, 10, set('b'), ok(true, 2, 'a')),
      entry('c3', 11, 12, get, ok(true, 2, 'b')),
      entry('c3', 13, 14, get, ok(true, 1, 'a')),
    ]);
  });
  it('rejects two CAS succeeding on the same version', () => {
    violates([entry('c1', 0, 10, set('x', { ifVersion: 0 }), ok(true, 1, null)), entry('c2', 1, 11, set('y', { ifVersion: 0 }), ok(true, 2, 'x'))]);
  });
  it('rejects a lost increment', () => {
    violates([entry('c1', 0, 10, incr(1), ok(true, 1, '1')), entry('c2', 1, 11, incr(1), ok(true, 1, '1'))]);
    violates([
      entry('c1', 0, 10, incr(1), ok(true, 1, '1')),
      entry('c2', 1, 11, incr(1), ok(true, 2, '2')),
      entry('c3', 12, 13, get, ok(true, 2, '1')),
    ]);
  });
  it('rejects a read of a value never written', () => {
    violates([entry('c1', 0, 10, set('a'), ok(true, 1, null)), entry('c2', 1, 11, get, ok(true, 1, 'zzz'))]);
  });
  it('rejects a write whose result claims a version skip', () => {
    violates(sequential([[set('a'), ok(true, 2, null)]]));
  });
  it('rejects wrong WRONG_TYPE errors and wrong applied flags', () => {
    violates(sequential([[set('5'), ok(true, 1, null)], [incr(1), wrongType]]));
    violates(sequential([[set('five'), ok(true, 1, null)], [incr(1), ok(true, 2, '6')]]));
    violates(sequential([[del(), ok(true, 1, null)]]));
    violates(sequential([[set('a', { onlyIfPresent: true }), ok(true, 1, null)]]));
  });
  it('needs the exact pass when the relaxed one reuses an unknown write', () => {
    // The relaxed pass fills both version gaps with the increment; exactly, the append must fill one.
    const twoGaps = [
      entry('c1', 0, Number.POSITIVE_INFINITY, incr(1), unknown),
      entry('c3', 1, Number.POSITIVE_INFINITY, append('x'), unknown),
      entry('c2', 10, 11, get, ok(true, 1, '1')),
      entry('c2', 20, 21, get, ok(true, 2, '2')),
    ];
    violates(twoGaps);
    expect(verdict(withResult(twoGaps, 3, (r) => ({ ...r, value: bytes('1x') })))).toBe('linearizable');
  });
  it('rejects an unknown write taking effect twice (a retry that was not deduplicated)', () => {
    const history = [
      entry('c1', 0, Number.POSITIVE_INFINITY, incr(1), unknown),
      entry('c2', 10, 11, get, ok(true, 1, '1')),
      entry('c2', 20, 21, get, ok(true, 2, '2')),
    ];
    violates(history);
    // With a second, identical unknown increment the same observations are fine.
    expect(verdict([...history, entry('c3', 1, Number.POSITIVE_INFINITY, incr(1), unknown)])).toBe('linearizable');
  });
  it('rejects an unknown write observed before it was invoked', () => {
    violates([entry('c2', 0, 1, get, ok(true, 1, 'a')), entry('c1', 2, Number.POSITIVE_INFINITY, set('a'), unknown)]);
  });
  it('cuts the window without losing writes still running at the cut', () => {
    // The set is still running at time 20, when the get has already seen its effect.
    const result = violates([
      entry('c1', 0, 100, set('a'), ok(true, 1, null)),
      entry('c2', 10, 20, get, ok(true, 1, 'a')),
      entry('c2', 30, 40, get, ok(true, 1, 'a')),
      entry('c3', 200, 201, get, ok(true, 0, null)),
    ]);
    expect(result.explanation).toContain('certain by time 201, and not before');
    expect(result.operations.map((op) => op.invokeTime)).toContain(200);
  });
  it('shrinks the report to the earliest failing window', () => {
    const prefix = randomLinearizableHistory(new Random(11), { operations: 300, keys: 1, jitter: 20, unknownProbability: 0 }).history;
    const last = prefix[prefix.length - 1].returnTime;
    const history = [
      ...prefix,
      entry('c1', last + 10, last + 11, set('p'), ok(true, 1000, null), 'k0'),
      ...prefix.map((op) => ({ ...op, invokeTime: op.invokeTime + last + 100, returnTime: op.returnTime + last + 100, key: 'other' })),
    ];
    const result = violates(history);
    expect(result.key).toBe('k0');
    expect(result.explanation).toContain(`certain by time ${last + 11}`);
    expect(result.operations.length).toBeLessThanOrEqual(12);
    expect(result.operations.some((op) => op.invokeTime === last + 10)).toBe(true);
    const text = describeViolation(result);
    expect(text).toContain('NOT linearizable');
    expect(text).toContain('set "p" → ok applied v1000 null');
  });
});

describe('per-key histories', () => {
  it('widens local gets and unknown outcomes and drops operations that constrain nothing', () => {
    const [k] = partitionByKey([
      entry('c1', 5, 6, getLocal, ok(true, 0, null)),
      entry('c1', 7, 9, set('a'), { type: 'error', code: 'TIMEOUT' }),
      entry('c1', 10, 12, get, unknown),
      entry('c1', 13, 14, set('b'), { type: 'error', code: 'VALUE_TOO_LARGE' }),
      entry('c1', 15, 16, incr(1), wrongType),
    ]);
    expect(k.operations.map((op) => [op.invokeTime, op.returnTime, op.outcome.type])).toEqual([
      [Number.NEGATIVE_INFINITY, 6, 'ok'],
      [7, Number.POSITIVE_INFINITY, 'unknown'],
      [15, 16, 'error'],
    ]);
  });
  it('cuts a prefix: returned operations kept, running writes unknown, running reads and later operations dropped', () => {
    const [k] = partitionByKey([
      entry('c1', 0, 100, set('a'), ok(true, 1, null)),
      entry('c2', 10, 20, get, ok(true, 1, 'a')),
      entry('c3', 15, 30, get, ok(true, 1, 'a')),
      entry('c4', 25, 26, set('b'), ok(true, 2, 'a')),
    ]);
    const prefix = prefixAt(k, 20);
    expect(prefix.origins.map((op) => op.clientId)).toEqual(['c1', 'c2']);
    expect(prefix.operations.map((op) => [op.outcome.type, op.returnTime])).toEqual([
      ['unknown', Number.POSITIVE_INFINITY],
      ['ok', 20],
    ]);
    expect(searchLinearization(prefix.operations, { deadlineMs: Number.POSITIVE_INFINITY, stepsMax: 1000, cacheBytesMax: 1e6 }, 'exact').type).toBe('linearizable');
  });
});

describe('budgets and input validation', () => {
  it('answers unknown when the budget runs out', () => {
    // Twelve unknown appends and a read nobody could produce: the search has to try every order.
    const history = [
      ...Array.from({ length: 12 }, (_, i) => entry(`c${i}`, i, Number.POSITIVE_INFINITY, append(String.fromCharCode(97 + i)), unknown)),
      entry('r', 100, 101, get, ok(true, 12, 'impossible')),
    ];
    const started = performance.now();
    const result = checkLinearizability(history, { timeBudgetMs: 100 });
    expect(result.verdict).toBe('unknown');
    expect(performance.now() - started).toBeLessThan(2_000);
    expect(checkLinearizability(history, { searchStepsMax: 500 })).toMatchObject({ verdict: 'unknown', key: 'k', reason: expect.stringContaining('500') });
  });
  it('rejects malformed histories with INVALID_ARGUMENT', () => {
    const bad = (history: HistoryOperation[]): void => {
      expect(() => checkLinearizability(history)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    };
    bad([entry('c', 5, 5, get, ok(true, 0, null))]);
    bad([entry('c', 0, Number.POSITIVE_INFINITY, get, ok(true, 0, null))]);
    bad([{ ...entry('c', 0, 1, get, ok(true, 0, null)), outcome: { type: 'ok', result: { applied: true, version: -1, value: null } } }]);
    bad([entry('c', 0, 1, { kind: 'incr', delta: 1 as unknown as bigint }, ok(true, 1, '1'))]);
    expect(() => checkLinearizability([], { timeBudgetMs: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
  });
});

describe('randomized', () => {
  it('accepts jittered runs of the model and rejects them with an unreachable version', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const random = new Random(seed);
      const { history, versionMax } = randomLinearizableHistory(random, { operations: 60, keys: 2, jitter: 30, unknownProbability: 0.1 });
      const result = checkLinearizability(history);
      expect(result.verdict, `seed ${seed}: ${describeViolation(result)}`).toBe('linearizable');

      const definite = history.map((op, index) => (op.outcome.type === 'ok' ? index : -1)).filter((index) => index >= 0);
      const victim = random.pick(definite);
      const skipped = withResult(history, victim, (r) => ({ ...r, version: versionMax + 1 + random.int(3) }));
      expect(verdict(skipped), `seed ${seed}, operation ${victim}`).toBe('violation');
      const reads = definite.filter((index) => history[index].operation.kind === 'get');
      if (reads.length > 0) {
        const read = random.pick(reads);
        const neverWritten = withResult(history, read, (r) => ({ ...r, value: bytes('never written') }));
        expect(verdict(neverWritten), `seed ${seed}, read ${read}`).toBe('violation');
      }
    }
  });
  it('agrees with brute force on thousands of tiny concurrent histories', () => {
    const counts = crossCheckWithBruteForce(1, 2000, 7);
    // Both verdicts must be well represented, or the comparison proves little.
    expect(counts.linearizable).toBeGreaterThan(400);
    expect(counts.violation).toBeGreaterThan(400);
  });
  it('agrees with brute force on small histories with more overlap', () => {
    const counts = crossCheckWithBruteForce(100_000, 300, 13);
    expect(counts.linearizable).toBeGreaterThan(60);
    expect(counts.violation).toBeGreaterThan(60);
  });
  // A long soak: CHECK_SOAK_SEEDS=100000 npx vitest run test/check
  it.runIf(process.env.CHECK_SOAK_SEEDS !== undefined)('soak: agrees with brute force on many more seeds', () => {
    const seeds = Number(process.env.CHECK_SOAK_SEEDS);
    const counts = crossCheckWithBruteForce(1_000_000, seeds, 12);
    console.log(`soak: ${seeds} seeds`, counts);
  }, 3_600_000);
  it('checks a long contended history on one key quickly', () => {
    const { history } = randomLinearizableHistory(new Random(99), { operations: 3000, keys: 1, jitter: 40, unknownProbability: 0.05 });
    const started = performance.now();
    const result = checkLinearizability(history, { timeBudgetMs: 5_000 });
    const elapsedMs = performance.now() - started;
    expect(result).toMatchObject({ verdict: 'linearizable', keysChecked: 1 });
    expect(elapsedMs).toBeLessThan(5_000);
  });
});

/**
 * Random histories of 2..`sizeMax` operations on one key, linearizable by construction and then
 * mutated 60 % of the time; the checker's verdict must equal the brute-force one.
 */
function crossCheckWithBruteForce(firstSeed: number, seeds: number, sizeMax: number): { linearizable: number; violation: number } {
  const counts = { linearizable: 0, violation: 0 };
  for (let seed = firstSeed; seed < firstSeed + seeds; seed++) {
    const random = new Random(seed);
    const size = random.range(2, sizeMax);
    let { history } = randomLinearizableHistory(random, { operations: size, keys: 1, jitter: 25 + 5 * size, unknownProbability: 0.2 });
    if (random.chance(0.6)) history = mutate(random, history);
    const expected = bruteForceLinearizable(history) ? 'linearizable' : 'violation';
    const result = checkLinearizability(history);
    expect(result.verdict, `seed ${seed}: ${describeViolation(result)}`).toBe(expected);
    counts[expected]++;
  }
  return counts;
}

/** A small random change to one entry: shifted version, other value, flipped flag, other outcome, moved interval. */
function mutate(random: Random, history: HistoryOperation[]): HistoryOperation[] {
  const index = random.int(history.length);
  const original = history[index];
  const copy = [...history];
  const outcome = original.outcome;
  switch (random.int(5)) {
    case 0:
      if (outcome.type === 'ok') return withResult(history, index, (r) => ({ ...r, version: Math.max(0, r.version + random.pick([-1, 1])) }));
      break;
    case 1:
      if (outcome.type === 'ok') return withResult(history, index, (r) => ({ ...r, value: random.chance(0.3) ? null : bytes(random.pick(['a', 'b', '7', 'ab'])) }));
      break;
    case 2:
      if (outcome.type === 'ok') return withResult(history, index, (r) => ({ ...r, applied: !r.applied }));
      break;
    case 3:
      copy[index] = { ...original, outcome: random.pick([unknown, wrongType, ok(true, random.int(4), random.pick([null, 'a']))]), returnTime: Number.isFinite(original.returnTime) ? original.returnTime : original.invokeTime + 5 };
      return copy;
    default: {
      const shift = random.range(-60, 60);
      copy[index] = { ...original, invokeTime: original.invokeTime + shift, returnTime: original.returnTime + shift };
      return copy;
    }
  }
  return history;
}
