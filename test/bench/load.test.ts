import { describe, expect, it } from 'vitest';
import { type BenchClock, SimulatedClock } from '../../src/bench/clock.js';
import { arrivalTimes, type LoadModel, runLoad } from '../../src/bench/load.js';
import { LatencyRecorder } from '../../src/bench/recorder.js';
import type { BenchTarget } from '../../src/bench/targets/types.js';
import { Workload } from '../../src/bench/workload.js';
import { PaxosStoreError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';

/** A server on the simulated clock: each request takes `serviceUs`, and nothing completes during the stall. */
class StallingTarget implements BenchTarget {
  readonly name = 'resp' as const;
  readonly supportsScan = true;
  requests = 0;

  constructor(
    private readonly clock: BenchClock,
    private readonly serviceUs: number,
    private readonly stallStartUs: number,
    private readonly stallEndUs: number,
    private readonly failEvery = 0,
  ) {}

  async execute(): Promise<void> {
    this.requests++;
    const nowUs = this.clock.nowUs();
    const beginUs = nowUs >= this.stallStartUs && nowUs < this.stallEndUs ? this.stallEndUs : nowUs;
    await this.clock.sleepUntilUs(beginUs + this.serviceUs);
    if (this.failEvery > 0 && this.requests % this.failEvery === 0) throw new PaxosStoreError('OVERLOADED', 'simulated overload');
  }

  async close(): Promise<void> {}
}

function readOnlyWorkload(): Workload {
  return new Workload({ mix: { read: 1 }, distribution: 'uniform', keyCount: 1000, valueSizeBytes: 8, keyPrefix: 'k:', scanLengthMax: 1 }, new Random(1));
}

async function simulate(load: LoadModel, target: (clock: SimulatedClock) => BenchTarget, timeoutUs = 5_000_000) {
  const clock = new SimulatedClock();
  const plan = { load, warmupUs: 0, durationUs: 2_000_000, timeoutUs, intervalUs: 250_000 };
  const statistics = await clock.run(runLoad(plan, { target: target(clock), workload: readOnlyWorkload(), clock, random: new Random(9) }));
  return statistics;
}

describe('latency statistics', () => {
  it('reports the percentiles of a fixed latency set', () => {
    const recorder = new LatencyRecorder(0, 1_000_000, 1_000_000);
    // 1..1000 ms, each once: pN is N% of 1000 ms.
    for (let ms = 1; ms <= 1000; ms++) recorder.recordSuccess('read', 0, ms * 1000);
    const { total, operations } = recorder.statistics(['read']);
    const latency = operations[0].latencyMs!;
    // HdrHistogram with 3 significant digits: values are exact to 0.1%.
    expect(latency.p50).toBeCloseTo(500, -0.5);
    expect(latency.p90).toBeCloseTo(900, -0.5);
    expect(latency.p99).toBeCloseTo(990, -0.5);
    expect(latency.p999).toBeCloseTo(999, -0.5);
    expect(latency.max).toBeCloseTo(1000, -0.5);
    expect(latency.min).toBe(1);
    // HdrHistogram reports a bucket's top; the summary never claims a percentile above the max.
    expect(latency.p999).toBeLessThanOrEqual(latency.max);
    expect(latency.mean).toBeCloseTo(500.5, 0);
    expect(total.count).toBe(1000);
    expect(total.throughputPerSecond).toBe(1000);
    const curve = operations[0].percentileCurve;
    expect(curve[0][0]).toBe(0);
    expect(curve.at(-1)).toEqual([100, latency.max]);
    for (let i = 1; i < curve.length; i++) {
      expect(curve[i][0]).toBeGreaterThan(curve[i - 1][0]);
      expect(curve[i][1]).toBeGreaterThanOrEqual(curve[i - 1][1]);
    }
  });

  it('time series: each interval keeps its own count and p99, also for a completion older than the current interval', () => {
    const recorder = new LatencyRecorder(0, 3_000_000, 1_000_000);
    // Interval 0: 100 × 1 ms; interval 2: 100 × 50 ms; then, late, one 900 ms completion in interval 1.
    for (let i = 0; i < 100; i++) recorder.recordSuccess('read', 0, 1000);
    for (let i = 0; i < 100; i++) recorder.recordSuccess('read', 2_000_000, 2_050_000);
    recorder.recordSuccess('read', 100_000, 1_000_000);
    const { timeSeries, total } = recorder.statistics(['read']);
    expect(timeSeries.map((interval) => interval.throughputPerSecond)).toEqual([100, 1, 100]);
    expect(timeSeries.map((interval) => interval.p99Ms)).toEqual([1, 900, 50]);
    expect(total.count).toBe(201);
    expect(total.latencyMs!.max).toBeCloseTo(900, -0.5);
  });

  it('excludes warm-up operations and counts errors and timeouts separately', () => {
    const recorder = new LatencyRecorder(1_000_000, 2_000_000, 500_000);
    recorder.recordSuccess('read', 500_000, 600_000); // warm-up: not measured
    recorder.recordSuccess('read', 1_000_000, 1_002_000);
    recorder.recordError('update', 1_100_000, 1_101_000, new PaxosStoreError('CONTENTION'));
    recorder.recordTimeout('update', 1_200_000, 1_700_000);
    const statistics = recorder.statistics(['read', 'update']);
    expect(statistics.operations[0]).toMatchObject({ count: 1, errors: 0, timeouts: 0 });
    expect(statistics.operations[1]).toMatchObject({ count: 0, errors: 1, timeouts: 1, latencyMs: null });
    expect(statistics.total).toMatchObject({ count: 1, errors: 1, timeouts: 1 });
    expect(statistics.errorSamples).toEqual([{ message: 'CONTENTION: too much contention on this key; retry', count: 1 }]);
    expect(statistics.timeSeries.map((interval) => interval.errors)).toEqual([1, 1]);
  });
});

describe('load generators on a simulated server that stalls 1 s in a 2 s run', () => {
  const stall = (serviceUs: number) => (clock: SimulatedClock) => new StallingTarget(clock, serviceUs, 500_000, 1_500_000);

  it('open loop at 1000 ops/s measures from the intended time: p50 reflects the stall', async () => {
    const statistics = await simulate({ kind: 'open', clients: 1, pipeline: 1, ratePerSecond: 1000, arrival: 'uniform' }, stall(500));
    const { total } = statistics;
    expect(total.count).toBe(2000);
    expect(total.errors + total.timeouts).toBe(0);
    // 1500 of 2000 operations were due during the stall or queued behind it: from 1000 ms down to 250 ms.
    expect(total.latencyMs!.p50).toBeGreaterThan(500);
    expect(total.latencyMs!.p90).toBeGreaterThan(850);
    expect(total.latencyMs!.max).toBeCloseTo(1000.5, 0);
    expect(total.latencyMs!.min).toBeCloseTo(0.5, 1);
    // The generator itself was on time: the lateness is the server's, shown as send lag.
    expect(statistics.sendLagMs!.max).toBeGreaterThan(900);
  });

  it('closed loop on the same server hides the stall below p99 (coordinated omission)', async () => {
    const { total } = await simulate({ kind: 'closed', clients: 1, pipeline: 1 }, stall(500));
    expect(total.errors + total.timeouts).toBe(0);
    expect(total.latencyMs!.p50).toBeCloseTo(0.5, 1);
    expect(total.latencyMs!.p99).toBeLessThan(1);
    expect(total.latencyMs!.max).toBeGreaterThan(999);
  });

  it('open loop with enough lanes: only operations due during the stall wait', async () => {
    const statistics = await simulate({ kind: 'open', clients: 50, pipeline: 25, ratePerSecond: 1000, arrival: 'uniform' }, stall(1000));
    const { total } = statistics;
    expect(total.count).toBe(2000);
    expect(total.latencyMs!.p50).toBeLessThan(10);
    expect(total.latencyMs!.p90).toBeGreaterThan(700);
    // The time series shows the completions bunched at the end of the stall and the p99 spike there.
    const p99s = statistics.timeSeries.map((interval) => interval.p99Ms ?? 0);
    expect(Math.max(...p99s)).toBeGreaterThan(900);
    expect(statistics.timeSeries[0].p99Ms).toBeCloseTo(1, 1);
    expect(statistics.timeSeries[1].throughputPerSecond).toBe(1000);
    expect(statistics.timeSeries[3].throughputPerSecond).toBe(0);
  });

  it('counts every scheduled operation as a timeout when the server never answers', async () => {
    const hang = (clock: SimulatedClock) => new StallingTarget(clock, 1000, 0, 1e12);
    const { total } = await simulate({ kind: 'open', clients: 2, pipeline: 2, ratePerSecond: 500, arrival: 'poisson' }, hang, 300_000);
    expect(total.count).toBe(0);
    expect(total.errors).toBe(0);
    // Poisson arrivals: about 1000 in 2 s; all accounted for.
    expect(total.timeouts).toBeGreaterThan(850);
    expect(total.timeouts).toBeLessThan(1150);
  });

  it('counts errors from the target', async () => {
    const failing = (clock: SimulatedClock) => new StallingTarget(clock, 1000, 0, 0, 4);
    const { total, errorSamples } = await simulate({ kind: 'open', clients: 4, pipeline: 1, ratePerSecond: 1000, arrival: 'uniform' }, failing);
    expect(total.count + total.errors).toBe(2000);
    expect(total.errors).toBe(500);
    expect(errorSamples[0]).toEqual({ message: 'OVERLOADED: simulated overload', count: 500 });
  });
});

describe('interruption', () => {
  it.each([
    { kind: 'open', clients: 4, pipeline: 4, ratePerSecond: 1000, arrival: 'uniform' },
    { kind: 'closed', clients: 1, pipeline: 1 },
  ] as const)('an abort after 1 s of a 2 s $kind-loop run cuts the window there and keeps what was measured', async (load) => {
    const clock = new SimulatedClock();
    const controller = new AbortController();
    clock.setTimer(1_000_000, () => controller.abort());
    const target = new StallingTarget(clock, 1000, 0, 0);
    const plan = { load, warmupUs: 0, durationUs: 2_000_000, timeoutUs: 5_000_000, intervalUs: 250_000 };
    const statistics = await clock.run(runLoad(plan, { target, workload: readOnlyWorkload(), clock, random: new Random(1), signal: controller.signal }));
    expect(statistics.interrupted).toBe(true);
    expect(statistics.durationSeconds).toBe(1);
    expect(statistics.total.errors + statistics.total.timeouts).toBe(0);
    // 1000 ops/s for 1 s either way (open: the schedule; closed: one lane at 1 ms per operation).
    expect(Math.abs(statistics.total.count - 1000)).toBeLessThanOrEqual(1);
    expect(statistics.total.throughputPerSecond).toBeCloseTo(statistics.total.count, 6);
    expect(target.requests).toBeLessThanOrEqual(1001);
  });
});

describe('arrivals', () => {
  it('poisson gaps average 1/rate and uniform gaps are exact', () => {
    const poisson = [...arrivalTimes(0, 10_000_000, 1000, 'poisson', new Random(3))];
    expect(poisson.length).toBeGreaterThan(9700);
    expect(poisson.length).toBeLessThan(10_300);
    const uniform = [...arrivalTimes(0, 1_000_000, 1000, 'uniform', new Random(3))];
    expect(uniform.length).toBe(1000);
    expect(uniform[1] - uniform[0]).toBe(1000);
  });
});
