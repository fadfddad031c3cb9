/**
 * One replica of the shared log: hosts its loglets (created on first use: every replica runs every
 * loglet of the chain), routes messages to them, and owns the per-incarnation identity. The
 * LocalStore is shared with the engine stack above (one LsmTree per replica).
 */
import type { Random } from '../util/random.js';
import type { OrderedKvEngine } from '../storage/engine.js';
import { Loglet, LOGLET_TIMING_DEFAULT, type LogletHost, type LogletTiming } from './loglet.js';
import type { LogMessage } from './messages.js';
import type { Endpoint, LogClock } from './sim-world.js';

export interface LogTransport {
  send(from: number, to: number, message: LogMessage): void;
}

export class LogNode implements LogletHost, Endpoint<LogMessage> {
  private readonly loglets = new Map<number, Loglet>();
  private aliveFlag = true;
  /** Errors of background work while alive: always a bug (tests assert this stays empty). */
  readonly failures: unknown[] = [];

  constructor(
    readonly replicaId: number,
    readonly replicaIds: readonly number[],
    readonly store: OrderedKvEngine,
    readonly clock: LogClock,
    private readonly transport: LogTransport,
    readonly nonce: number,
    readonly random: Random,
    private readonly timing: LogletTiming = LOGLET_TIMING_DEFAULT,
  ) {}

  get alive(): boolean {
    return this.aliveFlag;
  }

  /** Stops all activity of this incarnation: pending sleeps never resolve, sends are dropped. */
  crash(): void {
    this.aliveFlag = false;
  }

  loglet(logletId: number): Loglet {
    let loglet = this.loglets.get(logletId);
    if (loglet === undefined) {
      loglet = new Loglet(logletId, this, this.timing);
      this.loglets.set(logletId, loglet);
    }
    return loglet;
  }

  receive(from: number, message: LogMessage): void {
    if (!this.aliveFlag) return;
    this.loglet(message.loglet).onMessage(from, message);
  }

  send(to: number, message: LogMessage): void {
    if (this.aliveFlag) this.transport.send(this.replicaId, to, message);
  }

  spawn(work: Promise<unknown>): void {
    work.catch((error: unknown) => {
      if (this.aliveFlag) this.failures.push(error);
    });
  }
}
