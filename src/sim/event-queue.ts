/**
 * The simulator's agenda: events ordered by (time in ticks, insertion order). A binary heap, so
 * thousands of in-flight messages cost O(log n) each; insertion order breaks ties so a seed
 * replays identically.
 */
export interface SimEvent {
  readonly time: number;
  readonly sequence: number;
  readonly run: () => void;
}

export class EventQueue {
  private readonly heap: SimEvent[] = [];
  private nextSequence = 0;

  get size(): number {
    return this.heap.length;
  }

  schedule(time: number, run: () => void): void {
    this.heap.push({ time, sequence: this.nextSequence++, run });
    this.siftUp(this.heap.length - 1);
  }

  /** Removes and returns the earliest event if it is due at or before `time`. */
  popDue(time: number): SimEvent | undefined {
    if (this.heap.length === 0 || this.heap[0].time > time) return undefined;
    const top = this.heap[0];
    const last = this.heap.pop()!;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.time !== b.time ? a.time < b.time : a.sequence < b.sequence;
  }

  private siftUp(index: number): void {
    const heap = this.heap;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.less(heap[index], heap[parent])) return;
      [heap[index], heap[parent]] = [heap[parent], heap[index]];
      index = parent;
    }
  }

  private siftDown(index: number): void {
    const heap = this.heap;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.less(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && this.less(heap[right], heap[smallest])) smallest = right;
      if (smallest === index) return;
      [heap[index], heap[smallest]] = [heap[smallest], heap[index]];
      index = smallest;
    }
  }
}
