/**
 * Plain-text output: the result table of one run and the comparison table of a sweep.
 * Latencies in milliseconds, throughput in successful operations per second.
 */
import type { LoadModel } from './load.js';
import type { OperationStatistics } from './recorder.js';
import type { BenchConfig, BenchResult } from './run.js';
import type { SweepResult } from './sweep.js';
import { OPERATION_TYPES } from './workload.js';

function formatNumber(value: number, fractionDigits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: fractionDigits, maximumFractionDigits: fractionDigits });
}

/** Columns right-aligned except the first; every row has as many cells as the header. */
export function renderTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((cell, column) => Math.max(cell.length, ...rows.map((row) => row[column].length)));
  const line = (cells: readonly string[]): string =>
    cells.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]) : cell.padStart(widths[column]))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

const latencyCell = (value: number | undefined): string => (value === undefined ? '-' : formatNumber(value, 3));

export function describeLoad(load: LoadModel): string {
  const lanes = `${load.clients} clients × ${load.pipeline} in flight`;
  if (load.kind === 'closed') return `closed loop, ${lanes}`;
  return `open loop at ${formatNumber(load.ratePerSecond, 0)} ops/s (${load.arrival}), ${lanes}`;
}

export function describeWorkload(config: BenchConfig): string {
  const mix = OPERATION_TYPES.filter((type) => (config.mix[type] ?? 0) > 0)
    .map((type) => `${type} ${config.mix[type]}`)
    .join(', ');
  const name = config.workload === 'custom' ? 'custom mix' : `workload ${config.workload}`;
  return `${name} (${mix}; ${config.distribution} over ${formatNumber(config.keyCount, 0)} keys, ${config.valueSizeBytes}-byte values)`;
}

function operationRow(statistics: OperationStatistics): string[] {
  const latency = statistics.latencyMs ?? undefined;
  return [
    statistics.operation,
    formatNumber(statistics.throughputPerSecond, 1),
    String(statistics.count),
    String(statistics.errors),
    String(statistics.timeouts),
    latencyCell(latency?.p50),
    latencyCell(latency?.p90),
    latencyCell(latency?.p99),
    latencyCell(latency?.p999),
    latencyCell(latency?.max),
  ];
}

export function formatResult(result: BenchResult): string {
  const { config, statistics } = result;
  const endpoints = config.endpoints.map((endpoint) => `${endpoint.host}:${endpoint.port}`).join(',');
  const lines = [
    `paxosstore bench: ${describeWorkload(config)}`,
    `  ${config.target} → ${endpoints}; ${describeLoad(config.load)}; ${config.durationSeconds} s measured after ${config.warmupSeconds} s warm-up`,
  ];
  if (result.preload) {
    const preload = result.preload;
    lines.push(`  preloaded ${formatNumber(preload.keys, 0)} keys in ${formatNumber(preload.seconds, 2)} s, ${preload.errors} errors${preload.firstError ? ` (first: ${preload.firstError})` : ''}`);
  }
  if (statistics.interrupted) lines.push(`  INTERRUPTED: measured ${formatNumber(statistics.durationSeconds, 2)} s of the planned ${config.durationSeconds} s`);
  lines.push('');
  const header = ['operation', 'ops/s', 'count', 'errors', 'timeouts', 'p50 ms', 'p90 ms', 'p99 ms', 'p99.9 ms', 'max ms'];
  const rows = statistics.operations.map(operationRow);
  if (statistics.operations.length > 1) rows.push(operationRow(statistics.total));
  lines.push(renderTable(header, rows));
  if (config.load.kind === 'open' && statistics.sendLagMs) {
    const lag = statistics.sendLagMs;
    lines.push('', `send lag behind schedule (queueing for a free connection + generator delay): p50 ${latencyCell(lag.p50)} ms, p99 ${latencyCell(lag.p99)} ms, max ${latencyCell(lag.max)} ms`);
  }
  if (statistics.errorSamples.length > 0) {
    lines.push('', 'errors:');
    for (const sample of statistics.errorSamples) lines.push(`  ${sample.count} × ${sample.message}`);
  }
  return `${lines.join('\n')}\n`;
}

export function formatSweep(sweep: SweepResult): string {
  const header = [...sweep.parameters, 'ops/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'errors', 'timeouts'];
  const rows = sweep.runs.map((run) => {
    const settings = sweep.parameters.map((name) => String(run.settings[name]));
    if (!run.result) return [...settings, 'failed', '-', '-', '-', '-', '-'];
    const total = run.result.statistics.total;
    return [
      ...settings,
      formatNumber(total.throughputPerSecond, 1),
      latencyCell(total.latencyMs?.p50),
      latencyCell(total.latencyMs?.p99),
      latencyCell(total.latencyMs?.p999),
      String(total.errors),
      String(total.timeouts),
    ];
  });
  const failures = sweep.runs.filter((run) => run.error).map((run) => `  ${JSON.stringify(run.settings)}: ${run.error}`);
  const lines = [`paxosstore bench sweep: ${describeWorkload(sweep.config)}; ${describeLoad(sweep.config.load)}`, '', renderTable(header, rows)];
  const interrupted = sweep.runs.findIndex((run) => run.result?.statistics.interrupted);
  const planned = sweep.plannedRuns;
  if (interrupted !== -1 || sweep.runs.length < planned) {
    lines.push('', `INTERRUPTED: ${sweep.runs.length} of ${planned} settings ran${interrupted === -1 ? '' : `; the last one (row ${interrupted + 1}) only partly`}`);
  }
  if (failures.length > 0) lines.push('', 'failed settings:', ...failures);
  return `${lines.join('\n')}\n`;
}
