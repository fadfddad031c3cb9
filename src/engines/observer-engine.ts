/**
 * ObserverEngine: measures the layer below it (propose and sync latency, as seen from above) and
 * the layer above it (apply latency), in hdr histograms. Put one above every engine to see each
 * layer's cost without touching the engines themselves (Delos §6). Time comes from an injected
 * microsecond clock so the simulator and the figures script can both use it.
 */
import { build, type Histogram } from 'hdr-histogram-js';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine } from './layered-engine.js';
import type { IEngine, ReadOnlySnapshot, StackEntry, Transaction } from './types.js';

export interface LatencySummary {
  readonly count: number;
  readonly p50Us: number;
  readonly p99Us: number;
  readonly maxUs: number;
}

export type ObserverSnapshot = Readonly<Record<'propose' | 'sync' | 'apply', LatencySummary>>;

const realMicroseconds = (): number => performance.now() * 1000;

export type ObservedLayer = 'propose' | 'sync' | 'apply';

export class ObserverEngine extends LayeredEngine {
  /** Also called with every sample (the server feeds its /metrics summaries from it). */
  onSample: ((layer: ObservedLayer, microseconds: number) => void) | null = null;
  private readonly histograms = {
    propose: newHistogram(),
    sync: newHistogram(),
    apply: newHistogram(),
  };

  constructor(
    name: string,
    lower: IEngine,
    store: ReadView,
    private readonly nowUs: () => number = realMicroseconds,
  ) {
    super(name, lower, store, true);
  }

  override async propose(entry: StackEntry): Promise<unknown> {
    const start = this.nowUs();
    try {
      return await super.propose(entry);
    } finally {
      this.record('propose', start);
    }
  }

  override async sync(): Promise<ReadOnlySnapshot> {
    const start = this.nowUs();
    try {
      return await super.sync();
    } finally {
      this.record('sync', start);
    }
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const start = this.nowUs();
    try {
      return this.applyUpper(transaction, entry, position);
    } finally {
      this.record('apply', start);
    }
  }

  /** What the server exports under /metrics (one summary per operation). */
  snapshot(): ObserverSnapshot {
    return {
      propose: summarize(this.histograms.propose),
      sync: summarize(this.histograms.sync),
      apply: summarize(this.histograms.apply),
    };
  }

  private record(kind: keyof ObserverEngine['histograms'], startUs: number): void {
    const microseconds = Math.max(0, Math.round(this.nowUs() - startUs));
    this.histograms[kind].recordValue(microseconds);
    this.onSample?.(kind, microseconds);
  }
}

function newHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
}

function summarize(histogram: Histogram): LatencySummary {
  return {
    count: histogram.totalCount,
    p50Us: histogram.getValueAtPercentile(50),
    p99Us: histogram.getValueAtPercentile(99),
    maxUs: histogram.maxValue,
  };
}
