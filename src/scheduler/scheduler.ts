/**
 * The coroutine scheduler of a shard (DESIGN.md §5; PaxosStore wrote its Paxos logic on libco
 * coroutines in a pseudo-synchronous style, this is the TypeScript counterpart).
 *
 * Each client request is a generator that calls the pure core and yields `Wait` instructions
 * ("resume me when this predicate on key k holds, or after n ticks"). The core accumulates
 * effects (records to persist, messages to send, keys touched). One scheduler turn:
 *
 *   1. resume every runnable coroutine until it waits again or finishes; a coroutine becomes
 *      runnable when its predicate holds after its key was touched, or when its ticks run out;
 *   2. take the turn's effects from the core: ALL records go to ONE group commit, ALL messages go
 *      out as one batch per peer, and finished coroutines' results are queued with them;
 *   3. release the messages and results of a turn only when its commit AND every earlier commit
 *      are durable (releases leave in turn order) — except results the world vouches for as
 *      computed from durable state only (`resultIsDurable`), which leave at the end of their turn.
 *
 *   turn n:   run coroutines ─► effects ─► commit(records n) ─────────────┐ durable
 *   turn n+1: run coroutines ─► effects ─► commit(records n+1) ──┐        │
 *                                                                ▼        ▼
 *   releases (in order):                         [sends+results n] → [sends+results n+1]
 *
 * Step 3 is the "persisted before sent" rule for the whole replica: no message or reply can
 * reflect state that a crash could still take back. Because the core's in-memory state runs
 * ahead of the disk, a reply computed in turn n+1 may depend on state of turn n; ordered release
 * covers that too.
 *
 * The exception in step 3 is what makes a write cost two fsync stages instead of three: the
 * proposer learns "chosen" from acceptors' states (each persisted before it was sent) and its own
 * accept (committed before it was sent), so the reply need not wait for the proposer's commit of
 * the chosen mark. The world decides per key (ReplicaCore.isChosenDurable); messages never take
 * this shortcut.
 *
 * Coroutines are synchronous generators, not async ones: a resume is a plain call, so a turn is
 * deterministic and never hops through the microtask queue, which lets the simulator drive many
 * replicas in one thread and reproduce a seed exactly. The only asynchrony is the commit callback.
 * Time is ticks (`tick()`), given by the caller's clock; the scheduler never reads a clock.
 */
import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';

/** What a coroutine yields: resume with `true` when `until()` holds, with `false` after `ticks`. */
export interface Wait {
  readonly key: string;
  readonly until: () => boolean;
  readonly ticks: number;
}

export type Coroutine<T> = Generator<Wait, T, boolean>;

export type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: PaxosStoreError };

export type Completion<T> = (outcome: Outcome<T>) => void;

/** What the scheduler needs from the world around it: the core's effects, a disk and a network. */
export interface SchedulerWorld<PersistRecord, Message> {
  /** Keys whose state changed since the last call (wakes coroutines waiting on them); read before the next call. */
  takeTouchedKeys(): Iterable<string>;
  /** Records and messages produced since the last call (the core's "Ready"). */
  takeEffects(): { readonly records: readonly PersistRecord[]; readonly sends: ReadonlyMap<number, readonly Message[]> };
  /** One group commit; call `done` once every record is durable, or with the error that stopped it. */
  commit(records: readonly PersistRecord[], done: (error?: Error) => void): void;
  /** One call per peer per released turn. */
  send(peer: number, messages: readonly Message[]): void;
  /**
   * Optional: asked when a coroutine on `key` finishes. True means its result depends only on
   * state that is already durable (here and at peers), so it may be released at the end of this
   * turn without waiting for pending commits. Absent or false: ordered release (step 3).
   */
  resultIsDurable?(key: string): boolean;
}

export interface SchedulerLimits {
  /** Coroutines alive at once; beyond it a spawn fails with OVERLOADED. */
  readonly inFlightMax: number;
  /** Coroutines alive at once on one key (hot keys must not starve the shard). */
  readonly inFlightPerKeyMax: number;
}

export const SCHEDULER_LIMITS_DEFAULT: SchedulerLimits = { inFlightMax: 10_000, inFlightPerKeyMax: 256 };

/** Resumes per turn before the turn is declared runaway (a coroutine that never really waits). */
const RESUMES_PER_TURN_MAX = 1_000_000;

/**
 * One coroutine and its bookkeeping. The fields below `deadline` replace per-wait allocations (a
 * Set of waiters per key, a `{task, value}` entry per resume, a `{task, outcome}` per finish): at
 * hundreds of requests in flight those were a tenth of a shard's garbage.
 */
class Task {
  wait: Wait | null = null;
  deadline = 0;
  /** What the next resume passes to the coroutine (set when it becomes runnable). */
  resumeValue = true;
  /** Set when the coroutine ended, until its result is released. */
  outcome: Outcome<unknown> | null = null;
  /**
   * The waiters of one key form a list in wait order: the head is in `waitingByKey`, `nextWaiting`
   * runs to the tail, and the head's `previousWaiting` points at the tail (appends are O(1)).
   */
  nextWaiting: Task | null = null;
  previousWaiting: Task | null = null;

  constructor(
    readonly key: string,
    readonly coroutine: Coroutine<unknown>,
    readonly complete: Completion<unknown>,
  ) {}
}

interface Release {
  readonly sends: ReadonlyMap<number, readonly unknown[]>;
  /** Tasks whose `outcome` is released with these sends. */
  readonly finished: readonly Task[];
  durable: boolean;
}

export interface SchedulerOptions {
  /**
   * TEST ONLY (bug injection): release messages and results before their commit is durable, so a
   * crash can take back state that peers and clients already saw. Never set in production.
   */
  readonly releaseBeforeDurable?: boolean;
}

export class Scheduler<PersistRecord, Message> {
  private nowTicks = 0;
  private readonly tasks = new Set<Task>();
  /** Key → the first task waiting on it (see Task.nextWaiting). */
  private readonly waitingByKey = new Map<string, Task>();
  /** Unfinished tasks per key (waiting, runnable or running): the per-key limit without scanning `runnable`. */
  private readonly liveByKey = new Map<string, number>();
  private runnable: Task[] = [];
  private readonly releases: Release[] = [];
  private finishedOfTurn: Task[] = [];
  /** Results of this turn that depend only on durable state: completed at the end of the turn. */
  private durableOfTurn: Task[] = [];
  private fatalError: PaxosStoreError | null = null;

  constructor(
    private readonly world: SchedulerWorld<PersistRecord, Message>,
    private readonly limits: SchedulerLimits = SCHEDULER_LIMITS_DEFAULT,
    private readonly options: SchedulerOptions = {},
  ) {}

  get now(): number {
    return this.nowTicks;
  }

  get inFlight(): number {
    return this.tasks.size;
  }

  /** True when no coroutine waits on `key` (call between turns: nothing is runnable then). */
  isIdle(key: string): boolean {
    return !this.liveByKey.has(key);
  }

  /**
   * Starts a coroutine on `key`; it first runs in the next turn. Returns false (after completing
   * it with OVERLOADED or CLOSED) when it was refused.
   */
  spawn<T>(key: string, coroutine: Coroutine<T>, complete: Completion<T>): boolean {
    const refusal = this.refusal(key);
    if (refusal !== null) {
      coroutine.return(undefined as T);
      complete({ ok: false, error: refusal });
      return false;
    }
    const task = new Task(key, coroutine, complete as Completion<unknown>);
    this.tasks.add(task);
    this.liveByKey.set(key, (this.liveByKey.get(key) ?? 0) + 1);
    this.runnable.push(task);
    return true;
  }

  /** Advances time; coroutines whose wait ran out resume (with `false`) in the next turn. */
  tick(ticks = 1): void {
    this.nowTicks += ticks;
    for (const task of this.tasks) {
      if (task.wait !== null && task.deadline <= this.nowTicks) this.resume(task, false);
    }
  }

  /** One turn (see the header). Call it after delivering inputs (messages, spawns, ticks). */
  runTurn(): void {
    if (this.fatalError !== null) return;
    let resumes = 0;
    for (;;) {
      this.wakeTouched();
      if (this.runnable.length === 0) break;
      const batch = this.runnable;
      this.runnable = [];
      for (const task of batch) {
        this.step(task, task.resumeValue);
        resumes++;
      }
      assert(resumes < RESUMES_PER_TURN_MAX, 'runaway coroutine: resumed without ever waiting');
    }
    this.endTurn();
  }

  /** Fails every coroutine and pending result with `error`; later spawns get it too. */
  close(error: PaxosStoreError): void {
    if (this.fatalError !== null) return;
    this.fatalError = error;
    // Results computed but not yet durable are indeterminate: report the error instead of them.
    const pending = [...this.releases.flatMap((release) => release.finished), ...this.finishedOfTurn, ...this.durableOfTurn];
    this.releases.length = 0;
    this.finishedOfTurn = [];
    this.durableOfTurn = [];
    for (const task of pending) task.complete({ ok: false, error });
    for (const task of this.tasks) {
      task.coroutine.return(undefined);
      task.complete({ ok: false, error });
    }
    this.tasks.clear();
    this.liveByKey.clear();
    this.waitingByKey.clear();
    this.runnable = [];
  }

  private refusal(key: string): PaxosStoreError | null {
    if (this.fatalError !== null) return this.fatalError;
    if (this.tasks.size >= this.limits.inFlightMax) return new PaxosStoreError('OVERLOADED', 'too many requests in flight on this shard');
    if ((this.liveByKey.get(key) ?? 0) >= this.limits.inFlightPerKeyMax) {
      return new PaxosStoreError('OVERLOADED', 'too many requests in flight on this key');
    }
    return null;
  }

  private step(task: Task, value: boolean): void {
    let result: IteratorResult<Wait, unknown>;
    try {
      result = task.coroutine.next(value);
    } catch (error) {
      this.finish(task, { ok: false, error: asPaxosStoreError(error) });
      return;
    }
    if (result.done) {
      this.finish(task, { ok: true, value: result.value });
      return;
    }
    const wait = result.value;
    assert(wait.key === task.key, 'a coroutine waits only on its own key');
    if (wait.until()) {
      task.resumeValue = true;
      this.runnable.push(task);
      return;
    }
    task.wait = wait;
    task.deadline = this.nowTicks + Math.max(0, wait.ticks);
    const head = this.waitingByKey.get(task.key);
    if (head === undefined) {
      this.waitingByKey.set(task.key, task);
      task.previousWaiting = task;
    } else {
      const tail = head.previousWaiting!;
      tail.nextWaiting = task;
      task.previousWaiting = tail;
      head.previousWaiting = task;
    }
  }

  private resume(task: Task, value: boolean): void {
    task.wait = null;
    this.unlinkWaiting(task);
    task.resumeValue = value;
    this.runnable.push(task);
  }

  /** Takes a waiting task out of its key's list (see Task.nextWaiting). */
  private unlinkWaiting(task: Task): void {
    const head = this.waitingByKey.get(task.key)!;
    const next = task.nextWaiting;
    if (task === head) {
      if (next === null) this.waitingByKey.delete(task.key);
      else {
        next.previousWaiting = task.previousWaiting;
        this.waitingByKey.set(task.key, next);
      }
    } else {
      task.previousWaiting!.nextWaiting = next;
      if (next !== null) next.previousWaiting = task.previousWaiting;
      else head.previousWaiting = task.previousWaiting;
    }
    task.nextWaiting = null;
    task.previousWaiting = null;
  }

  private wakeTouched(): void {
    for (const key of this.world.takeTouchedKeys()) {
      // In wait order; resume() unlinks the task, so its successor is read first.
      for (let task = this.waitingByKey.get(key) ?? null; task !== null; ) {
        const next = task.nextWaiting;
        if (task.wait?.until()) this.resume(task, true);
        task = next;
      }
    }
  }

  private finish(task: Task, outcome: Outcome<unknown>): void {
    this.tasks.delete(task);
    const live = this.liveByKey.get(task.key)!;
    if (live > 1) this.liveByKey.set(task.key, live - 1);
    else this.liveByKey.delete(task.key);
    // Asked now, not at the end of the turn: later steps of this turn may change the key's state.
    const durable = this.world.resultIsDurable?.(task.key) === true;
    task.outcome = outcome;
    (durable ? this.durableOfTurn : this.finishedOfTurn).push(task);
  }

  private endTurn(): void {
    const durableResults = this.durableOfTurn;
    this.durableOfTurn = [];
    for (const task of durableResults) task.complete(task.outcome!);
    if (this.fatalError !== null) return;
    const { records, sends } = this.world.takeEffects();
    const release: Release = { sends, finished: this.finishedOfTurn, durable: records.length === 0 || this.options.releaseBeforeDurable === true };
    this.finishedOfTurn = [];
    if (sends.size === 0 && release.finished.length === 0 && records.length === 0) return;
    this.releases.push(release);
    if (records.length > 0) {
      this.world.commit(records, (error) => {
        if (this.fatalError !== null) return;
        if (error !== undefined) {
          this.close(asPaxosStoreError(error, 'IO_ERROR'));
          return;
        }
        release.durable = true;
        this.flushReleases();
      });
    }
    this.flushReleases();
  }

  private flushReleases(): void {
    while (this.releases.length > 0 && this.releases[0].durable && this.fatalError === null) {
      const release = this.releases.shift()!;
      for (const [peer, messages] of release.sends) this.world.send(peer, messages as readonly Message[]);
      for (const task of release.finished) task.complete(task.outcome!);
    }
  }
}

function asPaxosStoreError(error: unknown, code: 'INTERNAL' | 'IO_ERROR' = 'INTERNAL'): PaxosStoreError {
  if (error instanceof PaxosStoreError) return error;
  if (code === 'INTERNAL' && error instanceof Error && error.name === 'AssertionError') throw error;
  return new PaxosStoreError(code, error instanceof Error ? error.message : String(error), undefined, { cause: error });
}
