/**
 * The request procedures, written pseudo-synchronously as coroutines (generators) over the pure
 * core: they call proposer actions on ReplicaCore and `yield` a Wait until the state they need
 * arrives (src/scheduler/scheduler.ts drives them). Every loop is bounded by ConsensusConfig.
 *
 * Write (set/delete/incr/append, with preconditions) at entry i+1 = chosen+1:
 *   1. dedup: if the chosen entry's session table has this request id, return its result;
 *   2. evaluate against chosen i. If it writes, propose the new state at i+1 (prepare-skip when
 *      allowed, else prepare/accept; the prepare also finishes whatever was accepted at i+1).
 *      When i+1 is decided, go to 1: success is the session table naming this request, so a
 *      write that lost entry i+1 to another value retries on i+2 (bounded → CONTENTION).
 *      Linearization point: the moment i+1 is chosen; the write was computed from entry i, which
 *      is exactly the state before it.
 *   3. if it does not write (precondition false, or WRONG_TYPE), the local chosen entry may be
 *      stale, so confirm it with a consistent read first and re-evaluate if it moved.
 *
 * Consistent read (leaseless, DESIGN.md §4): ask every peer for its chosen id and whether it
 * accepted anything beyond it. If a majority (own state counted) is at our chosen id c with
 * nothing accepted at c+1, return entry c. Why this is linearizable: a write acknowledged before
 * the read started was chosen at some entry e by a majority that had accepted it; if e > c, at
 * least one replica of that majority answered us, after the read started, either with a chosen
 * id ≥ e > c or with an accepted value at c+1 (accepted state only grows until the entry is
 * chosen; a replica accepts at c+2 only after learning c+1 chosen). Neither happened, so every
 * acknowledged write is at or below c, and entry c is chosen, so returning it is legal at any
 * point of the read. If a replica reports a later chosen entry, catch up and retry. If too many
 * report an accepted-but-undecided value (or some did and the rest stay silent), drive entry c+1
 * to a decision with a prepare (which
 * carries the highest accepted value forward); if the promising majority shows nothing accepted,
 * that majority is itself the proof above, and entry c is returned.
 */
import type { KeyOperation, KeyResult, RequestId } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import type { Coroutine, Wait } from '../scheduler/scheduler.js';
import type { Random } from '../util/random.js';
import type { Ballot } from './ballot.js';
import type { ConsensusConfig, ReplicaBugs } from './config.js';
import { buildPayload, evaluate, lookUpSession } from './evaluate.js';
import type { ChosenEntry, EntryPayload } from './paxos-log.js';
import { encodeEntryPayload } from './wire-codec.js';
import { keyName } from '../util/byte-codec.js';
import type { KeyHandle, ReplicaCore } from './replica-core.js';
import type { RoundTripEstimator } from './round-trip-estimator.js';

export interface ProcedureContext {
  readonly core: ReplicaCore;
  readonly config: ConsensusConfig;
  /** Resend intervals and phase/read timeouts that follow the measured round trips. */
  readonly roundTrips: RoundTripEstimator;
  readonly random: Random;
  readonly bugs: ReplicaBugs;
}

type ProposeOutcome = 'decided' | 'nothingToFinish' | 'noQuorum' | 'contention';
type PhaseOutcome = 'decided' | 'ready' | 'preempted' | 'timeout';

/** The coroutine of one client request on one key. */
export function* executeOperation(context: ProcedureContext, key: Uint8Array, operation: KeyOperation, requestId: RequestId): Coroutine<KeyResult> {
  // The key's state is looked up once, here: every core call below takes the handle (it stays
  // valid while this coroutine lives, see ReplicaCore's KeyState).
  const handle = context.core.handle(keyName(key));
  if (operation.kind === 'get') {
    const entry = operation.consistency === 'local' ? context.core.chosen(handle) : yield* consistentRead(context, handle);
    return { applied: true, version: entry.entryId, value: entry.payload?.value ?? null };
  }
  return yield* write(context, handle, operation, requestId);
}

function* write(context: ProcedureContext, key: KeyHandle, operation: KeyOperation, requestId: RequestId): Coroutine<KeyResult> {
  const { core, config } = context;
  let lastFailure: ProposeOutcome = 'contention';
  // Two bounds. `failures` counts attempts whose own proposal failed (no quorum, pre-empted).
  // Entries lost to other writes are progress, not failure: on a hot key the writes queued at
  // this replica win one entry each in turn, so a write may legitimately lose many entries
  // before its own; they get a separate, much larger bound (and the shard worker's request
  // deadline still applies).
  let failures = 0;
  for (let attempt = 0; failures < config.writeAttemptsMax && attempt < config.writeAttemptsMax * PROGRESS_ROUNDS_FACTOR; attempt++) {
    const chosen = core.chosen(key);
    const session = lookUpSession(chosen, requestId);
    if (session.kind === 'duplicate') return session.result;
    if (session.kind === 'superseded') {
      throw new PaxosStoreError('PRECONDITION_FAILED', 'a newer request of this client was already applied to this key; the outcome of this one is unknown');
    }
    const evaluation = evaluate(operation, chosen);
    if (evaluation.kind !== 'write') {
      const confirmed = yield* consistentRead(context, key);
      if (confirmed.entryId !== chosen.entryId) continue;
      if (evaluation.kind === 'wrongType') throw new PaxosStoreError('WRONG_TYPE', evaluation.message);
      return evaluation.result;
    }
    // Encoded once here; the record and every message copy these bytes (wire-codec.ts EncodedPayload).
    const payload = encodeEntryPayload(buildPayload(chosen, evaluation.value, evaluation.result, core.replicaId, requestId, config.sessionsMax));
    const outcome = yield* propose(context, key, chosen.entryId + 1, payload);
    if (outcome === 'noQuorum' || outcome === 'contention') {
      lastFailure = outcome;
      failures++;
    }
  }
  throw lastFailure === 'noQuorum'
    ? new PaxosStoreError('NO_QUORUM', 'no majority answered in time; the write may still be chosen')
    : new PaxosStoreError('CONTENTION', 'the write kept losing its entry to concurrent writes; it may still be chosen');
}

/** How many times the stall bounds (writeAttemptsMax, readRoundsMax) a request may spend on rounds in which its key made progress. */
const PROGRESS_ROUNDS_FACTOR = 16;

/** Returns an entry confirmed to be the latest chosen one at some point during the call. */
function* consistentRead(context: ProcedureContext, key: KeyHandle): Generator<Wait, ChosenEntry, boolean> {
  const { core, config } = context;
  if (context.bugs.localReadWithoutMajority) return core.chosen(key);
  // As for writes: a round restarted because a newer entry was chosen meanwhile is progress on
  // the key, so it counts against the larger bound only; rounds that end without a decision
  // count against readRoundsMax.
  let stalledRounds = 0;
  let chosenId = core.chosen(key).entryId;
  // The first round asks only as many peers as a majority needs when this replica's own state is
  // clean (ReplicaCore.beginRead); a round like that which does not decide is repeated with all.
  let widen = false;
  for (
    let round = 0;
    stalledRounds < config.readRoundsMax && round < config.readRoundsMax * PROGRESS_ROUNDS_FACTOR;
    round++, stalledRounds += core.chosen(key).entryId === chosenId ? 1 : 0
  ) {
    chosenId = core.chosen(key).entryId;
    const partial = !widen && core.ownStateClean(key);
    const readId = core.beginRead(key, partial ? 'majority' : 'all');
    const readStartTick = core.now;
    const canDecide = (): boolean => {
      if (core.chosen(key).entryId !== chosenId) return true;
      const status = core.readStatus(readId);
      return (
        status.clean >= core.majority ||
        status.aheadPeer !== null ||
        status.unclean > core.replicaIds.length - core.majority ||
        (partial && status.pending === 0)
      );
    };
    try {
      yield { key: key.name, until: canDecide, ticks: context.roundTrips.readTimeoutTicks() };
      if (core.chosen(key).entryId !== chosenId) continue;
      const status = core.readStatus(readId);
      if (status.clean >= core.majority) {
        context.roundTrips.observe(core.now - readStartTick);
        return core.chosen(key);
      }
      if (status.aheadPeer !== null) {
        core.requestFetch(key, status.aheadPeer);
        yield { key: key.name, until: () => core.chosen(key).entryId !== chosenId, ticks: context.roundTrips.readTimeoutTicks() };
        continue;
      }
      // Timed out without a clean majority: the wait is a lower bound of the round trip, so the
      // next round waits longer if that was slow.
      if (status.pending > 0 && status.unclean === 0) context.roundTrips.observe(core.now - readStartTick);
      // A partial round that did not decide (an unclean reply, or a silent peer): ask everyone.
      if (partial) {
        widen = true;
        continue;
      }
      // Nobody vouched against the entry, some just did not answer: ask again.
      if (status.unclean === 0) continue;
    } finally {
      core.endRead(readId);
    }
    const outcome = yield* propose(context, key, chosenId + 1, null);
    if (outcome === 'nothingToFinish' && core.chosen(key).entryId === chosenId) return core.chosen(key);
  }
  throw new PaxosStoreError('TIMEOUT', 'consistent read could not confirm the latest value in time');
}

/**
 * Drives entry `entryId` to a decision, proposing `payload` if nothing else was accepted (or
 * nothing at all when `payload` is null: returns 'nothingToFinish' when a majority promised and
 * none of them had accepted anything).
 */
function* propose(context: ProcedureContext, key: KeyHandle, entryId: number, payload: EntryPayload | null): Generator<Wait, ProposeOutcome, boolean> {
  const { core, config } = context;
  const decided = (): boolean => core.chosen(key).entryId >= entryId;
  // One proposal per key per replica at a time: requests queue here instead of duelling each
  // other with ever higher ballots (they would livelock under load). Waiting is bounded.
  const slotWaitTicks = config.phaseTimeoutTicks * config.proposeRoundsMax;
  for (let waited = 0; core.isProposing(key); waited += config.resendTicks) {
    if (waited >= slotWaitTicks) return 'contention';
    yield { key: key.name, until: () => decided() || !core.isProposing(key), ticks: config.resendTicks };
    if (decided()) return 'decided';
  }
  // A rebuilding replica proposes only where it may vote; the key advances by other replicas'
  // writes meanwhile, and catch-up brings this replica past its threshold. It asks for that
  // catch-up itself: voters answer a write's proposer only (replica-core.ts onPaxos), so a
  // learner does not overhear the decisions it needs.
  for (let waited = 0; !core.canVote(key); waited += config.resendTicks) {
    if (waited >= slotWaitTicks) return 'noQuorum';
    for (const peer of core.peers) core.requestFetch(key, peer);
    yield { key: key.name, until: () => decided() || core.canVote(key), ticks: config.resendTicks };
    if (decided()) return 'decided';
    if (core.isProposing(key)) return 'contention';
  }
  core.beginProposing(key);
  try {
    return yield* proposeRounds(context, key, entryId, payload);
  } finally {
    core.endProposing(key);
  }
}

function* proposeRounds(context: ProcedureContext, key: KeyHandle, entryId: number, payload: EntryPayload | null): Generator<Wait, ProposeOutcome, boolean> {
  const { core, config, random } = context;
  const decided = (): boolean => core.chosen(key).entryId >= entryId;
  let failure: ProposeOutcome = 'contention';
  for (let round = 0; round < config.proposeRoundsMax; round++) {
    if (decided()) return 'decided';
    if (round > 0) {
      const backoffTicks = 1 + random.int(config.backoffTicks * 2 ** Math.min(round, 6));
      yield { key: key.name, until: decided, ticks: backoffTicks };
      if (decided()) return 'decided';
    }
    if (core.chosen(key).entryId + 1 !== entryId) return 'decided';
    let ballot: Ballot;
    if (payload !== null && round === 0 && core.canPrepareSkip(key)) {
      ballot = core.acceptDirect(key, payload);
    } else {
      ballot = core.prepare(key);
      const promised = (): boolean => core.instance(key).promisedCount(ballot) >= core.majority;
      const phase1 = yield* awaitPhase(context, key, entryId, ballot, promised);
      if (phase1 === 'decided') return 'decided';
      if (phase1 !== 'ready') {
        failure = phase1 === 'timeout' ? 'noQuorum' : 'contention';
        continue;
      }
      const attempt = core.maybeAccept(key, ballot, payload);
      if (attempt === 'nothingToFinish') return 'nothingToFinish';
      if (attempt !== 'accepted') continue;
    }
    const phase2 = yield* awaitPhase(context, key, entryId, ballot, decided);
    if (phase2 === 'decided' || decided()) return 'decided';
    failure = phase2 === 'timeout' ? 'noQuorum' : 'contention';
  }
  return failure;
}

/**
 * Waits for `goal`, retransmitting the own state at the estimator's resend interval, until
 * preempted or timed out. Its duration (or its timeout) is a round-trip sample.
 */
function* awaitPhase(context: ProcedureContext, key: KeyHandle, entryId: number, ballot: Ballot, goal: () => boolean): Generator<Wait, PhaseOutcome, boolean> {
  const { core, roundTrips } = context;
  const decided = (): boolean => core.chosen(key).entryId >= entryId;
  const preempted = (): boolean => core.isPreempted(key, entryId, ballot);
  const until = (): boolean => decided() || goal() || preempted();
  const startTick = core.now;
  const timeoutTicks = roundTrips.phaseTimeoutTicks();
  for (let waited = 0; waited < timeoutTicks; ) {
    const intervalTicks = roundTrips.resendTicks();
    yield { key: key.name, until, ticks: intervalTicks };
    if (decided() || goal()) {
      roundTrips.observe(core.now - startTick);
      return decided() ? 'decided' : 'ready';
    }
    if (preempted()) return 'preempted';
    core.broadcastState(key);
    roundTrips.resends++;
    waited += intervalTicks;
  }
  roundTrips.observe(core.now - startTick);
  return 'timeout';
}
