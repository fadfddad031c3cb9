/**
 * Ballots of PaxosStore's per-instance Paxos: `(round, replicaId)`, compared lexicographically, so
 * two replicas never use the same ballot and every replica can always pick a higher one.
 *
 * Round 0 is reserved for prepare-skip (DESIGN.md §4): the proposer of the value chosen at entry i
 * may go straight to accept at entry i+1 with ballot `(0, self)`. Every prepare uses round ≥ 1, so
 * any prepare pre-empts a prepare-skip. `BALLOT_ZERO` = `(0, 0)` means "nothing promised"; replica
 * ids start at 1, so it is below every real ballot.
 */

export interface Ballot {
  readonly round: number;
  readonly replicaId: number;
}

export const BALLOT_ZERO: Ballot = Object.freeze({ round: 0, replicaId: 0 });

export function compareBallots(a: Ballot, b: Ballot): number {
  return a.round !== b.round ? a.round - b.round : a.replicaId - b.replicaId;
}

export function ballotsEqual(a: Ballot, b: Ballot): boolean {
  return a.round === b.round && a.replicaId === b.replicaId;
}

export function maxBallot(a: Ballot, b: Ballot): Ballot {
  return compareBallots(a, b) >= 0 ? a : b;
}

/** Ballots with a round below this and a replica id below INTERNED_REPLICA_IDS are shared objects. */
const INTERNED_ROUNDS = 8;
const INTERNED_REPLICA_IDS = 16;
const interned: Ballot[] = [];
for (let round = 0; round < INTERNED_ROUNDS; round++) {
  for (let replicaId = 0; replicaId < INTERNED_REPLICA_IDS; replicaId++) interned.push({ round, replicaId });
}

/**
 * The ballot `(round, replicaId)`. Almost every ballot on the wire is a prepare-skip `(0, id)` or
 * an early round, and each decoded message carries several: those come from a shared table
 * instead of a new object each (ballots are immutable, compared by value).
 */
export function makeBallot(round: number, replicaId: number): Ballot {
  return round < INTERNED_ROUNDS && replicaId < INTERNED_REPLICA_IDS ? interned[round * INTERNED_REPLICA_IDS + replicaId] : { round, replicaId };
}

/** The prepare-skip ballot of `replicaId`: the lowest ballot that replica can use. */
export function prepareSkipBallot(replicaId: number): Ballot {
  return makeBallot(0, replicaId);
}

export function formatBallot(ballot: Ballot): string {
  return `${ballot.round}.${ballot.replicaId}`;
}
