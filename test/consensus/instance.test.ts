import { describe, expect, it } from 'vitest';
import { BALLOT_ZERO, type Ballot, compareBallots, prepareSkipBallot } from '../../src/consensus/ballot.js';
import { Instance, summarize } from '../../src/consensus/instance.js';
import type { EntryPayload } from '../../src/consensus/paxos-log.js';
import { AssertionError } from '../../src/util/assert.js';

const REPLICAS = [1, 2, 3];
const payload = (value: string, proposerId = 1, sequence = 1): EntryPayload => ({
  value: new TextEncoder().encode(value),
  proposerId,
  requestId: { clientId: value, timestampMs: 0, sequence },
  sessions: [],
});

/** Delivers M(from→to) between two instances of the same entry. */
function deliver(from: Instance, to: Instance): { ownChanged: boolean; senderStale: boolean } {
  return to.onMessage(from.selfId, from.own, summarize(from.viewOf(to.selfId)));
}

function group(): Instance[] {
  return REPLICAS.map((id) => new Instance(5, id, REPLICAS));
}

describe('ballots', () => {
  it('order by round, then replica id; round 0 is below every prepare', () => {
    expect(compareBallots({ round: 1, replicaId: 1 }, { round: 0, replicaId: 3 })).toBeGreaterThan(0);
    expect(compareBallots({ round: 2, replicaId: 1 }, { round: 2, replicaId: 2 })).toBeLessThan(0);
    expect(compareBallots(prepareSkipBallot(1), BALLOT_ZERO)).toBeGreaterThan(0);
  });
});

describe('Instance (paper Algorithm 1)', () => {
  it('prepare, promise, accept, choose: the proposer learns once a majority accepted', () => {
    const [a, b, c] = group();
    const ballot: Ballot = { round: 1, replicaId: 1 };
    a.prepare(ballot);
    expect(deliver(a, b)).toEqual({ ownChanged: true, senderStale: true });
    expect(a.maybeAccept(ballot, payload('x'))).toBe('waiting');
    deliver(b, a);
    expect(a.promisedCount(ballot)).toBe(2);
    expect(a.maybeAccept(ballot, payload('x'))).toBe('accepted');
    expect(a.chosen()).toBeNull();
    deliver(a, c); // c promises and accepts from one message: promise-then-accept
    expect(c.own.accepted?.ballot).toEqual(ballot);
    expect(c.chosen()?.payload.requestId?.clientId).toBe('x'); // c's own state + a's state
    deliver(c, a);
    expect(a.chosen()?.payload.requestId?.clientId).toBe('x');
  });

  it('a higher prepare carries the accepted value forward (the value is never lost)', () => {
    const [a, b, c] = group();
    const first: Ballot = { round: 1, replicaId: 1 };
    a.prepare(first);
    deliver(a, b);
    deliver(b, a);
    a.maybeAccept(first, payload('x'));
    deliver(a, b); // b accepts x: {a, b} hold (1.1, x), chosen
    const second: Ballot = { round: 2, replicaId: 3 };
    c.prepare(second);
    deliver(c, b);
    deliver(b, c); // b promised 2.3 and reports (1.1, x)
    expect(c.maybeAccept(second, payload('y', 3))).toBe('accepted');
    expect(c.own.accepted?.payload.requestId?.clientId).toBe('x');
  });

  it('an acceptor never accepts below its promise', () => {
    const [a, b, c] = group();
    const low: Ballot = { round: 1, replicaId: 1 };
    a.prepare(low);
    deliver(a, b);
    deliver(b, a);
    c.prepare({ round: 2, replicaId: 3 });
    deliver(c, b); // b promises 2.3
    a.maybeAccept(low, payload('x'));
    expect(deliver(a, b).ownChanged).toBe(false);
    expect(b.own.accepted).toBeNull();
    expect(a.maybeAccept(low, payload('x'))).toBe('accepted'); // already accepted at a itself
    deliver(b, a);
    expect(a.maybeAccept(low, payload('x'))).toBe('preempted');
  });

  it('with the injected bug an acceptor does accept below its promise', () => {
    const [a, , c] = group();
    const b = new Instance(5, 2, REPLICAS, undefined, { acceptWithoutPromiseCheck: true });
    const low: Ballot = { round: 1, replicaId: 1 };
    a.prepare(low);
    deliver(a, b);
    deliver(b, a);
    c.prepare({ round: 2, replicaId: 3 });
    deliver(c, b);
    a.maybeAccept(low, payload('x'));
    expect(deliver(a, b).ownChanged).toBe(true);
    expect(b.own.accepted?.ballot).toEqual(low);
  });

  it('prepare-skip accepts at (0, self) from a pristine state only', () => {
    const [a, b] = group();
    a.acceptDirect(prepareSkipBallot(1), payload('x'));
    expect(a.own.promised).toEqual(prepareSkipBallot(1));
    deliver(a, b);
    expect(b.own.accepted?.ballot).toEqual(prepareSkipBallot(1));
    expect(() => a.acceptDirect(prepareSkipBallot(1), payload('y'))).toThrow(AssertionError);
    expect(() => b.acceptDirect(prepareSkipBallot(1), payload('y'))).toThrow(AssertionError);
  });

  it('ballots never go down and a prepare must be fresh', () => {
    const [a] = group();
    a.prepare({ round: 3, replicaId: 1 });
    expect(() => a.prepare({ round: 2, replicaId: 1 })).toThrow(AssertionError);
    expect(() => a.prepare({ round: 4, replicaId: 2 })).toThrow(AssertionError);
    expect(a.highestRound()).toBe(3);
  });

  it('replies only when the sender has a stale view of the receiver', () => {
    const [a, b] = group();
    a.prepare({ round: 1, replicaId: 1 });
    deliver(a, b);
    deliver(b, a); // a's view of b is now current
    expect(deliver(a, b)).toEqual({ ownChanged: false, senderStale: false });
  });

  it('nothingToFinish when a majority promised and nobody accepted anything', () => {
    const [a, b] = group();
    const ballot: Ballot = { round: 1, replicaId: 1 };
    a.prepare(ballot);
    deliver(a, b);
    deliver(b, a);
    expect(a.maybeAccept(ballot, null)).toBe('nothingToFinish');
  });

  it('5 replicas need 3 states for a decision', () => {
    const ids = [1, 2, 3, 4, 5];
    const [a, b, c] = ids.map((id) => new Instance(1, id, ids));
    const ballot: Ballot = { round: 1, replicaId: 1 };
    a.prepare(ballot);
    deliver(a, b);
    deliver(a, c);
    deliver(b, a);
    expect(a.maybeAccept(ballot, payload('x'))).toBe('waiting');
    deliver(c, a);
    expect(a.maybeAccept(ballot, payload('x'))).toBe('accepted');
    deliver(a, b);
    expect(b.chosen()).toBeNull();
    deliver(a, c);
    deliver(c, b);
    expect(b.chosen()?.payload.requestId?.clientId).toBe('x');
  });
});
