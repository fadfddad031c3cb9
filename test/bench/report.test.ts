import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { type BenchClock, SimulatedClock } from '../../src/bench/clock.js';
import { runLoad } from '../../src/bench/load.js';
import { percentileAxisValue, renderReport } from '../../src/bench/report.js';
import type { BenchConfig, BenchResult } from '../../src/bench/run.js';
import type { SweepResult } from '../../src/bench/sweep.js';
import type { BenchTarget } from '../../src/bench/targets/types.js';
import { WORKLOAD_PRESETS, Workload } from '../../src/bench/workload.js';
import { Random } from '../../src/util/random.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Latency grows with the key: a spread of values so the percentile curve has a shape. */
class SkewedTarget implements BenchTarget {
  readonly name = 'resp' as const;
  readonly supportsScan = true;
  constructor(private readonly clock: BenchClock) {}
  async execute(_client: number, operation: { type: string; key?: string }): Promise<void> {
    const index = Number(operation.key?.slice(-4) ?? 0);
    await this.clock.sleepUntilUs(this.clock.nowUs() + 200 + (index % 97) ** 2);
  }
  async close(): Promise<void> {}
}

const config: BenchConfig = {
  target: 'resp',
  endpoints: [{ host: '127.0.0.1', port: 7100 }],
  workload: 'A',
  ...WORKLOAD_PRESETS.A,
  zipfianTheta: 0.99,
  keyCount: 1000,
  valueSizeBytes: 100,
  keyPrefix: 'bench:<script>',
  scanLengthMax: 100,
  preload: false,
  load: { kind: 'open', clients: 8, pipeline: 32, ratePerSecond: 1000, arrival: 'poisson' },
  warmupSeconds: 0,
  durationSeconds: 2,
  timeoutMs: 5000,
  intervalMs: 250,
  connectTimeoutMs: 1000,
  seed: 1,
};

async function simulatedResult(seed: number): Promise<BenchResult> {
  const clock = new SimulatedClock();
  const workload = new Workload({ ...config }, new Random(seed));
  const statistics = await clock.run(
    runLoad(
      { load: config.load, warmupUs: 0, durationUs: 2_000_000, timeoutUs: 5_000_000, intervalUs: 250_000 },
      { target: new SkewedTarget(clock), workload, clock, random: new Random(seed) },
    ),
  );
  return { tool: 'paxosstore-bench', formatVersion: 1, startedAt: '2026-01-01T00:00:00.000Z', config, preload: null, statistics };
}

const directory = mkdtempSync(join(tmpdir(), 'bench-report-test-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

describe('HTML report', () => {
  it('places percentiles on a log axis: 90% at 1, 99% at 2, the max after the last sample', () => {
    expect(percentileAxisValue(0, 1000)).toBe(0);
    expect(percentileAxisValue(90, 1000)).toBeCloseTo(1, 9);
    expect(percentileAxisValue(99, 1000)).toBeCloseTo(2, 9);
    expect(percentileAxisValue(100, 1000)).toBeCloseTo(3, 9);
  });

  it('is self-contained: no external resources, no scripts to run, text escaped, data embedded', async () => {
    const result = await simulatedResult(1);
    const html = renderReport(result);
    expect(html).not.toMatch(/\b(src|href)=["']?(https?:)?\/\//);
    expect(html).not.toMatch(/<script(?! type="application\/json")/);
    expect(html).toContain('bench:&#60;script&#62;000000000000');
    const data = /<script type="application\/json" id="bench-data">([\s\S]*?)<\/script>/.exec(html)![1];
    expect(JSON.parse(data).statistics.total.count).toBe(result.statistics.total.count);
  });

  it.skipIf(!existsSync(CHROMIUM))(`renders its charts in headless Chromium (${CHROMIUM}; skipped when absent: apt-get install chromium)`, async () => {
    const { chromium } = await import('playwright-core');
    const single = await simulatedResult(1);
    const sweep: SweepResult = {
      parameters: ['socketsPerPeer'],
      plannedRuns: 3,
      config,
      runs: [
        { settings: { socketsPerPeer: 1 }, result: single, error: null },
        { settings: { socketsPerPeer: 2 }, result: await simulatedResult(2), error: null },
        { settings: { socketsPerPeer: 4 }, result: null, error: 'cluster not ready' },
      ],
    };
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    try {
      for (const [name, result, minimumCharts] of [
        ['single.html', single, 3],
        ['sweep.html', sweep, 3],
      ] as const) {
        const file = join(directory, name);
        writeFileSync(file, renderReport(result));
        const page = await browser.newPage();
        const external: string[] = [];
        const consoleErrors: string[] = [];
        page.on('console', (message) => message.type() === 'error' && consoleErrors.push(message.text()));
        await page.route('**/*', (route) => {
          if (route.request().url().startsWith('file:')) return route.continue();
          external.push(route.request().url());
          return route.abort();
        });
        await page.goto(pathToFileURL(file).href);
        const charts = await page.$$eval('svg.chart', (svgs) =>
          svgs.map((svg) => {
            // Typed structurally: the project compiles without the DOM lib.
            const paths = [...svg.querySelectorAll('path.series')] as unknown as {
              getAttribute(name: string): string | null;
              getTotalLength(): number;
              getBBox(): { width: number; height: number };
            }[];
            return {
              title: svg.querySelector('.title')?.textContent,
              width: svg.getBoundingClientRect().width,
              paths: paths.map((path) => ({ points: (path.getAttribute('d') ?? '').split(/[ML]/).length - 1, length: path.getTotalLength(), box: { width: path.getBBox().width, height: path.getBBox().height } })),
            };
          }),
        );
        expect(charts.length, name).toBeGreaterThanOrEqual(minimumCharts);
        const markers = await page.$$eval('svg.chart circle.marker', (circles) => circles.length);
        // Time series of 8 intervals (single run) or one point per setting (sweep) carry markers.
        expect(markers, name).toBeGreaterThanOrEqual(4);
        for (const chart of charts) {
          expect(chart.width).toBeGreaterThan(500);
          expect(chart.paths.length, `${name} ${chart.title}`).toBeGreaterThan(0);
          for (const path of chart.paths) expect(path.length, `${name} ${chart.title}`).toBeGreaterThan(100);
        }
        const hdr = charts.find((chart) => chart.title?.startsWith('latency by percentile'))!;
        // The percentile curve is drawn with many points and spans the plot both ways.
        expect(Math.max(...hdr.paths.map((path) => path.points))).toBeGreaterThan(40);
        expect(Math.max(...hdr.paths.map((path) => path.box.width))).toBeGreaterThan(400);
        expect(Math.max(...hdr.paths.map((path) => path.box.height))).toBeGreaterThan(100);
        // Drawn pixels, not only DOM: the chart's screenshot has many non-white pixels.
        const distinctBytes = new Set((await page.locator('svg.chart').first().screenshot()).subarray(0, 4096)).size;
        expect(distinctBytes).toBeGreaterThan(50);
        expect(external).toEqual([]);
        expect(consoleErrors).toEqual([]);
        await page.close();
      }
    } finally {
      await browser.close();
    }
  });
});
