/**
 * Time for the load generator, injected so the same generator runs on the real clock and on a
 * simulated one (tests drive a stalled server through virtual seconds in milliseconds of real
 * time, deterministically). Times are microseconds as floating-point numbers.
 */
import { assert } from '../util/assert.js';

export interface BenchClock {
  nowUs(): number;
  sleepUntilUs(timeUs: number): Promise<void>;
  /** Calls `callback` at `timeUs` (or as soon after as the clock can); returns a cancel function. */
  setTimer(timeUs: number, callback: () => void): () => void;
}

/** The process clock. setTimeout has ~1 ms granularity: the open-loop generator sends everything due at each wake. */
export const realClock: BenchClock = {
  nowUs: () => performance.now() * 1000,
  sleepUntilUs(timeUs) {
    return new Promise((resolve) => setTimeout(resolve, Math.max(0, (timeUs - performance.now() * 1000) / 1000)));
  },
  setTimer(timeUs, callback) {
    const timer = setTimeout(callback, Math.max(0, (timeUs - performance.now() * 1000) / 1000));
    return () => clearTimeout(timer);
  },
};

interface Timer {
  readonly timeUs: number;
  readonly sequence: number;
  callback: (() => void) | undefined;
}

/**
 * Discrete-event clock: time stands still while any promise chain can make progress, then jumps to
 * the earliest timer. Everything under test must wait only through this clock (no real timers, no
 * real I/O), or `run` reports a deadlock.
 */
export class SimulatedClock implements BenchClock {
  private currentUs = 0;
  private sequence = 0;
  private readonly heap: Timer[] = [];

  nowUs(): number {
    return this.currentUs;
  }

  sleepUntilUs(timeUs: number): Promise<void> {
    return new Promise((resolve) => this.setTimer(timeUs, resolve));
  }

  setTimer(timeUs: number, callback: () => void): () => void {
    const timer: Timer = { timeUs: Math.max(timeUs, this.currentUs), sequence: this.sequence++, callback };
    this.push(timer);
    return () => {
      timer.callback = undefined;
    };
  }

  /** Advances virtual time until `work` settles. */
  async run<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    work.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (;;) {
      // setImmediate runs after every queued microtask: all promise chains have advanced.
      await new Promise((resolve) => setImmediate(resolve));
      if (settled) return work;
      const timer = this.pop();
      if (timer === undefined) throw new Error('simulated clock: the work is waiting on something other than this clock');
      assert(timer.timeUs >= this.currentUs, 'simulated time never goes backwards');
      this.currentUs = timer.timeUs;
      timer.callback?.();
    }
  }

  private before(a: Timer, b: Timer): boolean {
    return a.timeUs < b.timeUs || (a.timeUs === b.timeUs && a.sequence < b.sequence);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    let index = heap.length - 1;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (!this.before(heap[index], heap[parent])) break;
      [heap[index], heap[parent]] = [heap[parent], heap[index]];
      index = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    let index = 0;
    for (;;) {
      const left = index * 2 + 1;
      const right = left + 1;
      let smallest = index;
      if (left < heap.length && this.before(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && this.before(heap[right], heap[smallest])) smallest = right;
      if (smallest === index) break;
      [heap[index], heap[smallest]] = [heap[smallest], heap[index]];
      index = smallest;
    }
    return top;
  }
}
