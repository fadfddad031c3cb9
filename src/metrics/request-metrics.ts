/**
 * The per-request metrics every front end records: a count per (front end, operation, outcome)
 * and a latency summary per (front end, operation). Shared by HTTP, WebSocket and RESP so the
 * names and labels agree.
 *
 *   paxosstore_requests_total{frontend, operation, outcome}          counter  (outcome: ok or an error code)
 *   paxosstore_request_duration_seconds{frontend, operation}         summary  (quantiles 0.5 … 0.999)
 */
import type { ErrorCode } from '../errors.js';
import type { Counter, MetricFamily, MetricsRegistry, Summary } from './registry.js';

export type Frontend = 'http' | 'ws' | 'resp';
export type RequestOutcome = 'ok' | ErrorCode;

export class RequestMetrics {
  private readonly requests: MetricFamily<Counter>;
  private readonly durations: MetricFamily<Summary>;
  /** Hot-path cache: `frontend/operation/outcome` → its series, to skip building label keys per request. */
  private readonly counters = new Map<string, Counter>();
  private readonly summaries = new Map<string, Summary>();

  constructor(registry: MetricsRegistry) {
    this.requests = registry.counter({
      name: 'paxosstore_requests_total',
      help: 'Requests served, by front end, operation and outcome (ok or an error code).',
      labelNames: ['frontend', 'operation', 'outcome'],
    });
    this.durations = registry.summary({
      name: 'paxosstore_request_duration_seconds',
      help: 'Time from a request being read to its reply being written, by front end and operation.',
      labelNames: ['frontend', 'operation'],
      valueScale: 1e-6,
    });
  }

  /** Records one finished request; `durationUs` in microseconds. */
  record(frontend: Frontend, operation: string, outcome: RequestOutcome, durationUs: number): void {
    const counterKey = `${frontend}/${operation}/${outcome}`;
    let counter = this.counters.get(counterKey);
    if (counter === undefined) {
      counter = this.requests.with({ frontend, operation, outcome });
      this.counters.set(counterKey, counter);
    }
    counter.inc();
    const summaryKey = `${frontend}/${operation}`;
    let summary = this.summaries.get(summaryKey);
    if (summary === undefined) {
      summary = this.durations.with({ frontend, operation });
      this.summaries.set(summaryKey, summary);
    }
    summary.observe(durationUs);
  }
}
