/**
 * The HTML report: one self-contained file (no scripts, no network) with inline SVG charts drawn
 * here, so it opens anywhere, can be mailed, and renders the same in every browser.
 *
 *   - latency by percentile (HdrHistogram's plot): x = percentile on a log scale of 1/(1-p),
 *     so 90%, 99%, 99.9% … are evenly spaced and the tail is as visible as the median
 *   - throughput and p99 per time-series interval
 *   - for sweeps: throughput and p99 per setting, and every setting's percentile curve
 *   - the run's configuration and the result table; the full result as JSON in a
 *     <script type="application/json" id="bench-data"> block for machines
 */
import { describeLoad, describeWorkload } from './format.js';
import type { OperationStatistics } from './recorder.js';
import type { BenchResult } from './run.js';
import type { SweepResult } from './sweep.js';

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

interface Tick {
  readonly value: number;
  readonly label: string;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  /** Fixed x ticks (the percentile axis); evenly spaced numeric ticks when absent. */
  readonly xTicks?: readonly Tick[];
}

const WIDTH = 980;
const HEIGHT = 360;
const MARGIN = { left: 72, right: 290, top: 36, bottom: 48 };
/** Series with at most this many points are drawn with a marker on each point. */
const SPARSE_POINTS_MAX = 50;
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (character) => `&#${character.charCodeAt(0)};`);
}

/** 1, 2, 5 × 10^k steps giving about `count` ticks over [0, max]. */
function niceTicks(max: number, count: number): Tick[] {
  if (!(max > 0)) return [{ value: 0, label: '0' }];
  const rough = max / count;
  const power = 10 ** Math.floor(Math.log10(rough));
  const step = [1, 2, 5, 10].map((factor) => factor * power).find((candidate) => candidate >= rough) ?? rough;
  const ticks: Tick[] = [];
  // The last tick is the first at or above max: the axis always contains every point.
  for (let index = 0; index === 0 || ticks[index - 1].value < max; index++) {
    const value = index * step;
    ticks.push({ value, label: Number(value.toPrecision(6)).toLocaleString('en-US') });
  }
  return ticks;
}

const format = (value: number): string => value.toFixed(1);

export function renderLineChart(chart: LineChart): string {
  const allPoints = chart.series.flatMap((series) => series.points);
  const xTicks = chart.xTicks ?? niceTicks(Math.max(0, ...allPoints.map((point) => point[0])), 8);
  const yTicks = niceTicks(Math.max(0, ...allPoints.map((point) => point[1])) * 1.05, 6);
  const xMax = Math.max(xTicks.at(-1)!.value, ...allPoints.map((point) => point[0])) || 1;
  const yMax = yTicks.at(-1)!.value || 1;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number): number => MARGIN.left + (value / xMax) * plotWidth;
  const y = (value: number): number => MARGIN.top + plotHeight - (value / yMax) * plotHeight;
  const parts: string[] = [
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" role="img" aria-label="${escapeHtml(chart.title)}">`,
    `<text x="${MARGIN.left}" y="20" class="title">${escapeHtml(chart.title)}</text>`,
  ];
  for (const tick of yTicks) {
    parts.push(`<line class="grid" x1="${MARGIN.left}" x2="${MARGIN.left + plotWidth}" y1="${format(y(tick.value))}" y2="${format(y(tick.value))}"/>`);
    parts.push(`<text class="tick" x="${MARGIN.left - 6}" y="${format(y(tick.value) + 4)}" text-anchor="end">${escapeHtml(tick.label)}</text>`);
  }
  for (const tick of xTicks) {
    parts.push(`<line class="grid" x1="${format(x(tick.value))}" x2="${format(x(tick.value))}" y1="${MARGIN.top}" y2="${MARGIN.top + plotHeight}"/>`);
    parts.push(`<text class="tick" x="${format(x(tick.value))}" y="${MARGIN.top + plotHeight + 16}" text-anchor="middle">${escapeHtml(tick.label)}</text>`);
  }
  parts.push(`<rect class="frame" x="${MARGIN.left}" y="${MARGIN.top}" width="${plotWidth}" height="${plotHeight}"/>`);
  parts.push(`<text class="axis" x="${MARGIN.left + plotWidth / 2}" y="${HEIGHT - 8}" text-anchor="middle">${escapeHtml(chart.xLabel)}</text>`);
  parts.push(`<text class="axis" transform="translate(16 ${MARGIN.top + plotHeight / 2}) rotate(-90)" text-anchor="middle">${escapeHtml(chart.yLabel)}</text>`);
  chart.series.forEach((series, index) => {
    const color = COLORS[index % COLORS.length];
    if (series.points.length > 0) {
      const path = series.points.map((point, pointIndex) => `${pointIndex === 0 ? 'M' : 'L'}${format(x(point[0]))},${format(y(point[1]))}`).join(' ');
      parts.push(`<path class="series" data-series="${escapeHtml(series.name)}" d="${path}" stroke="${color}"/>`);
      // Sparse series (a sweep's settings, short runs) get markers: a lone point has no line to show.
      if (series.points.length <= SPARSE_POINTS_MAX) {
        for (const point of series.points) parts.push(`<circle class="marker" cx="${format(x(point[0]))}" cy="${format(y(point[1]))}" r="3.5" fill="${color}"/>`);
      }
    }
    const legendY = MARGIN.top + 8 + index * 18;
    parts.push(`<rect x="${WIDTH - MARGIN.right + 14}" y="${legendY - 8}" width="12" height="4" fill="${color}"/>`);
    parts.push(`<text class="legend" x="${WIDTH - MARGIN.right + 32}" y="${legendY}">${escapeHtml(series.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

/** x position of a percentile on the HDR axis: log10(1 / (1 - p)); the max (p = 100) sits at 1 - 1/count. */
export function percentileAxisValue(percentile: number, count: number): number {
  const remaining = percentile >= 100 ? 1 / Math.max(count, 2) : 1 - percentile / 100;
  return Math.log10(1 / Math.max(remaining, 1 / Math.max(count, 2)));
}

export function percentileSeries(name: string, statistics: OperationStatistics): Series {
  return { name, points: statistics.percentileCurve.map(([percentile, latencyMs]) => [percentileAxisValue(percentile, statistics.count), latencyMs] as const) };
}

function percentileTicks(series: readonly Series[]): Tick[] {
  const maxDecades = Math.max(1, Math.ceil(Math.max(0, ...series.flatMap((item) => item.points.map((point) => point[0]))) - 1e-9));
  const ticks: Tick[] = [{ value: 0, label: '0%' }];
  for (let decade = 1; decade <= maxDecades; decade++) ticks.push({ value: decade, label: `${(100 - 100 / 10 ** decade).toFixed(Math.max(0, decade - 2))}%` });
  return ticks;
}

function hdrChart(title: string, series: Series[]): string {
  return renderLineChart({ title, xLabel: 'percentile', yLabel: 'latency (ms)', series, xTicks: percentileTicks(series) });
}

function configTable(result: BenchResult | SweepResult): string {
  const config = result.config;
  const rows: [string, string][] = [
    ['workload', describeWorkload(config)],
    ['load', describeLoad(config.load)],
    ['target', `${config.target} ${config.endpoints.map((endpoint) => `${endpoint.host}:${endpoint.port}`).join(', ')}`],
    ['duration', `${config.durationSeconds} s after ${config.warmupSeconds} s warm-up; timeout ${config.timeoutMs} ms`],
    ['keys', `${config.keyPrefix}000000000000 … (${config.keyCount} keys${config.preload ? ', preloaded' : ''}); zipfian theta ${config.zipfianTheta}`],
    ['seed', String(config.seed)],
  ];
  return `<table class="config">${rows.map(([name, value]) => `<tr><th>${escapeHtml(name)}</th><td>${escapeHtml(value)}</td></tr>`).join('')}</table>`;
}

function resultTable(statistics: readonly OperationStatistics[]): string {
  const header = ['operation', 'ops/s', 'count', 'errors', 'timeouts', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'];
  const cell = (value: number | undefined): string => (value === undefined ? '-' : value.toFixed(3));
  const rows = statistics.map((item) =>
    [item.operation, item.throughputPerSecond.toFixed(1), item.count, item.errors, item.timeouts, cell(item.latencyMs?.p50), cell(item.latencyMs?.p90), cell(item.latencyMs?.p99), cell(item.latencyMs?.p999), cell(item.latencyMs?.max)]
      .map((value) => `<td>${escapeHtml(String(value))}</td>`)
      .join(''),
  );
  return `<table class="results"><tr>${header.map((name) => `<th>${name}</th>`).join('')}</tr>${rows.map((row) => `<tr>${row}</tr>`).join('')}</table>`;
}

function singleRunBody(result: BenchResult): string {
  const { statistics } = result;
  const operations = statistics.operations.length > 1 ? [...statistics.operations, statistics.total] : statistics.operations;
  const curves = operations.filter((item) => item.count > 0).map((item) => percentileSeries(item.operation, item));
  const throughput = { name: 'ops/s', points: statistics.timeSeries.map((interval) => [interval.startSeconds, interval.throughputPerSecond] as const) };
  const p99 = { name: 'p99 ms', points: statistics.timeSeries.filter((interval) => interval.p99Ms !== null).map((interval) => [interval.startSeconds, interval.p99Ms!] as const) };
  const errors = statistics.errorSamples.map((sample) => `<li>${sample.count} × ${escapeHtml(sample.message)}</li>`).join('');
  return [
    resultTable(operations),
    errors ? `<h2>Errors</h2><ul>${errors}</ul>` : '',
    `<h2>Latency by percentile</h2>`,
    hdrChart('latency by percentile', curves),
    `<h2>Over time</h2>`,
    renderLineChart({ title: 'throughput', xLabel: 'seconds into the measurement', yLabel: 'operations per second', series: [throughput] }),
    renderLineChart({ title: 'p99 latency', xLabel: 'seconds into the measurement', yLabel: 'p99 latency (ms)', series: [p99] }),
  ].join('\n');
}

function settingsLabel(settings: Readonly<Record<string, number>>): string {
  return Object.entries(settings)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ');
}

function sweepBody(sweep: SweepResult): string {
  const completed = sweep.runs.filter((run) => run.result !== null);
  const index = (run: (typeof completed)[number]): number => sweep.runs.indexOf(run) + 1;
  const throughput = { name: 'ops/s', points: completed.map((run) => [index(run), run.result!.statistics.total.throughputPerSecond] as const) };
  const p99 = { name: 'p99 ms', points: completed.filter((run) => run.result!.statistics.total.latencyMs).map((run) => [index(run), run.result!.statistics.total.latencyMs!.p99] as const) };
  const runTicks = [{ value: 0, label: '' }, ...sweep.runs.map((_, runIndex) => ({ value: runIndex + 1, label: `#${runIndex + 1}` }))];
  const curves = completed.filter((run) => run.result!.statistics.total.count > 0).map((run) => percentileSeries(`#${index(run)} ${settingsLabel(run.settings)}`, run.result!.statistics.total));
  const rows = sweep.runs
    .map((run, runIndex) => {
      const total = run.result?.statistics.total;
      const cells = [
        `#${runIndex + 1}`,
        settingsLabel(run.settings),
        total ? total.throughputPerSecond.toFixed(1) : 'failed',
        total?.latencyMs ? total.latencyMs.p50.toFixed(3) : '-',
        total?.latencyMs ? total.latencyMs.p99.toFixed(3) : '-',
        total?.latencyMs ? total.latencyMs.p999.toFixed(3) : '-',
        total ? String(total.errors + total.timeouts) : escapeHtml(run.error ?? ''),
      ];
      return `<tr>${cells.map((value) => `<td>${escapeHtml(value)}</td>`).join('')}</tr>`;
    })
    .join('');
  return [
    `<table class="results"><tr><th>run</th><th>settings</th><th>ops/s</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>errors + timeouts</th></tr>${rows}</table>`,
    `<h2>Throughput and p99 per setting</h2>`,
    renderLineChart({ title: 'throughput per setting', xLabel: 'run (see table)', yLabel: 'operations per second', series: [throughput], xTicks: runTicks }),
    renderLineChart({ title: 'p99 per setting', xLabel: 'run (see table)', yLabel: 'p99 latency (ms)', series: [p99], xTicks: runTicks }),
    `<h2>Latency by percentile, per setting</h2>`,
    hdrChart('latency by percentile (all operations)', curves),
  ].join('\n');
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
table { border-collapse: collapse; margin: 8px 0 16px; }
th, td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.config th, table.config td, table.results td:first-child { text-align: left; }
svg.chart { display: block; margin: 8px 0 24px; }
svg .grid { stroke: #e4e4e4; }
svg .frame { fill: none; stroke: #888; }
svg .series { fill: none; stroke-width: 2; }
svg .tick, svg .legend { font-size: 11px; fill: #444; }
svg .axis { font-size: 12px; fill: #222; }
svg .title { font-size: 14px; font-weight: 600; }
`;

export function isSweepResult(result: BenchResult | SweepResult): result is SweepResult {
  return 'runs' in result;
}

export function renderReport(result: BenchResult | SweepResult): string {
  const sweep = isSweepResult(result);
  const title = sweep ? 'paxosstore bench sweep' : 'paxosstore bench';
  const startedAt = sweep ? (result.runs.find((run) => run.result)?.result?.startedAt ?? '') : result.startedAt;
  // A `</script` inside the JSON would end the element early; \u003c is the same JSON string.
  const data = JSON.stringify(result).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<p>Started ${escapeHtml(startedAt)}. Latency is measured from each operation's intended send time${result.config.load.kind === 'open' ? ' (open loop: coordinated omission corrected)' : ' (closed loop: service time at this concurrency)'}.</p>
<h2>Configuration</h2>
${configTable(result)}
<h2>Results</h2>
${sweep ? sweepBody(result) : singleRunBody(result)}
<script type="application/json" id="bench-data">${data}</script>
</body>
</html>
`;
}
