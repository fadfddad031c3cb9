/**
 * The Wing–Gong linearizability search with Lowe's improvements, as Porcupine does it, for the
 * operations of ONE key (the caller partitions by key: linearizability is compositional).
 *
 * All call and return events sit in one doubly linked list sorted by time. The candidates for the
 * next linearization point are the calls before the first return in the list: an operation whose
 * return comes first must be linearized before anything invoked after that return.
 *
 *   head ─► call a ─► call b ─► return a ─► call c ─► return b ─► return c ─► … ─► return u (+∞)
 *           └─ candidates ──┘   └ a must be linearized before c may be
 *
 * Linearizing an operation "lifts" its call and return out of the list (dancing links, undone in
 * LIFO order on backtracking). A configuration is (set of linearized operations, register
 * state); every configuration visited is remembered, and reaching one again means it is a dead
 * end (or the search would have finished), which is what makes the search practical.
 *
 * Pruning beyond Porcupine, both sound by a dominance argument:
 * - Operations that never change the state (gets, writes whose result says "not applied",
 *   WRONG_TYPE errors) are linearized greedily the moment they are legal among the candidates,
 *   without trying alternatives: if a configuration can be completed, the same configuration with
 *   such an operation linearized can be completed too (drop it from the completion).
 * - An operation with an unknown outcome is never linearized where it would have no effect:
 *   leaving it for later (or never) is at least as good.
 * - Versions: every applied write adds exactly 1 to the version and every ok result pins the
 *   version at its linearization point, so the operations with an ok outcome must be linearized
 *   in non-decreasing order of the version they saw before them. With `m` the smallest such
 *   version among the operations not yet linearized and `s` the current version: `m < s` is a
 *   dead end, and since a known applied write cannot fill a gap below `m`, the `m - s` writes
 *   still missing must be unknown ones; an unknown write may take effect only while `s < m`.
 *   Without this, every pending unknown write multiplies the configurations to explore. Unknown operations return at +∞, so the
 *   search succeeds as soon as every operation with a known outcome is linearized; the unknown
 *   ones left over are "linearized at the end", i.e. never took effect as far as anyone saw.
 */
import type { KeyOperation } from '../api/operations.js';
import { Random } from '../util/random.js';
import type { Outcome } from './history.js';
import { INITIAL_STATE, type RegisterState, statesEqual, step } from './model.js';

export interface SearchOperation {
  readonly operation: KeyOperation;
  /** Already normalised (see constrainingOutcome). */
  readonly outcome: Outcome;
  /** May be -∞ (a local read may return any state that existed before it returned). */
  readonly invokeTime: number;
  /** +∞ for unknown outcomes. */
  readonly returnTime: number;
}

export interface SearchBudget {
  /** performance.now() value after which the search gives up. */
  readonly deadlineMs: number;
  /** Maximum number of search steps (configurations tried); deterministic, unlike the deadline. */
  readonly stepsMax: number;
  /** Maximum bytes held by the cache of visited configurations (estimated). */
  readonly cacheBytesMax: number;
}

export type SearchResult =
  | { readonly type: 'linearizable'; readonly steps: number }
  /** `partial`: the longest partial linearization found (operation indices, in order). */
  | { readonly type: 'violation'; readonly partial: readonly number[]; readonly steps: number }
  | { readonly type: 'unknown'; readonly reason: string; readonly steps: number };

/** How an operation can take part in the search (fixed per operation). */
const enum Role {
  /** Known outcome that changes the state (an applied write). */
  Changing = 0,
  /** Known outcome that leaves the state as it is: linearized greedily when legal. */
  Preserving = 1,
  /** Unknown outcome: optional, may take effect any time after its invocation. */
  Optional = 2,
}

const NONE = -1;
const CACHE_ENTRY_OVERHEAD_BYTES = 96;
const BUDGET_CHECK_INTERVAL_STEPS = 1024;

interface CachedConfiguration {
  readonly bits: Uint32Array;
  readonly state: RegisterState;
}

interface Frame {
  readonly call: number;
  readonly stateBefore: RegisterState;
  readonly forced: boolean;
}

function roleOf(operation: SearchOperation): Role {
  const outcome = operation.outcome;
  if (outcome.type === 'unknown') return Role.Optional;
  if (operation.operation.kind === 'get' || outcome.type === 'error' || !outcome.result.applied) return Role.Preserving;
  return Role.Changing;
}

/** Entry e < n is the call of operation e; entry n + e is its return; entry 2n is the head. */
function buildList(operations: readonly SearchOperation[]): { next: Int32Array; previous: Int32Array } {
  const n = operations.length;
  const order: number[] = [];
  for (let e = 0; e < 2 * n; e++) order.push(e);
  const timeOf = (e: number): number => (e < n ? operations[e].invokeTime : operations[e - n].returnTime);
  // Calls before returns at equal times: such operations count as concurrent.
  order.sort((a, b) => timeOf(a) - timeOf(b) || Number(a >= n) - Number(b >= n) || a - b);
  const next = new Int32Array(2 * n + 1).fill(NONE);
  const previous = new Int32Array(2 * n + 1).fill(NONE);
  let last = 2 * n;
  for (const e of order) {
    next[last] = e;
    previous[e] = last;
    last = e;
  }
  return { next, previous };
}

export function searchLinearization(operations: readonly SearchOperation[], budget: SearchBudget): SearchResult {
  const n = operations.length;
  const head = 2 * n;
  const { next, previous } = buildList(operations);
  const roles = operations.map(roleOf);
  let definiteLeft = roles.filter((role) => role !== Role.Optional).length;
  const pinned = new PinnedVersions(operations, roles);

  // Zobrist hashing of the linearized set: one random word per operation, XORed in and out.
  const zobristRandom = new Random(0x5eed);
  const zobrist = new Uint32Array(n).map(() => zobristRandom.uint32());
  const bits = new Uint32Array(Math.ceil(n / 32));
  let bitsHash = 0;
  const cache = new Map<number, CachedConfiguration[]>();
  const cacheEntryBytes = bits.byteLength + CACHE_ENTRY_OVERHEAD_BYTES;
  let cacheBytes = 0;

  const toggle = (op: number): void => {
    bits[op >>> 5] ^= 1 << (op & 31);
    bitsHash ^= zobrist[op];
  };
  const bitsEqual = (other: Uint32Array): boolean => {
    for (let i = 0; i < bits.length; i++) if (bits[i] !== other[i]) return false;
    return true;
  };
  /** Remembers the current configuration; false when it was already visited (a dead end). */
  const remember = (state: RegisterState): boolean => {
    const key = (bitsHash ^ Math.imul(state.hash, 0x9e3779b1)) >>> 0;
    let bucket = cache.get(key);
    if (bucket === undefined) {
      bucket = [];
      cache.set(key, bucket);
    }
    for (const entry of bucket) if (bitsEqual(entry.bits) && statesEqual(entry.state, state)) return false;
    bucket.push({ bits: bits.slice(), state });
    cacheBytes += cacheEntryBytes;
    return true;
  };

  const lift = (call: number): void => {
    const ret = call + n;
    next[previous[call]] = next[call];
    if (next[call] !== NONE) previous[next[call]] = previous[call];
    next[previous[ret]] = next[ret];
    if (next[ret] !== NONE) previous[next[ret]] = previous[ret];
  };
  const unlift = (call: number): void => {
    const ret = call + n;
    if (next[ret] !== NONE) previous[next[ret]] = ret;
    next[previous[ret]] = ret;
    if (next[call] !== NONE) previous[next[call]] = call;
    next[previous[call]] = call;
  };

  const stack: Frame[] = [];
  let state = INITIAL_STATE;
  let best: number[] = [];
  let steps = 0;

  const push = (call: number, nextState: RegisterState, forced: boolean): boolean => {
    toggle(call);
    if (!remember(nextState)) {
      toggle(call);
      return false;
    }
    stack.push({ call, stateBefore: state, forced });
    lift(call);
    pinned.remove(call);
    if (roles[call] !== Role.Optional) definiteLeft--;
    state = nextState;
    return true;
  };
  const pop = (): Frame => {
    if (stack.length > best.length) best = stack.map((frame) => frame.call);
    const frame = stack.pop()!;
    unlift(frame.call);
    pinned.restore(frame.call);
    toggle(frame.call);
    if (roles[frame.call] !== Role.Optional) definiteLeft++;
    state = frame.stateBefore;
    return frame;
  };
  /** A legal state-preserving candidate, linearized greedily: 'pushed', 'dead' (seen) or 'none'. */
  const linearizeGreedily = (): 'pushed' | 'dead' | 'none' => {
    for (let entry = next[head]; entry !== NONE && entry < n; entry = next[entry]) {
      if (roles[entry] !== Role.Preserving) continue;
      if (step(state, operations[entry].operation, operations[entry].outcome) === undefined) continue;
      return push(entry, state, true) ? 'pushed' : 'dead';
    }
    return 'none';
  };

  remember(state);
  let entry = NONE;
  let fresh = true; // a configuration entered for the first time: try greedy linearization first
  for (;;) {
    if (definiteLeft === 0) return { type: 'linearizable', steps };
    if (++steps > budget.stepsMax) return { type: 'unknown', reason: `search step budget of ${budget.stepsMax} exhausted`, steps };
    if (steps % BUDGET_CHECK_INTERVAL_STEPS === 0) {
      const reason = exhausted(budget, cacheBytes);
      if (reason !== undefined) return { type: 'unknown', reason, steps };
    }
    let backtrack = false;
    if (fresh) {
      fresh = false;
      const greedy = pinned.minimum() < state.version ? 'dead' : linearizeGreedily();
      if (greedy === 'pushed') {
        fresh = true;
        continue;
      }
      backtrack = greedy === 'dead';
      entry = next[head];
    }
    if (!backtrack && entry !== NONE && entry < n) {
      const role = roles[entry];
      if (role === Role.Changing || (role === Role.Optional && state.version < pinned.minimum())) {
        const nextState = step(state, operations[entry].operation, operations[entry].outcome);
        if (nextState !== undefined && !(role === Role.Optional && nextState === state) && push(entry, nextState, false)) {
          fresh = true;
          continue;
        }
      }
      entry = next[entry];
      continue;
    }
    // A return reached (or a dead configuration): undo the latest choice and try the next one.
    for (;;) {
      if (stack.length === 0) return { type: 'violation', partial: best, steps };
      const frame = pop();
      if (!frame.forced) {
        entry = next[frame.call];
        break;
      }
    }
  }
}

/**
 * The multiset of versions pinned by the ok outcomes of the operations not yet linearized (the
 * version each saw just before it took effect), with its minimum. Removals and restorations come
 * in LIFO order from the search, so a count per distinct version and a lazily advanced minimum do.
 */
class PinnedVersions {
  private readonly versions: number[];
  private readonly indexOf: Int32Array;
  private readonly counts: Int32Array;
  private minimumIndex = 0;

  constructor(operations: readonly SearchOperation[], roles: readonly Role[]) {
    const pinnedOf = operations.map((operation, i) => {
      const outcome = operation.outcome;
      if (outcome.type !== 'ok') return undefined;
      return roles[i] === Role.Changing ? outcome.result.version - 1 : outcome.result.version;
    });
    this.versions = [...new Set(pinnedOf.filter((version) => version !== undefined))].sort((a, b) => a - b);
    const position = new Map(this.versions.map((version, index) => [version, index]));
    this.indexOf = Int32Array.from(pinnedOf, (version) => (version === undefined ? NONE : position.get(version)!));
    this.counts = new Int32Array(this.versions.length);
    for (const index of this.indexOf) if (index !== NONE) this.counts[index]++;
  }

  /** +∞ when no operation with an ok outcome is left. */
  minimum(): number {
    while (this.minimumIndex < this.counts.length && this.counts[this.minimumIndex] === 0) this.minimumIndex++;
    return this.minimumIndex < this.versions.length ? this.versions[this.minimumIndex] : Number.POSITIVE_INFINITY;
  }

  remove(operation: number): void {
    const index = this.indexOf[operation];
    if (index !== NONE) this.counts[index]--;
  }

  restore(operation: number): void {
    const index = this.indexOf[operation];
    if (index === NONE) return;
    this.counts[index]++;
    if (index < this.minimumIndex) this.minimumIndex = index;
  }
}

function exhausted(budget: SearchBudget, cacheBytes: number): string | undefined {
  if (cacheBytes > budget.cacheBytesMax) return `cache of visited configurations exceeded ${budget.cacheBytesMax} bytes`;
  if (performance.now() > budget.deadlineMs) return 'time budget exhausted';
  return undefined;
}
