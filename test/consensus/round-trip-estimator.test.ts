import { describe, expect, it } from 'vitest';
import type { KeyResult, RequestId } from '../../src/api/operations.js';
import { CONSENSUS_CONFIG_DEFAULT } from '../../src/consensus/config.js';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { Replica } from '../../src/consensus/replica.js';
import { RESEND_TICKS_MAX, RoundTripEstimator } from '../../src/consensus/round-trip-estimator.js';
import { Random } from '../../src/util/random.js';

const config = { resendTicks: 20, phaseTimeoutTicks: 120, readTimeoutTicks: 60 };

describe('RoundTripEstimator', () => {
  it('keeps the configured values until round trips are slower than them', () => {
    const estimator = new RoundTripEstimator(config);
    expect([estimator.resendTicks(), estimator.phaseTimeoutTicks(), estimator.readTimeoutTicks()]).toEqual([20, 120, 60]);
    for (let sample = 0; sample < 50; sample++) estimator.observe(3);
    expect([estimator.resendTicks(), estimator.phaseTimeoutTicks(), estimator.readTimeoutTicks()]).toEqual([20, 120, 60]);
  });

  it('follows slow round trips up, caps them, and comes back down when they are fast again', () => {
    const estimator = new RoundTripEstimator(config);
    for (let sample = 0; sample < 50; sample++) estimator.observe(200);
    const slow = estimator.resendTicks();
    expect(slow).toBeGreaterThanOrEqual(200);
    expect(slow).toBeLessThan(300);
    expect(estimator.phaseTimeoutTicks()).toBeGreaterThanOrEqual(3 * 200);
    expect(estimator.readTimeoutTicks()).toBeGreaterThanOrEqual(2 * 200);
    for (let sample = 0; sample < 50; sample++) estimator.observe(100_000);
    expect(estimator.resendTicks()).toBe(RESEND_TICKS_MAX);
    for (let sample = 0; sample < 100; sample++) estimator.observe(2);
    expect(estimator.resendTicks()).toBe(20);
    expect(estimator.phaseTimeoutTicks()).toBe(120);
  });
});

/**
 * Three replicas in one thread with manual turns, storage that commits at once, and a network
 * that delivers every message `delayTicks` after it was sent (never loses one): a round trip is
 * 2 × delayTicks, well above the configured resend interval and phase timeout.
 */
function slowNetworkGroup(delayTicks: number) {
  const ids = [1, 2, 3];
  let now = 0;
  const inFlight: { at: number; from: number; to: number; messages: readonly PeerMessage[] }[] = [];
  const replicas = new Map<number, Replica>();
  for (const id of ids) {
    const records = new Map<string, Uint8Array>();
    replicas.set(
      id,
      new Replica({
        replicaId: id,
        replicaIds: ids,
        storage: {
          load: (key) => records.get(Buffer.from(key).toString('latin1')),
          commit: (batch, done) => {
            for (const record of batch) records.set(Buffer.from(record.key).toString('latin1'), record.value);
            done();
          },
        },
        transport: (peer, messages) => inFlight.push({ at: now + delayTicks, from: id, to: peer, messages }),
        random: new Random(id),
        turns: 'manual',
        config: { ...CONSENSUS_CONFIG_DEFAULT, writeAttemptsMax: 50 },
      }),
    );
  }
  const step = (): void => {
    now++;
    for (const replica of replicas.values()) replica.tick(1);
    for (let index = 0; index < inFlight.length; ) {
      const message = inFlight[index];
      if (message.at <= now) {
        inFlight.splice(index, 1);
        replicas.get(message.to)!.receive(message.from, message.messages);
      } else index++;
    }
    for (const replica of replicas.values()) replica.runTurn();
  };
  let sequence = 0;
  const write = (key: string): { result: KeyResult; ticks: number; resends: number } => {
    const proposer = replicas.get(1)!;
    const resendsBefore = proposer.roundTrips.resends;
    const start = now;
    let outcome: KeyResult | Error | undefined;
    const requestId: RequestId = { clientId: 'slow-network', timestampMs: 0, sequence: sequence++ };
    proposer.submit(Buffer.from(key), { kind: 'set', value: Buffer.from('v') }, requestId, (result) => {
      outcome = result.ok ? result.value : result.error;
    });
    proposer.runTurn();
    while (outcome === undefined && now - start < 20_000) step();
    if (!(outcome !== undefined && !(outcome instanceof Error))) throw new Error(`write of ${key} did not succeed: ${String(outcome)}`);
    return { result: outcome, ticks: now - start, resends: proposer.roundTrips.resends - resendsBefore };
  };
  return { write, replicas };
}

describe('adaptive resends on a slow network', () => {
  it('stops resending once it has measured round trips longer than the resend interval and phase timeout', () => {
    // One-way delay 150 ticks: a round trip of 300 is above resendTicks 20 and phaseTimeoutTicks 120.
    const group = slowNetworkGroup(150);
    const first = group.write('key-0');
    expect(first.result.applied).toBe(true);
    expect(first.resends).toBeGreaterThan(0);
    // The same key again: replica 1 proposed the last entry, so each write is one accept round.
    const later = Array.from({ length: 12 }, () => group.write('key-0'));
    const lastFive = later.slice(-5);
    for (const write of lastFive) expect(write.result.applied).toBe(true);
    // With fixed timers every one of these phases would resend ~14 times and time out at 120.
    expect(lastFive.reduce((sum, write) => sum + write.resends, 0)).toBe(0);
    expect(group.replicas.get(1)!.roundTrips.resendTicks()).toBeGreaterThanOrEqual(300);
  });
});
