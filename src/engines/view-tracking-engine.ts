/**
 * ViewTrackingEngine: every proposal carries the proposer's applied-and-flushed position (what it
 * would not need to replay after a crash), so every replica learns, at the same log positions,
 * how far each replica got. The log below the slowest replica's position is no longer needed by
 * anyone: that minimum, capped by what the layer above allows, is passed down as the trim prefix.
 *
 *   header  views = [replicaId, flushedPosition]
 *   LocalStore key  E/view/<replicaId>  →  msgpackr [flushedPosition]
 */
import { Packr } from 'msgpackr';
import type { ReadView } from '../storage/engine.js';
import { LayeredEngine, withHeader } from './layered-engine.js';
import type { IEngine, StackEntry, Transaction } from './types.js';

const HEADER = 'views';
const packr = new Packr({ useRecords: false, moreTypes: false });
const encoder = new TextEncoder();

export class ViewTrackingEngine extends LayeredEngine {
  private readonly views = new Map<number, number>();
  private allowedFromAbove = Number.POSITIVE_INFINITY;

  constructor(
    lower: IEngine,
    store: ReadView,
    private readonly replicaId: number,
    private readonly replicaIds: readonly number[],
    /** How far this replica has applied and flushed (BaseEngine.flushedPosition). */
    private readonly flushedPosition: () => number,
    startEnabled = true,
    /** Makes the applied state durable (BaseEngine.flush) so a heartbeat reports all of it. */
    private readonly flush: () => Promise<void> = () => Promise.resolve(),
  ) {
    super(HEADER, lower, store, startEnabled);
    for (const id of replicaIds) {
      const stored = store.get(viewKey(id));
      if (stored !== undefined) this.views.set(id, (packr.unpack(stored) as [number])[0]);
    }
  }

  override propose(entry: StackEntry): Promise<unknown> {
    return super.propose(withHeader(entry, HEADER, [this.replicaId, this.flushedPosition()]));
  }

  /** A control entry that only reports this replica's view (an idle replica must still report). */
  async heartbeat(): Promise<void> {
    await this.flush();
    await this.propose({ headers: {}, body: null });
  }

  override setTrimPrefix(position: number): void {
    this.allowedFromAbove = position;
    this.passTrimDown();
  }

  /** The applied position of every replica as recorded by the log (same on every replica). */
  viewSnapshot(): ReadonlyMap<number, number> {
    return new Map(this.views);
  }

  protected override applyActive(transaction: Transaction, entry: StackEntry, position: number): unknown {
    const header = entry.headers[HEADER];
    if (Array.isArray(header) && header.length === 2) {
      const [replicaId, applied] = header as [number, number];
      if (applied > (this.views.get(replicaId) ?? -1)) {
        this.views.set(replicaId, applied);
        transaction.put(viewKey(replicaId), packr.pack([applied]));
      }
    }
    return this.applyUpper(transaction, entry, position);
  }

  override postApply(entry: StackEntry, position: number): void {
    if (this.enabled) this.passTrimDown();
    super.postApply(entry, position);
  }

  private passTrimDown(): void {
    let minimum = Number.POSITIVE_INFINITY;
    for (const id of this.replicaIds) minimum = Math.min(minimum, this.views.get(id) ?? 0);
    const allowed = Math.min(minimum, this.allowedFromAbove);
    if (Number.isFinite(allowed)) this.lower.setTrimPrefix(allowed);
  }
}

function viewKey(replicaId: number): Uint8Array {
  return encoder.encode(`E/view/${replicaId}`);
}
