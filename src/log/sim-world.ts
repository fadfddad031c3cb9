/**
 * The deterministic world of the shared-log simulator: a virtual clock in ticks, one event queue
 * (src/sim/event-queue.ts), a network that drops, duplicates and delays messages, and timers.
 *
 * The log and engine code is async (the LocalStore is an LsmTree whose writes return promises), so
 * the world runs one event at a time and then lets every microtask and immediate settle before the
 * next event. The SimulatedFileSystem resolves everything in microtasks, so nothing else can run
 * in between: a seed replays exactly.
 */
import { EventQueue } from '../sim/event-queue.js';
import { assert } from '../util/assert.js';
import type { Random } from '../util/random.js';

/** Time as the log sees it: ticks, never a wall clock (STYLE: inject the world). */
export interface LogClock {
  now(): number;
  /** Resolves after `ticks`; never resolves when the owner crashed in between (its work is gone). */
  sleep(ticks: number, owner: object): Promise<void>;
}

export interface NetworkFaults {
  readonly dropRate: number;
  readonly duplicateRate: number;
  readonly delayTicksMin: number;
  readonly delayTicksMax: number;
}

export const CALM_NETWORK: NetworkFaults = Object.freeze({ dropRate: 0, duplicateRate: 0, delayTicksMin: 1, delayTicksMax: 2 });

/** Something that can receive messages; `alive` turns false when its replica crashed. */
export interface Endpoint<Message> {
  readonly alive: boolean;
  receive(from: number, message: Message): void;
}

const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class SimWorld<Message> implements LogClock {
  private time = 0;
  private readonly events = new EventQueue();
  private readonly endpoints = new Map<number, Endpoint<Message>>();
  /** Pairs `a:b` that cannot talk (partition), both directions. */
  private readonly blocked = new Set<string>();
  messagesSent = 0;

  constructor(
    readonly random: Random,
    public faults: NetworkFaults = CALM_NETWORK,
  ) {}

  now(): number {
    return this.time;
  }

  attach(replicaId: number, endpoint: Endpoint<Message>): void {
    this.endpoints.set(replicaId, endpoint);
  }

  schedule(delayTicks: number, run: () => void): void {
    assert(delayTicks >= 0, 'no scheduling into the past');
    this.events.schedule(this.time + delayTicks, run);
  }

  sleep(ticks: number, owner: object): Promise<void> {
    return new Promise((resolve) => {
      this.schedule(ticks, () => {
        if (!('alive' in owner) || (owner as { alive: boolean }).alive) resolve();
      });
    });
  }

  partition(a: number, b: number, blocked: boolean): void {
    for (const name of [`${a}:${b}`, `${b}:${a}`]) {
      if (blocked) this.blocked.add(name);
      else this.blocked.delete(name);
    }
  }

  send(from: number, to: number, message: Message): void {
    this.messagesSent++;
    if (this.blocked.has(`${from}:${to}`) || this.random.chance(this.faults.dropRate)) return;
    const copies = this.random.chance(this.faults.duplicateRate) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const delay = this.random.range(this.faults.delayTicksMin, this.faults.delayTicksMax);
      this.schedule(delay, () => {
        const endpoint = this.endpoints.get(to);
        if (endpoint?.alive) endpoint.receive(from, message);
      });
    }
  }

  /** Runs events in time order until `done()` or the clock passes `ticksMax` more ticks. */
  async runUntil(done: () => boolean, ticksMax: number): Promise<boolean> {
    const deadline = this.time + ticksMax;
    await settle();
    while (!done()) {
      const event = this.events.popDue(deadline);
      if (event === undefined) {
        this.time = deadline;
        return done();
      }
      this.time = Math.max(this.time, event.time);
      event.run();
      await settle();
    }
    return true;
  }

  /** Runs until `promise` settles (or the budget ends; then the result is undefined). */
  async runFor<T>(promise: Promise<T>, ticksMax: number): Promise<{ value?: T; error?: unknown; settled: boolean }> {
    const outcome: { value?: T; error?: unknown; settled: boolean } = { settled: false };
    promise.then(
      (value) => {
        outcome.value = value;
        outcome.settled = true;
      },
      (error: unknown) => {
        outcome.error = error;
        outcome.settled = true;
      },
    );
    await this.runUntil(() => outcome.settled, ticksMax);
    return outcome;
  }
}
