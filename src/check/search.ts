/**
 * The Wing–Gong linearizability search with Lowe's improvements, as Porcupine does it, for the
 * operations of ONE key (the caller partitions by key: linearizability is compositional).
 *
 * All call and return events sit in one time-ordered list (event-list.ts). The candidates for
 * the next linearization point are the calls before the first return in the list: the operation
 * of that return must be linearized before anything invoked after it. Linearizing an operation
 * lifts its call and return out of the list; backtracking puts them back. A configuration is
 * (set of linearized operations, register state); reaching one already visited means a dead end
 * (or the search would have finished), which is what keeps the search practical.
 *
 * Pruning beyond Porcupine, each sound by a dominance argument:
 * - Operations that never change the state (gets, writes whose result says "not applied",
 *   WRONG_TYPE errors) are linearized greedily the moment they are legal among the candidates,
 *   without trying alternatives: if a configuration can be completed, the same configuration with
 *   such an operation linearized can be completed too (drop it from the completion).
 * - An operation with an unknown outcome is never linearized where it would have no effect:
 *   leaving it for later (or never) is at least as good. Unknown operations return at +∞, so the
 *   search succeeds as soon as every operation with a known outcome is linearized; the unknown
 *   ones left over count as never having taken effect.
 * - Versions: every applied write adds exactly 1 to the version and every ok result pins the
 *   version at its linearization point, so operations with an ok outcome are linearized in
 *   non-decreasing order of the version they pin. With `m` the smallest version still pinned
 *   and `s` the current one: `m < s` is a dead end, and as no known applied write can fill a gap
 *   below `m`, the writes still missing there must be unknown ones: an unknown write may take
 *   effect only while `s < m`. Without this every pending unknown write multiplies the work.
 *
 * Two passes. Refuting a history exactly can still be exponential when many unknown writes could
 * fill the same version gaps (the search must try every assignment). So the first pass solves a
 * relaxation in which an unknown write may take effect any number of times (it is never consumed
 * and so no part of the configuration): it only allows more, so when it finds no linearization
 * there is none, and when its witness uses every unknown write at most once the witness is a
 * real linearization. Only otherwise does the exact second pass run.
 */
import type { KeyOperation } from '../api/operations.js';
import { EventList, NONE } from './event-list.js';
import type { Outcome } from './history.js';
import { INITIAL_STATE, type RegisterState, step } from './model.js';
import { PinnedVersions } from './pinned-versions.js';
import { type CachePrecision, VisitedConfigurations } from './visited-configurations.js';

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
  /** Maximum number of search steps over both passes; deterministic, unlike the deadline. */
  readonly stepsMax: number;
  /** Maximum bytes held by the cache of visited configurations (estimated), per pass. */
  readonly cacheBytesMax: number;
}

export type SearchResult =
  /** `witness`: a linearization (operation indices in order; unknown writes left out never took effect). */
  | { readonly type: 'linearizable'; readonly witness: readonly number[]; readonly steps: number }
  /** `partial`: the longest partial linearization found (in the relaxed pass an unknown write may repeat). */
  | { readonly type: 'violation'; readonly partial: readonly number[]; readonly steps: number }
  | { readonly type: 'unknown'; readonly reason: string; readonly steps: number };

/**
 * Searches for a linearization of one key's operations: the relaxed pass, then the exact one if
 * the relaxed witness used an unknown write twice. With the 'fingerprint' cache a violation is
 * very probably, but not certainly, real (see visited-configurations.ts); confirm with 'exact'.
 */
export function searchLinearization(operations: readonly SearchOperation[], budget: SearchBudget, precision: CachePrecision): SearchResult {
  const relaxed = new Search(operations, true, precision).run(budget);
  if (relaxed.type !== 'linearizable') return relaxed;
  if (new Set(relaxed.witness).size === relaxed.witness.length) return relaxed;
  const exact = new Search(operations, false, precision).run({ ...budget, stepsMax: budget.stepsMax - relaxed.steps });
  return { ...exact, steps: exact.steps + relaxed.steps };
}

/** How an operation takes part in the search (fixed per operation). */
const enum Role {
  /** Known outcome that changes the state (an applied write). */
  Changing = 0,
  /** Known outcome that leaves the state as it is: linearized greedily when legal. */
  Preserving = 1,
  /** Unknown outcome: optional, may take effect any time after its invocation. */
  Optional = 2,
}

const BUDGET_CHECK_INTERVAL_STEPS = 1024;

interface Frame {
  readonly operation: number;
  /** For an unknown write: its position in `unknownWrites`; -1 for the others. */
  readonly unknownPosition: number;
  readonly stateBefore: RegisterState;
  /** Linearized greedily: backtracking over it means the configuration before it is dead too. */
  readonly forced: boolean;
  /** Removed from what is left to linearize; false for an unknown write in the relaxed pass, which stays available. */
  readonly consumed: boolean;
}

function roleOf(operation: SearchOperation): Role {
  const outcome = operation.outcome;
  if (outcome.type === 'unknown') return Role.Optional;
  if (operation.operation.kind === 'get' || outcome.type === 'error' || !outcome.result.applied) return Role.Preserving;
  return Role.Changing;
}

function pinnedVersionOf(operation: SearchOperation, role: Role): number | undefined {
  if (operation.outcome.type !== 'ok') return undefined;
  return role === Role.Changing ? operation.outcome.result.version - 1 : operation.outcome.result.version;
}

class Search {
  private readonly roles: Role[];
  private readonly events: EventList;
  private readonly visited: VisitedConfigurations;
  private readonly pinned: PinnedVersions;
  /** No linearization has more applied writes than there are writes, which bounds the relaxed pass. */
  private readonly versionMax: number;
  /**
   * Unknown writes, by invocation time. They are kept out of the event list (they return at +∞
   * and never bound the candidates) so that scanning candidates costs nothing for them unless
   * a version gap needs one: candidates then are those invoked by the horizon, the time of the
   * first return still in the list, tried newest first (a write usually takes effect soon after
   * its invocation, and the filler of a gap is found sooner).
   */
  private readonly unknownWrites: number[];
  private readonly unknownInvokeTimes: Float64Array;
  /**
   * Reads invoked at -∞ (local gets), by the version they pin. Kept out of the scan of the list,
   * where every one of them would be a candidate from the start: such a read can only be
   * linearized while the state has its version, so only that version's reads are looked at.
   */
  private readonly readsAnyTime = new Map<number, number[]>();
  /** Unknown writes and reads invoked at -∞ that are linearized (they are not lifted from the list). */
  private readonly used: Uint8Array;
  private readonly stack: Frame[] = [];
  /** The longest partial linearization so far, and how many leading frames the stack shares with it. */
  private readonly best: number[] = [];
  private bestShared = 0;
  private state = INITIAL_STATE;
  private definiteLeft: number;

  constructor(
    private readonly operations: readonly SearchOperation[],
    private readonly reusesUnknown: boolean,
    precision: CachePrecision,
  ) {
    const n = operations.length;
    this.roles = operations.map(roleOf);
    this.events = new EventList(
      n,
      (i) => operations[i].invokeTime,
      (i) => operations[i].returnTime,
    );
    this.unknownWrites = this.roles.flatMap((role, i) => (role === Role.Optional ? [i] : []));
    this.unknownWrites.sort((a, b) => operations[a].invokeTime - operations[b].invokeTime || a - b);
    for (const operation of this.unknownWrites) this.events.lift(operation);
    this.unknownInvokeTimes = Float64Array.from(this.unknownWrites, (i) => operations[i].invokeTime);
    operations.forEach((operation, i) => {
      const version = pinnedVersionOf(operation, this.roles[i]);
      if (operation.invokeTime !== Number.NEGATIVE_INFINITY || this.roles[i] !== Role.Preserving || version === undefined) return;
      this.events.detachCall(i);
      const reads = this.readsAnyTime.get(version);
      if (reads === undefined) this.readsAnyTime.set(version, [i]);
      else reads.push(i);
    });
    this.used = new Uint8Array(n);
    this.visited = new VisitedConfigurations(n, precision);
    this.pinned = new PinnedVersions(operations.map((operation, i) => pinnedVersionOf(operation, this.roles[i])));
    this.versionMax = this.roles.filter((role) => role !== Role.Preserving).length;
    this.definiteLeft = this.roles.filter((role) => role !== Role.Optional).length;
  }

  run(budget: SearchBudget): SearchResult {
    const { events } = this;
    this.visited.remember(this.state);
    let steps = 0;
    // Where the scan of candidates stands: an entry of the event list, or, once the first return
    // of the list is reached, a position among the unknown writes, counting down.
    let entry = NONE;
    let scanningUnknown = false;
    let unknownPosition = -1;
    let fresh = true; // a configuration entered for the first time: try greedy linearization first
    for (;;) {
      if (this.definiteLeft === 0) return { type: 'linearizable', witness: this.stack.map((frame) => frame.operation), steps };
      if (++steps > budget.stepsMax) return { type: 'unknown', reason: `search step budget of ${budget.stepsMax} exhausted`, steps };
      if (steps % BUDGET_CHECK_INTERVAL_STEPS === 0) {
        const reason = this.exhausted(budget);
        if (reason !== undefined) return { type: 'unknown', reason, steps };
      }
      if (fresh) {
        fresh = false;
        const greedy = this.linearizeGreedily();
        if (greedy === 'pushed') {
          fresh = true;
          continue;
        }
        entry = events.first();
        scanningUnknown = greedy === 'dead' || this.pinned.minimum() < this.state.version;
        unknownPosition = -1;
      }
      if (!scanningUnknown) {
        if (events.isCall(entry)) {
          if (this.tryLinearize(entry, -1)) fresh = true;
          else entry = events.following(entry);
          continue;
        }
        scanningUnknown = true;
        unknownPosition = this.mayTakeEffect() ? this.unknownInvokedBy(entry) - 1 : -1;
      }
      if (unknownPosition >= 0) {
        if (this.tryLinearize(this.unknownWrites[unknownPosition], unknownPosition)) fresh = true;
        else unknownPosition--;
        continue;
      }
      // Out of candidates (or a dead configuration): undo the latest choice and try the next one.
      const frame = this.backtrack();
      if (frame === undefined) return { type: 'violation', partial: this.best, steps };
      scanningUnknown = frame.unknownPosition >= 0;
      unknownPosition = frame.unknownPosition - 1;
      entry = events.following(frame.operation);
    }
  }

  /** How many unknown writes were invoked by the time of the return `entry` (all of them at the list's end). */
  private unknownInvokedBy(entry: number): number {
    if (entry === NONE) return this.unknownWrites.length;
    const horizon = this.operations[entry - this.operations.length].returnTime;
    let low = 0;
    let high = this.unknownInvokeTimes.length;
    while (low < high) {
      const middle = (low + high) >>> 1;
      if (this.unknownInvokeTimes[middle] <= horizon) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /** Whether an unknown write may take effect now: only to fill a gap below the smallest pinned version. */
  private mayTakeEffect(): boolean {
    const version = this.state.version;
    return version < this.pinned.minimum() && version < this.versionMax;
  }

  /** Linearizes the candidate `operation` next if it is legal, useful and leads somewhere new. */
  private tryLinearize(operation: number, unknownPosition: number): boolean {
    const role = this.roles[operation];
    if (role === Role.Preserving || this.used[operation] === 1) return false; // legal preserving ones went greedily
    const { operation: keyOperation, outcome } = this.operations[operation];
    const next = step(this.state, keyOperation, outcome);
    if (next === undefined || (role === Role.Optional && next === this.state)) return false;
    return this.push({ operation, unknownPosition, stateBefore: this.state, forced: false, consumed: false }, next);
  }

  /** A legal state-preserving candidate, linearized greedily: 'pushed', 'dead' (seen) or 'none'. */
  private linearizeGreedily(): 'pushed' | 'dead' | 'none' {
    const { events } = this;
    for (const read of this.readsAnyTime.get(this.state.version) ?? []) {
      if (this.used[read] === 1) continue;
      const { operation, outcome } = this.operations[read];
      if (step(this.state, operation, outcome) === undefined) continue;
      return this.push({ operation: read, unknownPosition: -1, stateBefore: this.state, forced: true, consumed: false }, this.state) ? 'pushed' : 'dead';
    }
    for (let entry = events.first(); events.isCall(entry); entry = events.following(entry)) {
      if (this.roles[entry] !== Role.Preserving) continue;
      const { operation, outcome } = this.operations[entry];
      if (step(this.state, operation, outcome) === undefined) continue;
      return this.push({ operation: entry, unknownPosition: -1, stateBefore: this.state, forced: true, consumed: false }, this.state) ? 'pushed' : 'dead';
    }
    return 'none';
  }

  /** `frame.consumed` is decided here: false only for an unknown write in the relaxed pass. */
  private push(frame: Frame, next: RegisterState): boolean {
    const operation = frame.operation;
    const optional = this.roles[operation] === Role.Optional;
    const consumed = !(optional && this.reusesUnknown);
    if (consumed) this.visited.toggle(operation);
    if (!this.visited.remember(next)) {
      if (consumed) this.visited.toggle(operation);
      return false;
    }
    const depth = this.stack.length;
    if (this.bestShared === depth && this.best[depth] === operation) this.bestShared++;
    this.stack.push({ ...frame, consumed });
    if (consumed) this.used[operation] = 1;
    if (!optional) {
      this.events.lift(operation);
      this.pinned.remove(operation);
      this.definiteLeft--;
    }
    this.state = next;
    return true;
  }

  /** Pops frames up to the latest free choice and returns it; undefined when none is left. */
  private backtrack(): Frame | undefined {
    this.recordIfLongest();
    for (;;) {
      const frame = this.stack.pop();
      if (frame === undefined) return undefined;
      this.bestShared = Math.min(this.bestShared, this.stack.length);
      const operation = frame.operation;
      if (frame.consumed) this.visited.toggle(operation);
      this.used[operation] = 0;
      if (this.roles[operation] !== Role.Optional) {
        this.events.unlift(operation);
        this.pinned.restore(operation);
        this.definiteLeft++;
      }
      this.state = frame.stateBefore;
      if (!frame.forced) return frame;
    }
  }

  /** Copies only the part of the stack that differs from the best so far. */
  private recordIfLongest(): void {
    const { stack, best } = this;
    if (stack.length <= best.length) return;
    best.length = this.bestShared;
    for (let i = this.bestShared; i < stack.length; i++) best.push(stack[i].operation);
    this.bestShared = stack.length;
  }

  private exhausted(budget: SearchBudget): string | undefined {
    if (this.visited.bytes > budget.cacheBytesMax) return `cache of visited configurations exceeded ${budget.cacheBytesMax} bytes`;
    if (performance.now() > budget.deadlineMs) return 'time budget exhausted';
    return undefined;
  }
}
