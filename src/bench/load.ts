/**
 * Load generators. Both keep every client connection busy with at most `pipeline` requests and
 * measure each operation from its INTENDED send time:
 *
 *   closed loop   each of clients×pipeline lanes sends, waits for the reply, sends the next.
 *                 Intended time = actual send time, so a stalled server simply receives fewer
 *                 requests and the histogram under-reports the stall (coordinated omission).
 *                 It measures service time at a concurrency, not what a user at a rate sees.
 *
 *   open loop     operations are due on a fixed schedule (`rate`/s, uniform or Poisson gaps)
 *                 regardless of replies. A due operation waits in the backlog until a lane is
 *                 free; its latency runs from when it was due, so queueing behind a stall is
 *                 counted (coordinated-omission corrected, as in wrk2 and HdrHistogram's docs).
 *
 *   time ──►  |── warm-up ──|──────── measured window ────────|── drain ──|
 *             operations due in the window are recorded; those due in the warm-up run but are
 *             not; the drain waits for in-flight work (each bounded by the timeout).
 */
import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';
import type { Random } from '../util/random.js';
import type { BenchClock } from './clock.js';
import { LatencyRecorder, type RunStatistics } from './recorder.js';
import type { BenchTarget } from './targets/types.js';
import type { BenchOperation, Workload } from './workload.js';

export type ArrivalProcess = 'poisson' | 'uniform';

export type LoadModel =
  | { readonly kind: 'closed'; readonly clients: number; readonly pipeline: number }
  | { readonly kind: 'open'; readonly clients: number; readonly pipeline: number; readonly ratePerSecond: number; readonly arrival: ArrivalProcess };

export interface RunPlan {
  readonly load: LoadModel;
  readonly warmupUs: number;
  readonly durationUs: number;
  readonly timeoutUs: number;
  /** Time-series resolution (throughput and p99 over time). */
  readonly intervalUs: number;
}

export interface Progress {
  readonly phase: 'warmup' | 'measure' | 'drain';
  /** Since the start of the warm-up. */
  readonly elapsedUs: number;
  readonly totalUs: number;
  readonly completed: number;
  readonly failed: number;
}

export interface RunDependencies {
  readonly target: BenchTarget;
  readonly workload: Workload;
  readonly clock: BenchClock;
  readonly random: Random;
  readonly onProgress?: (progress: Progress) => void;
  readonly progressIntervalUs?: number;
  /** Ends the run early (Ctrl-C): no new operations, in-flight ones drain, the window is cut there. */
  readonly signal?: AbortSignal;
}

/** The end of the measured window; moved earlier when the run is interrupted. */
interface RunWindow {
  endUs: number;
}

/** The generator refuses schedules it cannot represent rather than silently sending fewer operations. */
export const OPEN_LOOP_BACKLOG_MAX = 10_000_000;

export function validatePlan(plan: RunPlan): void {
  const { load } = plan;
  const positiveInteger = (value: number, name: string): void => {
    if (!Number.isSafeInteger(value) || value < 1) throw new PaxosStoreError('INVALID_ARGUMENT', `${name} must be a positive integer, got ${value}`);
  };
  positiveInteger(load.clients, '--clients');
  positiveInteger(load.pipeline, '--pipeline');
  if (!(plan.durationUs > 0)) throw new PaxosStoreError('INVALID_ARGUMENT', '--duration must be positive');
  if (!(plan.warmupUs >= 0)) throw new PaxosStoreError('INVALID_ARGUMENT', '--warmup must not be negative');
  if (!(plan.timeoutUs > 0)) throw new PaxosStoreError('INVALID_ARGUMENT', '--timeout-ms must be positive');
  if (!(plan.intervalUs > 0)) throw new PaxosStoreError('INVALID_ARGUMENT', 'the time-series interval must be positive');
  if (load.kind === 'open') {
    if (!(load.ratePerSecond > 0 && Number.isFinite(load.ratePerSecond))) throw new PaxosStoreError('INVALID_ARGUMENT', `--rate must be positive, got ${load.ratePerSecond}`);
    if ((load.ratePerSecond * plan.timeoutUs) / 1e6 > OPEN_LOOP_BACKLOG_MAX) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `--rate × --timeout-ms allows more than ${OPEN_LOOP_BACKLOG_MAX} queued operations; lower one of them`);
    }
  }
}

interface InFlight {
  readonly deadlineUs: number;
  /** Cleared once the operation settled (reply, error or timeout). */
  onTimeout: (() => void) | undefined;
}

/**
 * Runs one operation, settling at the reply or at intended + timeout, whichever is first.
 *
 * Both generators send in order of intended time, so deadlines arrive in order: a FIFO of
 * in-flight operations with ONE clock timer for its head replaces a timer per operation (which
 * cost more than the send itself at tens of thousands of operations per second).
 */
class OperationRunner {
  private readonly queue: InFlight[] = [];
  private queueHead = 0;
  private timerDeadlineUs = Number.POSITIVE_INFINITY;
  private cancelTimer: () => void = () => {};

  constructor(
    private readonly dependencies: RunDependencies,
    private readonly recorder: LatencyRecorder,
    private readonly timeoutUs: number,
  ) {}

  run(client: number, operation: BenchOperation, intendedUs: number): Promise<void> {
    const { clock, target, workload } = this.dependencies;
    this.recorder.recordSendLag(intendedUs, clock.nowUs());
    return new Promise<void>((resolve) => {
      const entry: InFlight = {
        deadlineUs: intendedUs + this.timeoutUs,
        onTimeout: () => {
          workload.completed(operation);
          this.recorder.recordTimeout(operation.type, intendedUs, clock.nowUs());
          resolve();
        },
      };
      this.enqueue(entry);
      const finish = (error: unknown, failed: boolean): void => {
        if (entry.onTimeout === undefined) return;
        entry.onTimeout = undefined;
        workload.completed(operation);
        if (failed) this.recorder.recordError(operation.type, intendedUs, clock.nowUs(), error);
        else this.recorder.recordSuccess(operation.type, intendedUs, clock.nowUs());
        resolve();
      };
      target.execute(client, operation).then(
        () => finish(undefined, false),
        (error: unknown) => finish(error, true),
      );
    });
  }

  /** Called once every operation settled: drops the head timer so the process can exit. */
  stop(): void {
    this.cancelTimer();
    this.timerDeadlineUs = Number.POSITIVE_INFINITY;
    this.queue.length = 0;
    this.queueHead = 0;
  }

  private enqueue(entry: InFlight): void {
    const last = this.queue[this.queue.length - 1];
    assert(this.queueHead === this.queue.length || last.deadlineUs <= entry.deadlineUs, 'operations are sent in intended-time order');
    this.queue.push(entry);
    if (this.queueHead === this.queue.length - 1) this.armTimer();
  }

  private armTimer(): void {
    const head = this.queue[this.queueHead];
    if (head === undefined || head.deadlineUs === this.timerDeadlineUs) return;
    this.cancelTimer();
    this.timerDeadlineUs = head.deadlineUs;
    this.cancelTimer = this.dependencies.clock.setTimer(head.deadlineUs, () => this.expire());
  }

  private expire(): void {
    this.timerDeadlineUs = Number.POSITIVE_INFINITY;
    const nowUs = this.dependencies.clock.nowUs();
    while (this.queueHead < this.queue.length) {
      const head = this.queue[this.queueHead];
      if (head.onTimeout !== undefined && head.deadlineUs > nowUs) break;
      this.queueHead++;
      const onTimeout = head.onTimeout;
      head.onTimeout = undefined;
      onTimeout?.();
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 4096 && this.queueHead * 2 > this.queue.length) {
      this.queue.splice(0, this.queueHead);
      this.queueHead = 0;
    }
    this.armTimer();
  }
}

async function runClosedLoop(plan: RunPlan, dependencies: RunDependencies, runner: OperationRunner, window: RunWindow): Promise<void> {
  const { clock, workload, random } = dependencies;
  const lanes: Promise<void>[] = [];
  for (let client = 0; client < plan.load.clients; client++) {
    for (let lane = 0; lane < plan.load.pipeline; lane++) {
      lanes.push(
        (async () => {
          while (clock.nowUs() < window.endUs) {
            const intendedUs = clock.nowUs();
            await runner.run(client, workload.next(random), intendedUs);
          }
        })(),
      );
    }
  }
  await Promise.all(lanes);
}

/** Due times of the open-loop schedule, in order. */
export function* arrivalTimes(startUs: number, endUs: number, ratePerSecond: number, arrival: ArrivalProcess, random: Random): Generator<number> {
  const meanGapUs = 1e6 / ratePerSecond;
  let timeUs = startUs;
  while (timeUs < endUs) {
    yield timeUs;
    // Poisson arrivals: exponential gaps, -ln(1-u) × mean (u < 1 so the log is finite).
    timeUs += arrival === 'uniform' ? meanGapUs : -Math.log(1 - random.float()) * meanGapUs;
  }
}

async function runOpenLoop(
  plan: RunPlan,
  load: Extract<LoadModel, { kind: 'open' }>,
  dependencies: RunDependencies,
  runner: OperationRunner,
  recorder: LatencyRecorder,
  startUs: number,
  window: RunWindow,
): Promise<void> {
  const { clock, workload, random } = dependencies;
  const freeClients: number[] = [];
  for (let lane = 0; lane < load.pipeline; lane++) for (let client = 0; client < load.clients; client++) freeClients.push(client);
  const backlog: number[] = [];
  let backlogHead = 0;
  let inFlight = 0;
  let allInFlightDone: (() => void) | undefined;

  const dispatch = (): void => {
    while (backlogHead < backlog.length && freeClients.length > 0) {
      const intendedUs = backlog[backlogHead++];
      const operation = workload.next(random);
      if (clock.nowUs() >= intendedUs + plan.timeoutUs) {
        // Due so long ago that it timed out before a lane was free: counted, never silently skipped.
        workload.completed(operation);
        recorder.recordTimeout(operation.type, intendedUs, clock.nowUs());
        continue;
      }
      const client = freeClients.pop()!;
      inFlight++;
      void runner.run(client, operation, intendedUs).then(() => {
        inFlight--;
        freeClients.push(client);
        dispatch();
        if (inFlight === 0 && allInFlightDone) allInFlightDone();
      });
    }
    if (backlogHead === backlog.length) {
      backlog.length = 0;
      backlogHead = 0;
    } else if (backlogHead > 65_536 && backlogHead * 2 > backlog.length) {
      backlog.splice(0, backlogHead);
      backlogHead = 0;
    }
  };

  const schedule = arrivalTimes(startUs, window.endUs, load.ratePerSecond, load.arrival, random);
  let next = schedule.next();
  while (!next.done && next.value < window.endUs) {
    await clock.sleepUntilUs(next.value);
    const nowUs = clock.nowUs();
    while (!next.done && next.value <= nowUs && next.value < window.endUs) {
      backlog.push(next.value);
      next = schedule.next();
    }
    assert(backlog.length - backlogHead <= OPEN_LOOP_BACKLOG_MAX + load.clients * load.pipeline, 'open-loop backlog is bounded by rate × timeout');
    dispatch();
  }
  // Drain: the backlog empties as lanes free up (or as its entries time out), then in-flight work ends.
  while (backlogHead < backlog.length || inFlight > 0) {
    await new Promise<void>((resolve) => {
      allInFlightDone = resolve;
      // Backlog entries whose time is up are counted even when no lane frees (every lane hung).
      const cancel = clock.setTimer(clock.nowUs() + Math.min(plan.timeoutUs, 100_000), resolve);
      if (inFlight === 0) {
        cancel();
        resolve();
      }
    });
    allInFlightDone = undefined;
    dispatch();
  }
}

export function assertTargetCanRun(target: Pick<BenchTarget, 'name' | 'supportsScan'>, workload: Workload): void {
  if (!target.supportsScan && workload.operationTypes.includes('scan')) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `the ${target.name} target has no multi-key read, so it cannot run scans (workload E or a mix with scan); use --target resp`);
  }
}

/** Drives `target` per `plan`; returns the statistics of the measured window. */
export async function runLoad(plan: RunPlan, dependencies: RunDependencies): Promise<RunStatistics> {
  validatePlan(plan);
  const { clock, workload, target } = dependencies;
  assertTargetCanRun(target, workload);
  const startUs = clock.nowUs();
  const measureStartUs = startUs + plan.warmupUs;
  const endUs = measureStartUs + plan.durationUs;
  const recorder = new LatencyRecorder(measureStartUs, endUs, plan.intervalUs);
  const runner = new OperationRunner(dependencies, recorder, plan.timeoutUs);
  const window: RunWindow = { endUs };
  let interrupted = false;
  const interrupt = (): void => {
    interrupted = true;
    window.endUs = Math.min(window.endUs, clock.nowUs());
    recorder.endEarly(window.endUs);
  };
  if (dependencies.signal?.aborted) interrupt();
  dependencies.signal?.addEventListener('abort', interrupt);
  const stopProgress = startProgress(plan, dependencies, recorder, startUs, measureStartUs, endUs);
  try {
    if (plan.load.kind === 'closed') await runClosedLoop(plan, dependencies, runner, window);
    else await runOpenLoop(plan, plan.load, dependencies, runner, recorder, startUs, window);
  } finally {
    stopProgress();
    runner.stop();
    dependencies.signal?.removeEventListener('abort', interrupt);
  }
  return { ...recorder.statistics(workload.operationTypes), interrupted };
}

function startProgress(plan: RunPlan, dependencies: RunDependencies, recorder: LatencyRecorder, startUs: number, measureStartUs: number, endUs: number): () => void {
  const { onProgress, clock } = dependencies;
  if (!onProgress) return () => {};
  const intervalUs = dependencies.progressIntervalUs ?? 250_000;
  let cancel: () => void = () => {};
  const tick = (): void => {
    const nowUs = clock.nowUs();
    const phase = nowUs < measureStartUs ? 'warmup' : nowUs < endUs ? 'measure' : 'drain';
    onProgress({ phase, elapsedUs: nowUs - startUs, totalUs: plan.warmupUs + plan.durationUs, completed: recorder.completedCount, failed: recorder.failedCount });
    cancel = clock.setTimer(nowUs + intervalUs, tick);
  };
  cancel = clock.setTimer(startUs + intervalUs, tick);
  return () => cancel();
}
