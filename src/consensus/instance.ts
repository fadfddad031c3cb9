/**
 * One Paxos instance (one PaxosLog entry of one key) at one replica, in the semi-symmetric form
 * of PaxosStore's Algorithm 1 (Tencent `certain/src/entry_state.cc`, model-checked as
 * Starydark/PaxosStore-tla `TPaxos.tla`).
 *
 * Replica Y keeps its own acceptor state `S_Y^Y = (m, P)` (persisted by the caller) and a view
 * `S_X^Y` of every other replica X (memory only: a view is a lower bound of X's durable state, so
 * losing it on restart only costs a retransmission). There is one message, `M(X→Y) = {S_X^X,
 * S_Y^X}`. Every role (proposer, acceptor, learner) is a rule over these states:
 *
 *   prepare(b) at A:    m_A ← b                      (b above everything A has seen)
 *   accept(b) at A:     when a majority of A's states (own included) have m == b:
 *                       P_A ← (b, value of the highest n among them, else A's own value)
 *   on M(X→Y):          view_X ← max(view_X, S_X^X)
 *                       m_Y ← max(m_Y, m_X)                       (promise)
 *                       if m_Y ≤ n_X then P_Y ← P_X               (accept, after the promise)
 *   chosen:             a majority of Y's states hold the same P.n
 *
 * Safety in one line: an accept at ballot b happens only after a majority promised b, and every
 * state that reported m == b carried its final P below b; a replica whose m is above n never takes
 * P with that n. So once (n, v) is held by a majority, every higher ballot's proposer sees v.
 *
 * The class is pure: no I/O; the caller persists `own` before sending anything that reflects it.
 */
import { assert } from '../util/assert.js';
import { type Ballot, ballotsEqual, compareBallots, maxBallot } from './ballot.js';
import { type AcceptorState, type EntryPayload, PRISTINE_ACCEPTOR_STATE, type Proposal } from './paxos-log.js';
import { samePayloadIdentity } from './wire-codec.js';

/** The ballots of a state: what a sender puts on the wire as its view of the receiver. */
export interface StateSummary {
  readonly promised: Ballot;
  readonly acceptedBallot: Ballot | null;
}

/** Test-only protocol bugs (to prove the simulator and checker catch them). Never set in production. */
export interface InstanceBugs {
  /** Accept any newer proposal even when a higher ballot was promised. */
  readonly acceptWithoutPromiseCheck?: boolean;
}

export type AcceptAttempt = 'accepted' | 'waiting' | 'preempted' | 'nothingToFinish';

export class Instance {
  private ownState: AcceptorState;
  /**
   * Views of the other replicas, by position in `replicaIds` (the own slot stays pristine and is
   * never read). A plain array: an instance is created per entry, and the loops below run on
   * every message, so neither allocates (a Map per instance and an iterator per loop were a
   * tenth of a shard's garbage).
   */
  private readonly views: AcceptorState[];
  readonly majority: number;

  constructor(
    readonly entryId: number,
    readonly selfId: number,
    readonly replicaIds: readonly number[],
    own: AcceptorState = PRISTINE_ACCEPTOR_STATE,
    private readonly bugs: InstanceBugs = {},
  ) {
    assert(replicaIds.includes(selfId), 'self must be one of the replicas');
    this.majority = Math.floor(replicaIds.length / 2) + 1;
    this.ownState = own;
    this.views = replicaIds.map(() => PRISTINE_ACCEPTOR_STATE);
  }

  get own(): AcceptorState {
    return this.ownState;
  }

  isPristine(): boolean {
    return this.ownState.promised.round === 0 && this.ownState.promised.replicaId === 0 && this.ownState.accepted === null;
  }

  viewOf(replicaId: number): AcceptorState {
    const index = this.replicaIds.indexOf(replicaId);
    return index < 0 || replicaId === this.selfId ? PRISTINE_ACCEPTOR_STATE : this.views[index];
  }

  /** The state at position `index` of `replicaIds`: the own state for self, else the view. */
  private stateAt(index: number): AcceptorState {
    return this.replicaIds[index] === this.selfId ? this.ownState : this.views[index];
  }

  /** Highest round in any state this replica knows of; a new prepare must go above it. */
  highestRound(): number {
    let round = this.ownState.promised.round;
    for (let index = 0; index < this.views.length; index++) round = Math.max(round, this.views[index].promised.round);
    return round;
  }

  /** Prepare at ballot `b` (> everything promised here). The caller persists `own`, then broadcasts. */
  prepare(ballot: Ballot): void {
    assert(compareBallots(ballot, this.ownState.promised) > 0, 'a prepare ballot must be above the own promise');
    assert(ballot.replicaId === this.selfId, 'a replica prepares only its own ballots');
    this.ownState = { promised: ballot, accepted: this.ownState.accepted };
  }

  /**
   * Prepare-skip: accept straight at `(0, self)`. Safe because `(0, self)` is the lowest ballot
   * this instance can see (no value can have been accepted below it, so phase 1 would learn
   * nothing), and only the proposer of the previous chosen entry uses round 0 here (the caller
   * checks that), so no other value is ever proposed with this ballot. Requires a pristine own
   * state: after a restart a durable promise or accept rules it out, so the ballot is never reused
   * with a second value.
   */
  acceptDirect(ballot: Ballot, payload: EntryPayload): void {
    assert(ballot.round === 0 && ballot.replicaId === this.selfId, 'prepare-skip uses (0, self)');
    assert(this.isPristine(), 'prepare-skip needs a pristine instance');
    this.ownState = { promised: ballot, accepted: { ballot, payload } };
  }

  /** Phase 2 at the proposer once a majority promised `ballot`; picks the value Paxos requires. */
  maybeAccept(ballot: Ballot, ownPayload: EntryPayload | null): AcceptAttempt {
    const comparison = compareBallots(this.ownState.promised, ballot);
    if (comparison > 0) return 'preempted';
    assert(comparison === 0, 'accept only at a ballot prepared here');
    if (this.ownState.accepted !== null && ballotsEqual(this.ownState.accepted.ballot, ballot)) return 'accepted';
    let promisedCount = 0;
    let highest: Proposal | null = null;
    for (let index = 0; index < this.replicaIds.length; index++) {
      const state = this.stateAt(index);
      if (!ballotsEqual(state.promised, ballot)) continue;
      promisedCount++;
      if (state.accepted !== null && (highest === null || compareBallots(state.accepted.ballot, highest.ballot) > 0)) highest = state.accepted;
    }
    if (promisedCount < this.majority) return 'waiting';
    const payload = highest?.payload ?? ownPayload;
    if (payload === null) return 'nothingToFinish';
    this.ownState = { promised: ballot, accepted: { ballot, payload } };
    return 'accepted';
  }

  /** Number of states (own included) that promised exactly `ballot`. */
  promisedCount(ballot: Ballot): number {
    let count = 0;
    for (let index = 0; index < this.replicaIds.length; index++) if (ballotsEqual(this.stateAt(index).promised, ballot)) count++;
    return count;
  }

  /**
   * Handles M(X→Y). Returns whether the own state changed (persist, then tell everyone) and whether
   * X's view of us is stale (tell X even if nothing changed: its earlier reply may have been lost).
   */
  onMessage(from: number, sender: AcceptorState, viewOfReceiver: StateSummary): { ownChanged: boolean; senderStale: boolean } {
    this.observe(from, sender);
    const before = this.ownState;
    let promised = maxBallot(before.promised, sender.promised);
    let accepted = before.accepted;
    const offered = sender.accepted;
    if (offered !== null && (accepted === null || compareBallots(offered.ballot, accepted.ballot) > 0)) {
      if (compareBallots(promised, offered.ballot) <= 0) {
        accepted = offered;
      } else if (this.bugs.acceptWithoutPromiseCheck) {
        accepted = offered;
        promised = maxBallot(promised, offered.ballot);
      }
    }
    const ownChanged = !ballotsEqual(promised, before.promised) || accepted !== before.accepted;
    if (ownChanged) this.ownState = { promised, accepted };
    if (!this.bugs.acceptWithoutPromiseCheck) {
      assert(this.ownState.accepted === null || compareBallots(this.ownState.accepted.ballot, this.ownState.promised) <= 0, 'accepted ballot ≤ promise');
    }
    return { ownChanged, senderStale: !summariesEqual(viewOfReceiver, summarize(this.ownState)) };
  }

  /**
   * Learner path (a rebuilding replica that may not vote yet): remember X's state without promising
   * or accepting anything, so the decision is still learned from a majority of the voters' states.
   */
  observe(from: number, sender: AcceptorState): void {
    assert(from !== this.selfId && this.replicaIds.includes(from), 'message from a known peer');
    const index = this.replicaIds.indexOf(from);
    this.views[index] = mergeStates(this.views[index], sender);
  }

  /**
   * The chosen proposal if a majority of known states hold the same accepted ballot (the first
   * such state's proposal, own state first). At most one ballot can have a majority.
   */
  chosen(): Proposal | null {
    const own = this.ownState.accepted;
    if (own !== null && this.holdersOf(own) >= this.majority) return own;
    for (let index = 0; index < this.replicaIds.length; index++) {
      if (this.replicaIds[index] === this.selfId) continue;
      const candidate = this.views[index].accepted;
      if (candidate !== null && this.holdersOf(candidate) >= this.majority) return candidate;
    }
    return null;
  }

  /** How many states (own included) hold `proposal`'s ballot as accepted. */
  private holdersOf(proposal: Proposal): number {
    let holders = 0;
    for (let index = 0; index < this.replicaIds.length; index++) {
      const accepted = this.stateAt(index).accepted;
      if (accepted === null || !ballotsEqual(accepted.ballot, proposal.ballot)) continue;
      assert(samePayloadIdentity(proposal.payload, accepted.payload), 'one value per ballot');
      holders++;
    }
    return holders;
  }

  /**
   * How many views of OTHER replicas hold `ballot` as their accepted ballot. Views come from peer
   * messages, and a peer sends its state only after persisting it, so each one counted here is a
   * durable vote (used to release a result before this replica's own commit, replica-core.ts).
   */
  viewsAccepting(ballot: Ballot): number {
    let count = 0;
    for (let index = 0; index < this.replicaIds.length; index++) {
      if (this.replicaIds[index] === this.selfId) continue;
      const accepted = this.views[index].accepted;
      if (accepted !== null && ballotsEqual(accepted.ballot, ballot)) count++;
    }
    return count;
  }

  /** True when some known state holds an accepted proposal for this entry. */
  anyAccepted(): boolean {
    for (let index = 0; index < this.replicaIds.length; index++) if (this.stateAt(index).accepted !== null) return true;
    return false;
  }
}

export function summarize(state: AcceptorState): StateSummary {
  return { promised: state.promised, acceptedBallot: state.accepted?.ballot ?? null };
}

function summariesEqual(a: StateSummary, b: StateSummary): boolean {
  if (!ballotsEqual(a.promised, b.promised)) return false;
  if (a.acceptedBallot === null || b.acceptedBallot === null) return a.acceptedBallot === b.acceptedBallot;
  return ballotsEqual(a.acceptedBallot, b.acceptedBallot);
}

/** Views only grow: the max promise and the newest accepted proposal ever reported. */
function mergeStates(view: AcceptorState, reported: AcceptorState): AcceptorState {
  const promised = maxBallot(view.promised, reported.promised);
  let accepted = view.accepted;
  if (reported.accepted !== null && (accepted === null || compareBallots(reported.accepted.ballot, accepted.ballot) > 0)) accepted = reported.accepted;
  return promised === view.promised && accepted === view.accepted ? view : { promised, accepted };
}
