/**
 * Latency and outcome recording. Latencies are integer microseconds in HdrHistograms (3
 * significant digits), one histogram per operation type, plus one per time-series interval for
 * the p99-over-time plot.
 *
 * Histograms that take a value per operation use plain 32-bit buckets: recording into a packed
 * histogram costs several times more (it was ~12% of the generator's CPU at 30k ops/s, and
 * reading percentiles out of packed ones took seconds at the end of a run). Only the intervals
 * the run has moved past are kept packed, so that a long run with many intervals stays small:
 * completions arrive in time order, so one 32-bit histogram takes the current interval's values
 * and is folded into that interval's packed histogram when the next interval begins.
 *
 * Every operation that was due in the measurement window ends in exactly one of three counters:
 * success (its latency is in the histogram), error, or timeout. Nothing is dropped: the
 * generator counts an operation it could not even send in time as a timeout.
 */
import * as hdr from 'hdr-histogram-js';
import type { OperationType } from './workload.js';

export interface LatencySummaryMs {
  readonly count: number;
  readonly min: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly p999: number;
  readonly max: number;
}

export interface OperationStatistics {
  readonly operation: OperationType | 'total';
  readonly count: number;
  readonly errors: number;
  readonly timeouts: number;
  /** Successful operations per second of measured time. */
  readonly throughputPerSecond: number;
  readonly latencyMs: LatencySummaryMs | null;
  /** [percentile 0..100, latency ms] points for the HDR plot, denser towards 100. */
  readonly percentileCurve: readonly (readonly [number, number])[];
}

export interface IntervalStatistics {
  readonly startSeconds: number;
  readonly throughputPerSecond: number;
  readonly p99Ms: number | null;
  readonly errors: number;
}

export interface ErrorSample {
  readonly message: string;
  readonly count: number;
}

export interface RunStatistics {
  readonly durationSeconds: number;
  readonly operations: readonly OperationStatistics[];
  readonly total: OperationStatistics;
  readonly timeSeries: readonly IntervalStatistics[];
  /** How late the generator sent operations relative to their intended time (open loop). */
  readonly sendLagMs: LatencySummaryMs | null;
  readonly errorSamples: readonly ErrorSample[];
  /** True when the run was cut short (Ctrl-C): the window, and so throughput, cover only what ran. */
  readonly interrupted: boolean;
}

/** Distinct error messages kept as samples; the rest are still counted. */
const ERROR_SAMPLES_MAX = 20;
/** HDR plot resolution: points per halving of the remaining percentile distance. */
const PERCENTILE_TICKS_PER_HALF = 5;

/** Fast to record into and to read percentiles from; ~60 KiB once it spans seconds of µs. */
function newHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 32, numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1 });
}

/** Small when sparse: the per-interval histograms of a long run. */
function newPackedHistogram(): hdr.Histogram {
  return hdr.build({ bitBucketSize: 'packed', numberOfSignificantValueDigits: 3, lowestDiscernibleValue: 1 });
}

const usToMs = (us: number): number => Math.round(us) / 1000;

/**
 * The value at a percentile in ms. HdrHistogram answers with the top of the value's bucket, which
 * can exceed the largest recorded value; clamp so that p99.9 ≤ max always holds in the output.
 */
function valueAtPercentileMs(histogram: hdr.Histogram, percentile: number): number {
  return usToMs(Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue));
}

export function summarize(histogram: hdr.Histogram): LatencySummaryMs | null {
  if (histogram.totalCount === 0) return null;
  return {
    count: histogram.totalCount,
    min: usToMs(histogram.minNonZeroValue),
    mean: usToMs(histogram.mean),
    p50: valueAtPercentileMs(histogram, 50),
    p90: valueAtPercentileMs(histogram, 90),
    p99: valueAtPercentileMs(histogram, 99),
    p999: valueAtPercentileMs(histogram, 99.9),
    max: usToMs(histogram.maxValue),
  };
}

/** Percentiles 0, 1-2^(-1/t), 1-2^(-2/t)… up to the last distinct sample, then 100 (the max). */
export function percentileCurve(histogram: hdr.Histogram): [number, number][] {
  const count = histogram.totalCount;
  if (count === 0) return [];
  const points: [number, number][] = [];
  const lastPercentile = 100 * (1 - 1 / count);
  for (let step = 0; ; step++) {
    const percentile = 100 * (1 - 0.5 ** (step / PERCENTILE_TICKS_PER_HALF));
    if (percentile > lastPercentile || step > 400) break;
    points.push([percentile, valueAtPercentileMs(histogram, percentile)]);
  }
  points.push([100, usToMs(histogram.maxValue)]);
  return points;
}

interface OperationCounters {
  readonly histogram: hdr.Histogram;
  errors: number;
  timeouts: number;
}

interface Interval {
  readonly histogram: hdr.Histogram;
  errors: number;
}

export class LatencyRecorder {
  private readonly perOperation = new Map<OperationType, OperationCounters>();
  private readonly intervals: Interval[] = [];
  /** Values of interval `currentIntervalIndex`, not yet folded into its packed histogram. */
  private readonly currentInterval = newHistogram();
  private currentIntervalIndex = 0;
  private readonly sendLag = newHistogram();
  private readonly errorCounts = new Map<string, number>();
  /** Outcomes so far, including warm-up: drives the live progress line. */
  completedCount = 0;
  failedCount = 0;

  constructor(
    private readonly measureStartUs: number,
    private measureEndUs: number,
    private readonly intervalUs: number,
  ) {}

  /** An interrupted run: the window ends at `timeUs` (never before it starts). */
  endEarly(timeUs: number): void {
    this.measureEndUs = Math.max(this.measureStartUs, Math.min(this.measureEndUs, timeUs));
  }

  /** Whether an operation intended at `intendedUs` belongs to the measurement (not warm-up, not after the end). */
  measures(intendedUs: number): boolean {
    return intendedUs >= this.measureStartUs && intendedUs < this.measureEndUs;
  }

  recordSuccess(operation: OperationType, intendedUs: number, completedUs: number): void {
    this.completedCount++;
    if (!this.measures(intendedUs)) return;
    const latencyUs = Math.max(1, Math.round(completedUs - intendedUs));
    this.counters(operation).histogram.recordValue(latencyUs);
    const index = this.intervalIndex(completedUs);
    if (index > this.currentIntervalIndex) this.foldCurrentInterval(index);
    // A completion older than the current interval (never from the generators, whose clock only
    // moves forward) goes straight into its own packed histogram.
    if (index === this.currentIntervalIndex) this.currentInterval.recordValue(latencyUs);
    else this.intervalAt(index).histogram.recordValue(latencyUs);
  }

  /** Moves the current interval's values into its packed histogram; interval `nextIndex` becomes the current one. */
  private foldCurrentInterval(nextIndex: number): void {
    if (this.currentInterval.totalCount > 0) {
      this.intervalAt(this.currentIntervalIndex).histogram.add(this.currentInterval);
      this.currentInterval.reset();
    }
    this.currentIntervalIndex = nextIndex;
  }

  recordError(operation: OperationType, intendedUs: number, completedUs: number, error: unknown): void {
    this.failedCount++;
    if (!this.measures(intendedUs)) return;
    this.counters(operation).errors++;
    this.interval(completedUs).errors++;
    this.sampleError(error);
  }

  recordTimeout(operation: OperationType, intendedUs: number, noticedUs: number): void {
    this.failedCount++;
    if (!this.measures(intendedUs)) return;
    this.counters(operation).timeouts++;
    this.interval(noticedUs).errors++;
  }

  recordSendLag(intendedUs: number, sentUs: number): void {
    if (this.measures(intendedUs)) this.sendLag.recordValue(Math.max(1, Math.round(sentUs - intendedUs)));
  }

  statistics(operationTypes: readonly OperationType[]): Omit<RunStatistics, 'interrupted'> {
    const durationSeconds = (this.measureEndUs - this.measureStartUs) / 1e6;
    const total = { histogram: newHistogram(), errors: 0, timeouts: 0 };
    const operations = operationTypes.map((type) => {
      const counters = this.counters(type);
      total.histogram.add(counters.histogram);
      total.errors += counters.errors;
      total.timeouts += counters.timeouts;
      return this.operationStatistics(type, counters, durationSeconds);
    });
    this.foldCurrentInterval(this.currentIntervalIndex);
    const intervalSeconds = this.intervalUs / 1e6;
    // Every interval of the window is reported, also those where nothing completed.
    while (this.intervals.length < this.intervalCount) this.intervals.push({ histogram: newPackedHistogram(), errors: 0 });
    const timeSeries = this.intervals.map((interval, index) => ({
      startSeconds: index * intervalSeconds,
      throughputPerSecond: interval.histogram.totalCount / intervalSeconds,
      p99Ms: interval.histogram.totalCount > 0 ? valueAtPercentileMs(interval.histogram, 99) : null,
      errors: interval.errors,
    }));
    const errorSamples = [...this.errorCounts.entries()].map(([message, count]) => ({ message, count })).sort((a, b) => b.count - a.count);
    return {
      durationSeconds,
      operations,
      total: this.operationStatistics('total', total, durationSeconds),
      timeSeries,
      sendLagMs: summarize(this.sendLag),
      errorSamples,
    };
  }

  private operationStatistics(operation: OperationType | 'total', counters: OperationCounters, durationSeconds: number): OperationStatistics {
    return {
      operation,
      count: counters.histogram.totalCount,
      errors: counters.errors,
      timeouts: counters.timeouts,
      throughputPerSecond: durationSeconds > 0 ? counters.histogram.totalCount / durationSeconds : 0,
      latencyMs: summarize(counters.histogram),
      percentileCurve: percentileCurve(counters.histogram),
    };
  }

  private counters(operation: OperationType): OperationCounters {
    let counters = this.perOperation.get(operation);
    if (!counters) {
      counters = { histogram: newHistogram(), errors: 0, timeouts: 0 };
      this.perOperation.set(operation, counters);
    }
    return counters;
  }

  private get intervalCount(): number {
    return Math.max(1, Math.ceil((this.measureEndUs - this.measureStartUs) / this.intervalUs));
  }

  /** The interval of a completion; completions during the drain after the window count in the last one. */
  private intervalIndex(timeUs: number): number {
    return Math.min(this.intervalCount - 1, Math.max(0, Math.floor((timeUs - this.measureStartUs) / this.intervalUs)));
  }

  private interval(timeUs: number): Interval {
    return this.intervalAt(this.intervalIndex(timeUs));
  }

  private intervalAt(index: number): Interval {
    while (this.intervals.length <= index) this.intervals.push({ histogram: newPackedHistogram(), errors: 0 });
    return this.intervals[index];
  }

  private sampleError(error: unknown): void {
    const code = (error as { code?: string } | null)?.code;
    const message = `${code ?? 'ERROR'}: ${error instanceof Error ? error.message : String(error)}`;
    const count = this.errorCounts.get(message);
    if (count !== undefined) this.errorCounts.set(message, count + 1);
    else if (this.errorCounts.size < ERROR_SAMPLES_MAX) this.errorCounts.set(message, 1);
    else this.errorCounts.set('(other errors)', (this.errorCounts.get('(other errors)') ?? 0) + 1);
  }
}
