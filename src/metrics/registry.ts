/**
 * A small metrics registry: counters, gauges and summaries (latency/size quantiles from an HDR
 * histogram), rendered in the Prometheus text exposition format 0.0.4 (./prometheus.ts).
 *
 * Storage and consensus metrics live in the shard workers, the front ends on the main thread.
 * Each worker keeps its own registry and periodically ships `snapshot()` (a plain, structured-
 * cloneable object) to the main thread, which stores it with `mergeSnapshot(source, snapshot,
 * extraLabels)`. Rendering adds up every series with the same name and labels across the local
 * registry and all sources: counters and gauges are summed, summaries merge their histograms.
 * Passing `extraLabels` such as `{ shard: '3' }` keeps a source's series apart instead.
 *
 *   worker k: registry.snapshot() ──postMessage──► main: registry.mergeSnapshot(`worker-${k}`, s)
 *                                                    │  (replaces worker k's previous snapshot)
 *                                  GET /metrics ◄────┘  render(): local + every source, summed
 *
 * Summaries report quantiles over a sliding window (the current and the previous window of
 * `windowMs`, so the figures reflect roughly the last one to two windows), and `_sum`/`_count`
 * over the whole life of the process, as Prometheus expects. Time comes from the injected
 * `nowMs` clock.
 */
import * as hdr from 'hdr-histogram-js';
import { assert } from '../util/assert.js';
import { renderPrometheus } from './prometheus.js';

export type Labels = Readonly<Record<string, string>>;
export type MetricType = 'counter' | 'gauge' | 'summary';

export interface MetricOptions {
  readonly name: string;
  readonly help: string;
  readonly labelNames?: readonly string[];
}

export interface SummaryOptions extends MetricOptions {
  /** Multiplier from the recorded integer unit to the rendered unit (1e-6: record µs, render seconds). */
  readonly valueScale?: number;
  /** Largest value recorded exactly; larger values are clamped to it. */
  readonly valueMax?: number;
  readonly quantiles?: readonly number[];
}

export interface RegistryOptions {
  readonly nowMs?: () => number;
  /** Length of one quantile window of the summaries. */
  readonly windowMs?: number;
}

/** Plain data a worker sends to the main thread; see mergeSnapshot. */
export interface MetricsSnapshot {
  readonly families: readonly FamilySnapshot[];
}

export type FamilySnapshot =
  | {
      readonly type: 'counter' | 'gauge';
      readonly name: string;
      readonly help: string;
      readonly series: readonly { readonly labels: Labels; readonly value: number }[];
    }
  | {
      readonly type: 'summary';
      readonly name: string;
      readonly help: string;
      readonly valueScale: number;
      readonly quantiles: readonly number[];
      readonly series: readonly SummarySeriesSnapshot[];
    };

export interface SummarySeriesSnapshot {
  readonly labels: Labels;
  readonly count: number;
  /** Sum of the recorded values, in the recorded (unscaled) unit. */
  readonly sum: number;
  /** HDR histogram of the current quantile window, compressed base64 (HdrHistogram's own encoding). */
  readonly window: string;
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const DEFAULT_QUANTILES = [0.5, 0.9, 0.99, 0.999] as const;
const DEFAULT_WINDOW_MS = 60_000;
/** One hour in microseconds: the default ceiling of a summary. */
const DEFAULT_VALUE_MAX = 3_600_000_000;

export class Counter {
  private value = 0;
  inc(amount = 1): void {
    assert(amount >= 0, 'a counter only goes up');
    this.value += amount;
  }
  get(): number {
    return this.value;
  }
}

export class Gauge {
  private value = 0;
  set(value: number): void {
    this.value = value;
  }
  inc(amount = 1): void {
    this.value += amount;
  }
  dec(amount = 1): void {
    this.value -= amount;
  }
  get(): number {
    return this.value;
  }
}

/** One series of a summary: cumulative count and sum, quantiles over a two-window sliding range. */
export class Summary {
  private count = 0;
  private sum = 0;
  private current: hdr.Histogram;
  private previous: hdr.Histogram;
  private windowStartMs: number;

  constructor(
    private readonly valueMax: number,
    private readonly windowMs: number,
    private readonly nowMs: () => number,
  ) {
    // 32-bit buckets for the two windows that take a value per request: recording into a packed
    // histogram costs ~2 µs, several times the rest of a WebSocket request's front-end work.
    this.current = newHistogram(valueMax, 32);
    this.previous = newHistogram(valueMax, 32);
    this.windowStartMs = nowMs();
  }

  /** Records one value in the summary's integer unit (negative values count as 0). */
  observe(value: number): void {
    this.rotate();
    const clamped = Math.min(Math.max(0, Math.round(value)), this.valueMax);
    this.current.recordValue(clamped);
    this.count += 1;
    this.sum += value;
  }

  snapshot(labels: Labels): SummarySeriesSnapshot {
    this.rotate();
    const window = newHistogram(this.valueMax, 'packed');
    window.add(this.previous);
    window.add(this.current);
    return { labels, count: this.count, sum: this.sum, window: hdr.encodeIntoCompressedBase64(window) };
  }

  private rotate(): void {
    const elapsedMs = this.nowMs() - this.windowStartMs;
    if (elapsedMs < this.windowMs) return;
    // Older than two windows: nothing of it is recent any more.
    if (elapsedMs >= 2 * this.windowMs) this.current.reset();
    [this.previous, this.current] = [this.current, this.previous];
    this.current.reset();
    this.windowStartMs = this.nowMs();
  }
}

function newHistogram(valueMax: number, bitBucketSize: 32 | 'packed'): hdr.Histogram {
  return hdr.build({
    bitBucketSize,
    autoResize: false,
    lowestDiscernibleValue: 1,
    highestTrackableValue: Math.max(2, valueMax),
    numberOfSignificantValueDigits: 2,
  });
}

type Family =
  | { readonly type: 'counter'; readonly options: MetricOptions; readonly series: Map<string, SeriesOf<Counter>> }
  | { readonly type: 'gauge'; readonly options: MetricOptions; readonly series: Map<string, SeriesOf<Gauge>> }
  | {
      readonly type: 'summary';
      readonly options: SummaryOptions;
      readonly series: Map<string, SeriesOf<Summary>>;
    };

interface SeriesOf<T> {
  readonly labels: Labels;
  readonly metric: T;
}

/** A labelled metric family: `family.with({ operation: 'get' })` returns (and caches) the series. */
export class MetricFamily<T> {
  constructor(
    private readonly labelNames: readonly string[],
    private readonly series: Map<string, SeriesOf<T>>,
    private readonly create: () => T,
  ) {}

  with(labels: Labels = {}): T {
    const key = labelKey(labels);
    const existing = this.series.get(key);
    if (existing !== undefined) return existing.metric;
    const names = Object.keys(labels);
    assert(
      names.length === this.labelNames.length && names.every((name) => this.labelNames.includes(name)),
      `labels {${names.join(',')}} do not match the declared label names {${this.labelNames.join(',')}}`,
    );
    const metric = this.create();
    this.series.set(key, { labels: { ...labels }, metric });
    return metric;
  }
}

export class MetricsRegistry {
  private readonly families = new Map<string, Family>();
  private readonly sources = new Map<string, { snapshot: MetricsSnapshot; extraLabels: Labels }>();
  private readonly collectHooks: (() => void)[] = [];
  private readonly nowMs: () => number;
  private readonly windowMs: number;

  constructor(options: RegistryOptions = {}) {
    this.nowMs = options.nowMs ?? (() => performance.now());
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
  }

  counter(options: MetricOptions): MetricFamily<Counter> {
    const family = this.register('counter', options) as Extract<Family, { type: 'counter' }>;
    return new MetricFamily(options.labelNames ?? [], family.series, () => new Counter());
  }

  gauge(options: MetricOptions): MetricFamily<Gauge> {
    const family = this.register('gauge', options) as Extract<Family, { type: 'gauge' }>;
    return new MetricFamily(options.labelNames ?? [], family.series, () => new Gauge());
  }

  summary(options: SummaryOptions): MetricFamily<Summary> {
    const family = this.register('summary', options) as Extract<Family, { type: 'summary' }>;
    const valueMax = options.valueMax ?? DEFAULT_VALUE_MAX;
    return new MetricFamily(
      options.labelNames ?? [],
      family.series,
      () => new Summary(valueMax, this.windowMs, this.nowMs),
    );
  }

  /** Runs `hook` before every snapshot or render: the place to refresh gauges read from elsewhere. */
  onCollect(hook: () => void): void {
    this.collectHooks.push(hook);
  }

  /** Everything this registry holds, as plain data (structured-cloneable, JSON-safe). */
  snapshot(): MetricsSnapshot {
    for (const hook of this.collectHooks) hook();
    const families: FamilySnapshot[] = [];
    for (const [name, family] of this.families) {
      const { help } = family.options;
      if (family.type === 'summary') {
        const series = [...family.series.values()].map(({ labels, metric }) => metric.snapshot(labels));
        families.push({
          type: 'summary',
          name,
          help,
          valueScale: family.options.valueScale ?? 1,
          quantiles: family.options.quantiles ?? DEFAULT_QUANTILES,
          series,
        });
      } else {
        const series = [...family.series.values()].map(({ labels, metric }) => ({ labels, value: metric.get() }));
        families.push({ type: family.type, name, help, series });
      }
    }
    return { families };
  }

  /** Stores (replacing any earlier one) the latest snapshot of `source`; its series get `extraLabels` added. */
  mergeSnapshot(source: string, snapshot: MetricsSnapshot, extraLabels: Labels = {}): void {
    this.sources.set(source, { snapshot, extraLabels });
  }

  /** Forgets a source (a worker that exited): its series stop contributing. */
  removeSource(source: string): void {
    this.sources.delete(source);
  }

  /** The local snapshot plus every source's, with series of equal name and labels combined, ready to render. */
  collect(): CollectedFamily[] {
    const parts = [{ snapshot: this.snapshot(), extraLabels: {} as Labels }, ...this.sources.values()];
    return combineSnapshots(parts);
  }

  /** The Prometheus text exposition (format 0.0.4) of collect(). */
  render(): string {
    return renderPrometheus(this.collect());
  }

  private register(type: MetricType, options: MetricOptions): Family {
    assert(METRIC_NAME.test(options.name), `invalid metric name ${options.name}`);
    for (const label of options.labelNames ?? []) {
      assert(LABEL_NAME.test(label) && !label.startsWith('__'), `invalid label name ${label}`);
    }
    const existing = this.families.get(options.name);
    if (existing !== undefined) {
      assert(existing.type === type, `metric ${options.name} registered as ${existing.type} and ${type}`);
      return existing;
    }
    const family = { type, options, series: new Map() } as Family;
    this.families.set(options.name, family);
    return family;
  }
}

/** Canonical key of a label set: sorted names, so {a,b} and {b,a} are the same series. */
export function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((name) => `${name}=${JSON.stringify(labels[name])}`)
    .join(',');
}

/** A family after combining all sources: what the Prometheus renderer prints. */
export type CollectedFamily =
  | {
      readonly type: 'counter' | 'gauge';
      readonly name: string;
      readonly help: string;
      readonly series: readonly { readonly labels: Labels; readonly value: number }[];
    }
  | {
      readonly type: 'summary';
      readonly name: string;
      readonly help: string;
      readonly series: readonly CollectedSummarySeries[];
    };

export interface CollectedSummarySeries {
  readonly labels: Labels;
  readonly count: number;
  /** Scaled to the rendered unit. */
  readonly sum: number;
  /** [quantile, value in the rendered unit]; NaN when the window holds no observation. */
  readonly quantiles: readonly (readonly [number, number])[];
}

type CombinedSeries = { labels: Labels; value: number } | { labels: Labels; count: number; sum: number; window: hdr.Histogram };

/** Sums counters and gauges and merges summaries across snapshots; a name seen with two types keeps the first. */
export function combineSnapshots(parts: readonly { snapshot: MetricsSnapshot; extraLabels: Labels }[]): CollectedFamily[] {
  const combined = new Map<string, { family: FamilySnapshot; series: Map<string, CombinedSeries> }>();
  for (const { snapshot, extraLabels } of parts) {
    for (const family of snapshot.families) {
      let entry = combined.get(family.name);
      if (entry === undefined) combined.set(family.name, (entry = { family, series: new Map() }));
      if (entry.family.type !== family.type) continue;
      for (const series of family.series) addSeries(entry.series, series, extraLabels);
    }
  }
  const families: CollectedFamily[] = [];
  for (const { family, series } of [...combined.values()].sort((a, b) => compareText(a.family.name, b.family.name))) {
    const sorted = [...series.entries()].sort((a, b) => compareText(a[0], b[0])).map(([, s]) => s);
    const { name, help } = family;
    if (family.type === 'summary') {
      const { valueScale, quantiles } = family;
      families.push({
        type: 'summary',
        name,
        help,
        series: sorted.map((s) => {
          assert('window' in s, 'summary series carries a histogram');
          return {
            labels: s.labels,
            count: s.count,
            sum: s.sum * valueScale,
            quantiles: quantiles.map(
              (q) => [q, s.window.totalCount === 0 ? Number.NaN : s.window.getValueAtPercentile(q * 100) * valueScale] as const,
            ),
          };
        }),
      });
    } else {
      families.push({ type: family.type, name, help, series: sorted.map((s) => ({ labels: s.labels, value: 'value' in s ? s.value : 0 })) });
    }
  }
  return families;
}

function addSeries(
  target: Map<string, CombinedSeries>,
  series: FamilySnapshot['series'][number],
  extraLabels: Labels,
): void {
  const labels = { ...series.labels, ...extraLabels };
  const key = labelKey(labels);
  const existing = target.get(key);
  if ('value' in series) {
    if (existing === undefined) target.set(key, { labels, value: series.value });
    else if ('value' in existing) existing.value += series.value;
    return;
  }
  const window = hdr.decodeFromCompressedBase64(series.window, 'packed', false);
  if (existing === undefined) target.set(key, { labels, count: series.count, sum: series.sum, window });
  else if ('window' in existing) {
    existing.count += series.count;
    existing.sum += series.sum;
    existing.window.add(window);
  }
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
