/**
 * Adaptive retransmission and phase timeouts for the request procedures (procedures.ts), in the
 * manner of TCP's retransmission timer (RFC 6298): a smoothed round trip and its variation.
 * Samples: the time from a phase's (or read round's) first send to reaching its goal, resends or
 * not; and a phase that timed out contributes its timeout, a lower bound of the round trip.
 * Unlike TCP's Karn rule, a phase that resent still counts: it measures from its first send, so
 * the sample is an upper bound of the round trip — the safe direction for a resend timer — and
 * counting timeouts lets the estimate climb out of "every phase times out, so nothing is
 * ever sampled" when round trips jump above the configured timeout all at once.
 *
 *   estimate       = srtt + 4·rttvar                (0 before the first sample)
 *   resendInterval = clamp(estimate, config.resendTicks, RESEND_TICKS_MAX)
 *   phaseTimeout   = max(config.phaseTimeoutTicks, PHASE_TIMEOUT_FACTOR · min(estimate, RESEND_TICKS_MAX))
 *   readTimeout    = max(config.readTimeoutTicks, READ_TIMEOUT_FACTOR · min(estimate, RESEND_TICKS_MAX))
 *
 * Why: peers talk over TCP, so a resend only helps when a message was really lost (a dropped
 * connection, a full send queue). With fixed 20-tick resends and 120-tick phases, an overloaded
 * replica (phases taking 200–300 ms under pipelined load) resent every instance's state several
 * times and abandoned phases that were about to succeed, starting new prepare rounds: each write
 * cost more messages, records and fsyncs exactly when the cluster had no CPU to spare, which made
 * the overload worse. The floors keep the configured values whenever round trips are short (as in
 * the simulator, where behaviour is unchanged unless its delays grow), so recovery from real loss
 * stays as fast as before.
 */
import type { ConsensusConfig } from './config.js';

/** Resends are never spaced further apart than this, however slow the round trips. */
export const RESEND_TICKS_MAX = 1000;
const PHASE_TIMEOUT_FACTOR = 3;
const READ_TIMEOUT_FACTOR = 2;
/** RFC 6298's gains: srtt moves 1/8 towards a sample, rttvar 1/4. */
const SRTT_GAIN = 1 / 8;
const RTTVAR_GAIN = 1 / 4;

export class RoundTripEstimator {
  private smoothedTicks: number | null = null;
  private variationTicks = 0;
  /** Own-state resends of waiting phases (exported as a counter). */
  resends = 0;

  constructor(private readonly config: Pick<ConsensusConfig, 'resendTicks' | 'phaseTimeoutTicks' | 'readTimeoutTicks'>) {}

  /** A phase that reached its goal after `ticks` without any resend. */
  observe(ticks: number): void {
    if (this.smoothedTicks === null) {
      this.smoothedTicks = ticks;
      this.variationTicks = ticks / 2;
      return;
    }
    this.variationTicks += RTTVAR_GAIN * (Math.abs(this.smoothedTicks - ticks) - this.variationTicks);
    this.smoothedTicks += SRTT_GAIN * (ticks - this.smoothedTicks);
  }

  /** srtt + 4·rttvar, capped at RESEND_TICKS_MAX; 0 before the first sample. */
  private estimateTicks(): number {
    if (this.smoothedTicks === null) return 0;
    return Math.min(RESEND_TICKS_MAX, Math.ceil(this.smoothedTicks + 4 * this.variationTicks));
  }

  /** Ticks between resends of an instance's own state while a phase waits. */
  resendTicks(): number {
    return Math.max(this.config.resendTicks, this.estimateTicks());
  }

  phaseTimeoutTicks(): number {
    return Math.max(this.config.phaseTimeoutTicks, PHASE_TIMEOUT_FACTOR * this.estimateTicks());
  }

  readTimeoutTicks(): number {
    return Math.max(this.config.readTimeoutTicks, READ_TIMEOUT_FACTOR * this.estimateTicks());
  }
}
