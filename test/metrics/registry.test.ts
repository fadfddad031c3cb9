import { describe, expect, test } from 'vitest';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { parsePrometheusText, sampleValue } from './prometheus-parser.js';

function registryWithClock() {
  const clock = { nowMs: 0 };
  const registry = new MetricsRegistry({ nowMs: () => clock.nowMs, windowMs: 1000 });
  return { clock, registry };
}

describe('Prometheus parser (the checker must be able to fail)', () => {
  test.each([
    ['sample without TYPE', 'x 1\n'],
    ['bad value', '# TYPE x counter\nx one\n'],
    ['unterminated label', '# TYPE x counter\nx{a="b} 1\n'],
    ['bad escape', '# TYPE x counter\nx{a="\\t"} 1\n'],
    ['bad label name', '# TYPE x counter\nx{1a="b"} 1\n'],
    ['quantile on _sum', '# TYPE x summary\nx_sum{quantile="0.5"} 1\n'],
    ['missing newline', '# TYPE x counter\nx 1'],
    ['negative counter', '# TYPE x counter\nx -1\n'],
    ['two TYPE lines', '# TYPE x counter\n# TYPE x gauge\n'],
  ])('rejects %s', (_, text) => {
    expect(() => parsePrometheusText(text)).toThrow();
  });

  test('accepts escapes, NaN, infinities and timestamps', () => {
    const families = parsePrometheusText(
      '# HELP x a \\\\ b\n# TYPE x gauge\nx{a="q\\"\\n\\\\"} NaN\nx{a="b"} +Inf 1700000000\nx{a="c"} -1.5e-3\n',
    );
    const samples = families.get('x')!.samples;
    expect(samples.map((sample) => sample.labels.a)).toEqual(['q"\n\\', 'b', 'c']);
    expect(samples[0].value).toBeNaN();
    expect(samples[1].value).toBe(Number.POSITIVE_INFINITY);
    expect(samples[2].value).toBe(-0.0015);
  });
});

describe('MetricsRegistry', () => {
  test('renders counters, gauges and summaries that parse, with exact values', () => {
    const { registry } = registryWithClock();
    const requests = registry.counter({ name: 'test_requests_total', help: 'Requests.', labelNames: ['op'] });
    requests.with({ op: 'get' }).inc();
    requests.with({ op: 'get' }).inc(2);
    requests.with({ op: 'set' }).inc();
    registry.gauge({ name: 'test_open', help: 'Open "things"\nsecond line.' }).with().set(-3);
    const latency = registry.summary({ name: 'test_latency_seconds', help: 'Latency.', labelNames: ['op'], valueScale: 1e-6 });
    for (let micros = 1; micros <= 1000; micros++) latency.with({ op: 'get' }).observe(micros);

    const families = parsePrometheusText(registry.render());
    expect(families.get('test_requests_total')?.type).toBe('counter');
    expect(sampleValue(families, 'test_requests_total', 'test_requests_total', { op: 'get' })).toBe(3);
    expect(sampleValue(families, 'test_requests_total', 'test_requests_total', { op: 'set' })).toBe(1);
    expect(families.get('test_open')?.help).toBe('Open "things"\\nsecond line.');
    expect(sampleValue(families, 'test_open', 'test_open', {})).toBe(-3);
    const summary = (name: string, labels: Record<string, string>) =>
      sampleValue(families, 'test_latency_seconds', name, labels);
    expect(summary('test_latency_seconds_count', { op: 'get' })).toBe(1000);
    expect(summary('test_latency_seconds_sum', { op: 'get' })).toBeCloseTo(0.5005, 9);
    // HDR histogram with 2 significant digits: within 1 %.
    expect(summary('test_latency_seconds', { op: 'get', quantile: '0.5' })).toBeCloseTo(0.0005, 5);
    expect(summary('test_latency_seconds', { op: 'get', quantile: '0.99' })).toBeGreaterThan(0.00098);
    expect(summary('test_latency_seconds', { op: 'get', quantile: '0.99' })).toBeLessThan(0.001002);
  });

  test('label values with quotes, backslashes and newlines survive the round trip', () => {
    const { registry } = registryWithClock();
    const weird = 'a"b\\c\nd';
    registry.counter({ name: 'test_weird_total', help: 'x', labelNames: ['key'] }).with({ key: weird }).inc();
    const families = parsePrometheusText(registry.render());
    expect(families.get('test_weird_total')!.samples[0].labels.key).toBe(weird);
  });

  test('snapshots from workers merge: sums by default, kept apart with extra labels, replaced per source', () => {
    const worker = (count: number, microseconds: number) => {
      const { registry } = registryWithClock();
      registry.counter({ name: 'test_fsyncs_total', help: 'Fsyncs.' }).with().inc(count);
      const summary = registry.summary({ name: 'test_fsync_seconds', help: 'Fsync.', valueScale: 1e-6 }).with();
      for (let i = 0; i < count; i++) summary.observe(microseconds);
      // What crosses the thread boundary: a structured clone.
      return structuredClone(registry.snapshot());
    };
    const { registry: main } = registryWithClock();
    main.mergeSnapshot('worker-0', worker(10, 100));
    main.mergeSnapshot('worker-1', worker(30, 1000));
    let families = parsePrometheusText(main.render());
    expect(sampleValue(families, 'test_fsyncs_total', 'test_fsyncs_total', {})).toBe(40);
    expect(sampleValue(families, 'test_fsync_seconds', 'test_fsync_seconds_count', {})).toBe(40);
    expect(sampleValue(families, 'test_fsync_seconds', 'test_fsync_seconds_sum', {})).toBeCloseTo(0.031, 9);
    expect(sampleValue(families, 'test_fsync_seconds', 'test_fsync_seconds', { quantile: '0.5' })).toBeCloseTo(0.001, 4);
    expect(sampleValue(families, 'test_fsync_seconds', 'test_fsync_seconds', { quantile: '0.9' })).toBeCloseTo(0.001, 4);

    main.mergeSnapshot('worker-1', worker(5, 1000)); // a newer snapshot replaces the older one
    main.mergeSnapshot('worker-2', worker(7, 50), { shard: '2' });
    families = parsePrometheusText(main.render());
    expect(sampleValue(families, 'test_fsyncs_total', 'test_fsyncs_total', {})).toBe(15);
    expect(sampleValue(families, 'test_fsyncs_total', 'test_fsyncs_total', { shard: '2' })).toBe(7);
    main.removeSource('worker-0');
    families = parsePrometheusText(main.render());
    expect(sampleValue(families, 'test_fsyncs_total', 'test_fsyncs_total', {})).toBe(5);
  });

  test('summary quantiles cover the last one to two windows; count and sum are for all time', () => {
    const { clock, registry } = registryWithClock();
    const summary = registry.summary({ name: 'test_size', help: 'Sizes.' }).with();
    summary.observe(1000);
    clock.nowMs = 1500; // second window: the first one is still reported
    summary.observe(10);
    let families = parsePrometheusText(registry.render());
    expect(sampleValue(families, 'test_size', 'test_size', { quantile: '0.999' })).toBeGreaterThanOrEqual(995);
    clock.nowMs = 2600; // third window: the first has aged out
    families = parsePrometheusText(registry.render());
    expect(sampleValue(families, 'test_size', 'test_size', { quantile: '0.999' })).toBe(10);
    clock.nowMs = 10_000; // long idle: nothing recent at all
    families = parsePrometheusText(registry.render());
    expect(sampleValue(families, 'test_size', 'test_size', { quantile: '0.5' })).toBeNaN();
    expect(sampleValue(families, 'test_size', 'test_size_count', {})).toBe(2);
    expect(sampleValue(families, 'test_size', 'test_size_sum', {})).toBe(1010);
  });

  test('collect hooks refresh gauges before rendering', () => {
    const { registry } = registryWithClock();
    let occupancy = 0;
    const gauge = registry.gauge({ name: 'test_ring_occupancy', help: 'Ring.' }).with();
    registry.onCollect(() => gauge.set(occupancy));
    occupancy = 17;
    expect(sampleValue(parsePrometheusText(registry.render()), 'test_ring_occupancy', 'test_ring_occupancy', {})).toBe(17);
  });

  test('misuse is an assertion failure', () => {
    const { registry } = registryWithClock();
    const family = registry.counter({ name: 'test_x_total', help: 'x', labelNames: ['a'] });
    expect(() => family.with({ b: '1' })).toThrow();
    expect(() => registry.gauge({ name: 'test_x_total', help: 'x' })).toThrow();
    expect(() => registry.counter({ name: 'bad-name', help: 'x' })).toThrow();
    expect(() => family.with({ a: '1' }).inc(-1)).toThrow();
  });
});
