/**
 * Renders collected metric families in the Prometheus text exposition format, version 0.0.4:
 *
 *   # HELP paxosstore_requests_total Requests served, by front end and operation.
 *   # TYPE paxosstore_requests_total counter
 *   paxosstore_requests_total{frontend="ws",operation="get",outcome="ok"} 1027
 *   # TYPE paxosstore_request_duration_seconds summary
 *   paxosstore_request_duration_seconds{frontend="ws",operation="get",quantile="0.99"} 0.000412
 *   paxosstore_request_duration_seconds_sum{frontend="ws",operation="get"} 0.31
 *   paxosstore_request_duration_seconds_count{frontend="ws",operation="get"} 1027
 *
 * One HELP and one TYPE line per family, then its samples; label values escape `\`, `"` and
 * newline; HELP text escapes `\` and newline; NaN and ±Inf are spelled `NaN`, `+Inf`, `-Inf`.
 */
import type { CollectedFamily, Labels } from './registry.js';

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export function renderPrometheus(families: readonly CollectedFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`);
    lines.push(`# TYPE ${family.name} ${family.type}`);
    if (family.type === 'summary') {
      for (const series of family.series) {
        for (const [quantile, value] of series.quantiles) {
          lines.push(sample(family.name, { ...series.labels, quantile: String(quantile) }, value));
        }
        lines.push(sample(`${family.name}_sum`, series.labels, series.sum));
        lines.push(sample(`${family.name}_count`, series.labels, series.count));
      }
    } else {
      for (const series of family.series) lines.push(sample(family.name, series.labels, series.value));
    }
  }
  return lines.length === 0 ? '' : `${lines.join('\n')}\n`;
}

function sample(name: string, labels: Labels, value: number): string {
  const names = Object.keys(labels);
  const labelText =
    names.length === 0 ? '' : `{${names.map((label) => `${label}="${escapeLabelValue(labels[label])}"`).join(',')}}`;
  return `${name}${labelText} ${formatValue(value)}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Number.POSITIVE_INFINITY) return '+Inf';
  if (value === Number.NEGATIVE_INFINITY) return '-Inf';
  // 15 significant digits: drops binary floating-point noise (0.000189 rather than 0.00018899999999999999).
  return String(Number(value.toPrecision(15)));
}

function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function escapeHelp(help: string): string {
  return help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}
