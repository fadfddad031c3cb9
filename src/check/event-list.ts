/**
 * The call and return events of one key's operations in one doubly linked list sorted by time,
 * with O(1) removal and restoration of an operation's two events (dancing links: restorations
 * must come in the reverse order of removals, which a depth-first search guarantees).
 *
 *   entry:   0 … n-1        n … 2n-1            2n
 *            call of op i   return of op i-n    head sentinel
 *
 *   head ─► call a ─► call b ─► return a ─► call c ─► return b ─► … ─► return u (+∞)
 *
 * Events at the same time: calls come first, so an operation invoked at the tick another returns
 * counts as concurrent with it.
 */
export const NONE = -1;

export class EventList {
  readonly head: number;
  private readonly next: Int32Array;
  private readonly previous: Int32Array;
  /** Operations whose call was detached for good: lifting them moves only their return. */
  private readonly callDetached: Uint8Array;

  constructor(
    private readonly operationCount: number,
    invokeTimeOf: (operation: number) => number,
    returnTimeOf: (operation: number) => number,
  ) {
    const n = operationCount;
    this.head = 2 * n;
    const timeOf = (entry: number): number => (entry < n ? invokeTimeOf(entry) : returnTimeOf(entry - n));
    const order = Array.from({ length: 2 * n }, (_, entry) => entry);
    order.sort((a, b) => timeOf(a) - timeOf(b) || Number(a >= n) - Number(b >= n) || a - b);
    this.next = new Int32Array(2 * n + 1).fill(NONE);
    this.previous = new Int32Array(2 * n + 1).fill(NONE);
    this.callDetached = new Uint8Array(n);
    let last = this.head;
    for (const entry of order) {
      this.next[last] = entry;
      this.previous[entry] = last;
      last = entry;
    }
  }

  first(): number {
    return this.next[this.head];
  }

  following(entry: number): number {
    return this.next[entry];
  }

  isCall(entry: number): boolean {
    return entry !== NONE && entry < this.operationCount;
  }

  /** Takes the call `operation` and its return out of the list. */
  lift(operation: number): void {
    if (this.callDetached[operation] === 0) this.unlink(operation);
    this.unlink(operation + this.operationCount);
  }

  /** Undoes the latest `lift`, which must have been of `operation`. */
  unlift(operation: number): void {
    this.relink(operation + this.operationCount);
    if (this.callDetached[operation] === 0) this.relink(operation);
  }

  /**
   * Takes the call of `operation` out for good, before the search starts: the caller tracks
   * when it is a candidate by other means, and its return still bounds the candidates.
   */
  detachCall(operation: number): void {
    this.unlink(operation);
    this.callDetached[operation] = 1;
  }

  private unlink(entry: number): void {
    const { next, previous } = this;
    next[previous[entry]] = next[entry];
    if (next[entry] !== NONE) previous[next[entry]] = previous[entry];
  }

  private relink(entry: number): void {
    const { next, previous } = this;
    if (next[entry] !== NONE) previous[next[entry]] = entry;
    next[previous[entry]] = entry;
  }
}
