/**
 * The production LogClock: one tick is one millisecond of monotonic time (performance.now, never
 * the wall clock, which can jump). The simulator's SimWorld implements the same interface with a
 * virtual clock, so the loglets and engines run unchanged in both.
 */
import type { LogClock } from './sim-world.js';

export class RealLogClock implements LogClock {
  private readonly originMs = performance.now();

  now(): number {
    return Math.floor(performance.now() - this.originMs);
  }

  /**
   * Resolves after `ticks` milliseconds unless `owner` crashed (closed) meanwhile: its work is
   * over. The timer is unreferenced: a pending retry must not keep a closing worker alive.
   */
  sleep(ticks: number, owner: object): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        if (!('alive' in owner) || (owner as { alive: boolean }).alive) resolve();
      }, Math.max(0, ticks));
      timer.unref();
    });
  }
}
