/**
 * The pure consensus core of one replica (one shard) for many keys: per key a trimmed PaxosLog
 * (chosen entry i + the Instance of entry i+1), plus the bookkeeping of consistent reads.
 *
 * Inputs: `step(from, message)`, `tick()`, and the proposer actions the request coroutines call
 * (`prepare`, `acceptDirect`, `maybeAccept`, `beginRead`, …). Outputs, etcd-raft "Ready" style:
 * `takeEffects()` returns the records to persist (one per changed key, the encoded PaxosLog) and
 * the messages to send; `takeTouchedKeys()` names the keys whose state changed. The caller must
 * make the records durable before sending the messages (the scheduler does).
 *
 * Catch-up: every message carries the sender's chosen id for the key. A receiver that is ahead
 * pushes its chosen entry (a full snapshot) to the sender; one that is behind asks the sender with
 * `fetch` (rate-limited per key). Learning a chosen entry replaces the whole log of the key.
 *
 * State of keys is loaded lazily from storage (`load(key)`, synchronous like KvEngine.get), so
 * recovery after a restart is "nothing to do": the first message or request for a key reads its
 * durable record; views of other replicas start empty and refill from their next messages.
 *
 * Rebuild of a wiped replica (`rebuilding: true`): such a replica looks like one that never saw
 * its keys, but before the wipe it may have voted, and voting again from a pristine state could
 * let two values be chosen. So a key without a durable record is probed first: a majority of the
 * OTHER replicas report (chosen id, accepted beyond it?), X = max of chosen id + (1 if accepted
 * beyond). The replica votes on the key only at entries ≥ X + 2. Why: if the wiped replica's old
 * vote at entry e was part of an accepting majority, a probed replica of that majority still
 * shows it (accepted at e, or chosen ≥ e), so e ≤ X; and the wiped replica's open entry was at most
 * the global chosen + 1 ≤ X + 1. Below that it is a learner: it catches up chosen entries in memory
 * but persists the key only once it may vote at chosen+1, so a later restart cannot vote early.
 */
import { assert } from '../util/assert.js';
import { keyName } from '../util/byte-codec.js';
import { type Ballot, ballotsEqual, compareBallots, prepareSkipBallot } from './ballot.js';
import type { ReplicaBugs } from './config.js';
import { type AcceptAttempt, Instance, summarize } from './instance.js';
import type { PeerMessage, ReadReplyMessage } from './messages.js';
import { type ChosenEntry, decodePaxosLog, EMPTY_CHOSEN_ENTRY, type EntryPayload, encodePaxosLog, PRISTINE_ACCEPTOR_STATE, type PaxosLogRecord } from './paxos-log.js';

/** One record for the group commit: the key and its encoded PaxosLog. */
export interface PersistRecord {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ReplicaCoreOptions {
  readonly replicaId: number;
  readonly replicaIds: readonly number[];
  /** The durable PaxosLog record of a key, or undefined for a key never written here. */
  readonly load: (key: Uint8Array) => Uint8Array | undefined;
  readonly fetchIntervalTicks: number;
  /** Keys kept in memory; idle keys beyond it are evicted (their durable record is the state). */
  readonly keysInMemoryMax?: number;
  /** The replica's disk was wiped: probe keys without a record before voting on them (header). */
  readonly rebuilding?: boolean;
  readonly bugs?: ReplicaBugs;
}

/**
 * Everything this replica keeps about one key. Also the handle a request's coroutine holds for its
 * key (KeyHandle): core methods take it instead of the key name, which saves a lookup in a Map of
 * up to keysInMemoryMax keys on every call (a write made about twenty). A handle stays valid while
 * a coroutine on its key is alive, because eviction skips such keys (evictIdle's `isIdle`).
 */
class KeyState {
  chosen: ChosenEntry;
  instance: Instance;
  lastFetchTick = Number.NEGATIVE_INFINITY;
  /** Last tick we pushed our chosen entry to each lagging peer (pushes are full snapshots); null until the first push, since most keys never lag. */
  lastPushTick: Map<number, number> | null = null;
  /** This replica votes (promises, accepts, persists) only on entries ≥ this (rebuild, header). */
  votingFromEntry: number;
  /** Records of this key handed to a group commit that is not durable yet (no eviction until 0). */
  pendingCommits = 0;
  /** The rebuild probe of this key while its voting threshold is unknown. */
  probe: { readId: number; sentTick: number; readonly replies: Map<number, ReadReplyMessage> } | null = null;
  /**
   * True when `chosen` is known chosen from durable states alone (see isChosenDurable): results
   * that depend on it may be released before this replica's next group commit.
   */
  chosenDurable = true; // read from the durable record (or nothing chosen yet)
  /** The ballot the chosen entry was decided at, when learned from votes here (memory only). */
  chosenBallot: Ballot | null = null;
  /** The highest ballot this replica's own DURABLE record holds as accepted for the open entry. */
  durableAccepted: { readonly entryId: number; readonly ballot: Ballot } | null;
  /** Used since eviction last passed it (CLOCK): such a key goes to the back of the Map instead. */
  referenced = false;
  /** A proposal of this replica is in progress on the key (one proposer per key per replica). */
  proposing = false;
  /** Dropped from memory by eviction: a handle to it must not be used again. */
  evicted = false;

  constructor(
    readonly key: Uint8Array,
    readonly name: string,
    record: PaxosLogRecord,
    instance: Instance,
    votingFromEntry: number,
  ) {
    this.chosen = record.chosen;
    this.instance = instance;
    this.votingFromEntry = votingFromEntry;
    this.durableAccepted = record.open.accepted === null ? null : { entryId: record.chosen.entryId + 1, ballot: record.open.accepted.ballot };
  }
}

/** A request coroutine's reference to its key's state (see KeyState). */
export type KeyHandle = KeyState;

/** A key as core methods accept it: its bytes, its name (latin1 of the bytes) or a handle. */
export type KeyRef = Uint8Array | string | KeyHandle;

/** A record handed to a group commit, with what it persisted, to learn what became durable (onCommitted). */
interface CommitRecord extends PersistRecord {
  readonly state: KeyState;
  readonly chosenId: number;
  readonly openEntryId: number;
  readonly acceptedBallot: Ballot | null;
}

export const KEYS_IN_MEMORY_MAX_DEFAULT = 100_000;
/** Eviction looks at most this many keys per key it must evict (busy keys are skipped). */
const EVICTION_SCAN_FACTOR = 4;

/** 32-bit FNV-1a constants (firstEntryOwner). */
const FNV_OFFSET_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** Probe rounds of a rebuilding replica are re-sent after this many fetch intervals without a majority. */
const PROBE_RESEND_INTERVALS = 5;

export interface ReadStatus {
  /** Replies (own state included) at the same chosen id with nothing accepted beyond it. */
  readonly clean: number;
  /** Replies that cannot vouch for the chosen id (accepted something beyond, or lagging). */
  readonly unclean: number;
  /** A replica that reported a later chosen entry, if any. */
  readonly aheadPeer: number | null;
  /** Peers asked by this round that have not answered yet. */
  readonly pending: number;
}

interface ReadTracker {
  readonly name: string;
  readonly chosenId: number;
  readonly replies: Map<number, ReadReplyMessage>;
  readonly asked: number;
  readonly fanout: 'majority' | 'all';
  /** Reads sharing this round (see beginRead). */
  refs: number;
}

/** Peers heard from within this many ticks count as equally alive when picking read targets. */
const READ_TARGET_ALIVE_TICKS = 100;

export class ReplicaCore {
  readonly replicaId: number;
  readonly replicaIds: readonly number[];
  readonly peers: readonly number[];
  readonly majority: number;
  /** Every peer's bit in a mask over `peers` (index i ↔ bit i). */
  private readonly allPeerBits: number;
  /** Membership in a fixed order, so every replica maps a key to the same first-entry owner. */
  private readonly sortedReplicaIds: readonly number[];
  private readonly keys = new Map<string, KeyState>();
  /** The key state `state()` returned last (see there); never an evicted one. */
  private lastState: KeyState | null = null;
  private readonly reads = new Map<number, ReadTracker>();
  /** Rebuild probes in flight: read id → key name. */
  private readonly probes = new Map<number, string>();
  private nextReadId = 1;
  /** Last tick each peer sent anything (read targets prefer peers that are talking). */
  private readonly lastHeardTick = new Map<number, number>();
  /** Key → the read round started in the current turn (cleared by takeEffects), which later reads of that turn may join. */
  private readonly joinableReads = new Map<string, number>();
  /** Reads that shared a round started by another read of the same turn (a counter for metrics). */
  readsJoined = 0;
  private readRotation = 0;
  /** Scratch of readTargets: when each peer was last heard from, and the peers picked. */
  private readonly readTargetHeard: number[] = [];
  private readonly readTargetScratch: number[] = [];
  private nowTicks = 0;
  private readonly dirty = new Set<KeyState>();
  /** Keys whose own state is owed to peers at the end of the turn → bit i set for this.peers[i]. */
  private readonly stateSends = new Map<KeyState, number>();
  private sends = new Map<number, PeerMessage[]>();
  private touched = new Set<string>();
  private touchedSpare = new Set<string>();
  private readonly bugs: ReplicaBugs;

  constructor(private readonly options: ReplicaCoreOptions) {
    this.replicaId = options.replicaId;
    this.replicaIds = [...options.replicaIds];
    assert(new Set(this.replicaIds).size === this.replicaIds.length, 'replica ids are distinct');
    assert(this.replicaIds.every((id) => Number.isSafeInteger(id) && id >= 1), 'replica ids are positive integers');
    this.peers = this.replicaIds.filter((id) => id !== this.replicaId);
    this.majority = Math.floor(this.replicaIds.length / 2) + 1;
    assert(this.peers.length <= 30, 'at most 31 replicas (peer bit masks)');
    this.allPeerBits = (1 << this.peers.length) - 1;
    this.sortedReplicaIds = [...this.replicaIds].sort((a, b) => a - b);
    this.bugs = options.bugs ?? {};
  }

  // ── queries ────────────────────────────────────────────────────────────────────────────────

  chosen(key: KeyRef): ChosenEntry {
    return this.state(key).chosen;
  }

  instance(key: KeyRef): Instance {
    return this.state(key).instance;
  }

  get now(): number {
    return this.nowTicks;
  }

  /** False while a rebuilding replica may not vote on the key's open entry (see the header). */
  canVote(key: KeyRef): boolean {
    const state = this.state(key);
    return state.instance.entryId >= state.votingFromEntry;
  }

  // ── effects ────────────────────────────────────────────────────────────────────────────────

  /** The keys touched since the last call; the returned set is reused (cleared) by the call after next. */
  takeTouchedKeys(): Iterable<string> {
    const touched = this.touched;
    this.touched = this.touchedSpare;
    if (this.touched.size > 0) this.touched.clear();
    this.touchedSpare = touched;
    return touched;
  }

  takeEffects(): { records: PersistRecord[]; sends: Map<number, PeerMessage[]> } {
    const records: PersistRecord[] = [];
    for (const state of this.dirty) {
      // A learner key is kept in memory only: a durable record would let a restart vote too early.
      if (state.instance.entryId < state.votingFromEntry) continue;
      const record: PaxosLogRecord = { chosen: state.chosen, open: state.instance.own };
      const persist: CommitRecord = {
        key: state.key,
        value: encodePaxosLog(record),
        state,
        chosenId: state.chosen.entryId,
        openEntryId: state.instance.entryId,
        acceptedBallot: state.instance.own.accepted?.ballot ?? null,
      };
      records.push(persist);
      state.pendingCommits++;
    }
    // Map#clear allocates a fresh table even when the map is empty, and most turns have nothing.
    if (this.dirty.size > 0) this.dirty.clear();
    for (const [state, peerBits] of this.stateSends) this.sendStates(state, peerBits);
    if (this.stateSends.size > 0) this.stateSends.clear();
    // This turn's read rounds leave now: reads of later turns must start rounds of their own.
    if (this.joinableReads.size > 0) this.joinableReads.clear();
    const sends = this.sends;
    this.sends = new Map();
    return { records, sends };
  }

  /**
   * The group commit holding these records is durable: lets their keys be evicted, and records
   * what of each key is now durable here (its chosen entry, its own accept of the open entry).
   * Each record is the whole state of its key, so this holds per key whatever order commits
   * complete in.
   */
  onCommitted(records: readonly PersistRecord[]): void {
    for (const record of records) {
      // Only records of takeEffects come back here; a key with a commit in flight is never evicted.
      const snapshot = record as CommitRecord;
      const state = snapshot.state;
      state.pendingCommits--;
      if (snapshot.chosenId === state.chosen.entryId) state.chosenDurable = true;
      const ballot = snapshot.acceptedBallot;
      if (ballot !== null && snapshot.openEntryId === state.instance.entryId) {
        const known = state.durableAccepted;
        if (known === null || known.entryId !== snapshot.openEntryId || compareBallots(ballot, known.ballot) > 0) {
          state.durableAccepted = { entryId: snapshot.openEntryId, ballot };
        }
      }
    }
  }

  /**
   * True when the key's chosen entry is known chosen from durable states only, so a result
   * computed from it survives a crash of this replica and may be released before this replica's
   * pending group commits: the entry was pushed by a peer (a peer sends only what it persisted),
   * or it was learned from a majority of accepts each of which is durable (peers' views, and this
   * replica's own accept only once the commit holding it completed), or this replica's record of
   * the chosen entry is itself durable. A decision counted with an own accept still in flight
   * (e.g. an acceptor that learns "chosen" in the very turn it accepts) is NOT durable: a crash
   * could take that vote back and let another value be chosen.
   */
  isChosenDurable(name: string): boolean {
    return this.keys.get(name)?.chosenDurable === true;
  }

  get keysInMemory(): number {
    return this.keys.size;
  }

  /**
   * Evicts least recently used keys beyond keysInMemoryMax that nothing refers to: no request
   * coroutine (`isIdle`), no proposal, probe, unsent state or record, and no commit in flight, so
   * reloading the durable record gives back exactly the evicted state (views are soft state).
   */
  evictIdle(isIdle: (name: string) => boolean): number {
    const limit = this.options.keysInMemoryMax ?? KEYS_IN_MEMORY_MAX_DEFAULT;
    const excess = this.keys.size - limit;
    if (excess <= 0) return 0;
    let evicted = 0;
    let scanned = 0;
    const secondChances: KeyState[] = [];
    for (const [name, state] of this.keys) {
      if (evicted >= excess || scanned++ >= excess * EVICTION_SCAN_FACTOR) break;
      if (state.referenced) {
        state.referenced = false;
        secondChances.push(state);
        continue;
      }
      const busy = state.pendingCommits > 0 || state.probe !== null || this.dirty.has(state) || this.stateSends.has(state) || state.proposing;
      if (busy || !isIdle(name)) continue;
      this.keys.delete(name);
      state.evicted = true;
      if (this.lastState === state) this.lastState = null;
      evicted++;
    }
    // Map order approximates recency: keys used since the last pass go to the back.
    for (const state of secondChances) {
      this.keys.delete(state.name);
      this.keys.set(state.name, state);
    }
    return evicted;
  }

  /** True while tick() may produce effects (rebuild probes in flight). */
  get hasTimers(): boolean {
    return this.probes.size > 0;
  }

  tick(ticks = 1): void {
    this.nowTicks += ticks;
    for (const name of [...this.probes.values()]) {
      const state = this.keys.get(name)!;
      if (state.probe !== null && this.nowTicks - state.probe.sentTick >= PROBE_RESEND_INTERVALS * this.options.fetchIntervalTicks) this.sendProbe(state);
    }
  }

  // ── proposer actions (called by request coroutines) ─────────────────────────────────────────

  /** Starts phase 1 at a ballot above every round seen for the open entry; returns the ballot. */
  prepare(key: KeyRef): Ballot {
    const state = this.state(key);
    assert(this.canVote(key), 'only a voting replica prepares');
    const ballot: Ballot = { round: state.instance.highestRound() + 1, replicaId: this.replicaId };
    state.instance.prepare(ballot);
    this.ownStateChanged(state);
    return ballot;
  }

  /**
   * Prepare-skip is allowed only to the replica that proposed the value chosen at the previous
   * entry, and only while its own state of the open entry is pristine. There is exactly one such
   * replica per entry (one value is chosen per entry and it names one proposer), so the round-0
   * ballot `(0, proposer)` carries one value at most; see Instance.acceptDirect for why the lowest
   * ballot may skip phase 1.
   *
   * Entry 1 has no previous proposer; its owner is `firstEntryOwner(key)`, a pure function of the
   * key and the membership that every replica computes alike, so again exactly one replica may use
   * round 0 there (the others prepare at round ≥ 1, which pre-empts it). A rebuilding replica never
   * votes at entry 1 (its threshold is at least 2), so a wiped owner cannot reuse the ballot.
   */
  canPrepareSkip(key: KeyRef): boolean {
    const state = this.state(key);
    if (!state.instance.isPristine() || !this.canVote(key)) return false;
    const owner = state.chosen.entryId === 0 ? this.firstEntryOwner(state.key) : state.chosen.payload?.proposerId;
    return owner === this.replicaId || this.bugs.prepareSkipByAnyReplica === true;
  }

  /** The replica that may prepare-skip entry 1 of `key`: FNV-1a of the key over the sorted ids. */
  firstEntryOwner(key: Uint8Array): number {
    let hash = FNV_OFFSET_BASIS;
    for (const byte of key) hash = Math.imul(hash ^ byte, FNV_PRIME) >>> 0;
    return this.sortedReplicaIds[hash % this.sortedReplicaIds.length];
  }

  acceptDirect(key: KeyRef, payload: EntryPayload): Ballot {
    assert(this.canPrepareSkip(key), 'prepare-skip only for the proposer of the last chosen entry');
    const state = this.state(key);
    const ballot = prepareSkipBallot(this.replicaId);
    state.instance.acceptDirect(ballot, payload);
    this.ownStateChanged(state);
    this.maybeLearnFromInstance(state);
    return ballot;
  }

  maybeAccept(key: KeyRef, ballot: Ballot, payload: EntryPayload | null): AcceptAttempt {
    const state = this.state(key);
    const before = state.instance.own;
    const attempt = state.instance.maybeAccept(ballot, payload);
    if (state.instance.own !== before) {
      this.ownStateChanged(state);
      this.maybeLearnFromInstance(state);
    }
    return attempt;
  }

  /** True when the own promise of the open entry went above `ballot` (another proposer won). */
  isPreempted(key: KeyRef, entryId: number, ballot: Ballot): boolean {
    const state = this.state(key);
    return state.instance.entryId === entryId && compareBallots(state.instance.own.promised, ballot) > 0;
  }

  /** True while a proposal of this replica is in progress on the key: one at a time, so a replica's own requests never duel. */
  isProposing(key: KeyRef): boolean {
    return this.state(key).proposing;
  }

  beginProposing(key: KeyRef): void {
    const state = this.state(key);
    assert(!state.proposing, 'one proposer per key per replica');
    state.proposing = true;
  }

  endProposing(key: KeyRef): void {
    const state = this.state(key);
    state.proposing = false;
    this.touched.add(state.name); // wakes the next request waiting to propose on this key
  }

  /** The handle of a key for a request coroutine on it (see KeyState). */
  handle(name: string): KeyHandle {
    return this.state(name);
  }

  /** Retransmits the own state of the open entry to every peer (lost messages, restarted peers). */
  broadcastState(key: KeyRef): void {
    const state = this.state(key);
    if (!this.canVote(key)) return;
    this.scheduleStateSends(state, this.allPeerBits);
  }

  /** Asks `peer` for its chosen entry of the key (it reported a later one). */
  requestFetch(key: KeyRef, peer: number): void {
    const state = this.state(key);
    this.send(peer, { type: 'fetch', key: state.key, chosenId: state.chosen.entryId });
    state.lastFetchTick = this.nowTicks;
  }

  // ── consistent reads ────────────────────────────────────────────────────────────────────────

  /**
   * Starts a consistent-read round at the current chosen id. `fanout` 'all' asks every peer; 'majority' asks just enough
   * peers to complete a majority with this replica (one of two in a 3-replica group), picking
   * peers heard from recently and rotating among them: half the read traffic when this
   * replica's own state is clean, which is the common case. The procedure widens to 'all' when a
   * partial round does not decide (readStatus().pending reaches 0 without a clean majority).
   */
  beginRead(key: KeyRef, fanout: 'majority' | 'all' = 'all'): number {
    const state = this.state(key);
    // Reads of one key that start in the same turn share one round: its queries leave with this
    // turn's effects, after every read that joins it began, so every answer was given after each
    // of those reads started, which is all the linearizability argument needs (procedures.ts).
    const joinable = this.joinableReads.get(state.name);
    const open = joinable === undefined ? undefined : this.reads.get(joinable);
    if (open !== undefined && open.chosenId === state.chosen.entryId && (open.fanout === 'all' || fanout === 'majority')) {
      open.refs++;
      this.readsJoined++;
      return joinable!;
    }
    const readId = this.nextReadId++;
    const targets = fanout === 'all' ? this.peers : this.readTargets();
    this.reads.set(readId, { name: state.name, chosenId: state.chosen.entryId, replies: new Map(), asked: targets.length, fanout, refs: 1 });
    this.joinableReads.set(state.name, readId);
    for (const peer of targets) this.send(peer, { type: 'readQuery', key: state.key, chosenId: state.chosen.entryId, readId });
    return readId;
  }

  /** True when this replica's own state vouches for its chosen entry (see readStatus). */
  ownStateClean(key: KeyRef): boolean {
    const state = this.state(key);
    return state.instance.own.accepted === null && this.canVote(state.name);
  }

  /**
   * The peers a 'majority' read asks: those heard from most recently (all heard within
   * READ_TARGET_ALIVE_TICKS count as equal), ties broken by a rotating order. Picked by a
   * selection loop into a reused array, not a sort of ranked objects: this runs once per read
   * round, and the sort's garbage was the largest allocation of a linearizable GET. The result is
   * valid until the next call.
   */
  private readTargets(): readonly number[] {
    const needed = this.majority - 1;
    const count = this.peers.length;
    if (needed >= count) return this.peers;
    const rotation = this.readRotation++;
    const aliveSince = this.nowTicks - READ_TARGET_ALIVE_TICKS;
    const heard = this.readTargetHeard;
    for (let index = 0; index < count; index++) heard[index] = Math.min(this.lastHeardTick.get(this.peers[index]) ?? Number.NEGATIVE_INFINITY, aliveSince);
    const targets = this.readTargetScratch;
    targets.length = 0;
    let taken = 0;
    for (let pick = 0; pick < needed; pick++) {
      let best = -1;
      for (let index = 0; index < count; index++) {
        if ((taken & (1 << index)) !== 0) continue;
        if (best < 0 || heard[index] > heard[best] || (heard[index] === heard[best] && (index + rotation) % count < (best + rotation) % count)) best = index;
      }
      taken |= 1 << best;
      targets.push(this.peers[best]);
    }
    return targets;
  }

  readStatus(readId: number): ReadStatus {
    const tracker = this.reads.get(readId);
    assert(tracker !== undefined, 'status of an open read');
    const state = this.state(tracker.name);
    let clean = state.chosen.entryId === tracker.chosenId && this.ownStateClean(tracker.name) ? 1 : 0;
    let unclean = 1 - clean;
    let aheadPeer: number | null = null;
    for (const [peer, reply] of tracker.replies) {
      if (reply.chosenId > tracker.chosenId) aheadPeer = peer;
      if (reply.chosenId === tracker.chosenId && !reply.acceptedBeyondChosen) clean++;
      else unclean++;
    }
    return { clean, unclean, aheadPeer, pending: Math.max(0, tracker.asked - tracker.replies.size) };
  }

  endRead(readId: number): void {
    const tracker = this.reads.get(readId);
    if (tracker !== undefined && --tracker.refs > 0) return;
    this.reads.delete(readId);
    if (tracker !== undefined && this.joinableReads.get(tracker.name) === readId) this.joinableReads.delete(tracker.name);
  }

  // ── input ───────────────────────────────────────────────────────────────────────────────────

  step(from: number, message: PeerMessage): void {
    assert(this.peers.includes(from), 'message from a peer');
    this.lastHeardTick.set(from, this.nowTicks);
    const state = this.state(message.key);
    this.touched.add(state.name);
    this.compareChosen(state, from, message);
    switch (message.type) {
      case 'paxos':
        this.onPaxos(state, from, message);
        return;
      case 'chosen':
        // A peer sends its chosen entry only once it (and everything it learned it from) is durable.
        this.learnChosen(state, message.entry, true);
        return;
      case 'fetch':
        // Answered in compareChosen when we are ahead.
        return;
      case 'readQuery':
        this.send(from, {
          type: 'readReply',
          key: state.key,
          chosenId: state.chosen.entryId,
          readId: message.readId,
          // A learner cannot vouch that it never accepted beyond its chosen entry.
          acceptedBeyondChosen: state.instance.own.accepted !== null || !this.canVote(state.name),
        });
        return;
      case 'readReply': {
        if (this.probes.get(message.readId) === state.name) {
          this.onProbeReply(state, from, message);
          return;
        }
        const tracker = this.reads.get(message.readId);
        if (tracker !== undefined && tracker.name === state.name) tracker.replies.set(from, message);
        return;
      }
    }
  }

  // ── internals ───────────────────────────────────────────────────────────────────────────────

  private state(key: KeyRef): KeyState {
    if (key instanceof KeyState) {
      assert(!key.evicted, 'a key handle is used only while its key is in memory');
      key.referenced = true;
      return key;
    }
    const name = typeof key === 'string' ? key : keyName(key);
    // A request's coroutine asks about its key several times in a row (chosen, canVote, accept…):
    // the last key found skips the lookup in a Map of up to keysInMemoryMax entries.
    const last = this.lastState;
    if (last !== null && last.name === name) {
      last.referenced = true;
      return last;
    }
    let state = this.keys.get(name);
    if (state !== undefined) {
      // CLOCK (second chance) instead of a strict LRU: moving the key to the back of the Map on
      // every access was a tenth of the core's time; eviction moves referenced keys instead.
      state.referenced = true;
      this.lastState = state;
      return state;
    }
    const bytes = typeof key === 'string' ? new Uint8Array(Buffer.from(key, 'latin1')) : key;
    const stored = this.options.load(bytes);
    const record: PaxosLogRecord = stored === undefined ? { chosen: EMPTY_CHOSEN_ENTRY, open: PRISTINE_ACCEPTOR_STATE } : decodePaxosLog(stored);
    const mustProbe = stored === undefined && this.options.rebuilding === true;
    const instance = new Instance(record.chosen.entryId + 1, this.replicaId, this.replicaIds, record.open, this.bugs);
    state = new KeyState(bytes, name, record, instance, mustProbe ? Number.POSITIVE_INFINITY : 0);
    this.keys.set(name, state);
    if (mustProbe) this.sendProbe(state);
    return state;
  }

  private sendProbe(state: KeyState): void {
    if (state.probe !== null) this.probes.delete(state.probe.readId);
    const readId = this.nextReadId++;
    state.probe = { readId, sentTick: this.nowTicks, replies: new Map() };
    this.probes.set(readId, state.name);
    for (const peer of this.peers) this.send(peer, { type: 'readQuery', key: state.key, chosenId: state.chosen.entryId, readId });
  }

  /** A majority of the other replicas answered: vote from X + 2 on (see the header). */
  private onProbeReply(state: KeyState, from: number, reply: ReadReplyMessage): void {
    const probe = state.probe;
    if (probe === null) return;
    probe.replies.set(from, reply);
    if (probe.replies.size < this.majority) return;
    let highest = 0;
    for (const answer of probe.replies.values()) highest = Math.max(highest, answer.chosenId + (answer.acceptedBeyondChosen ? 1 : 0));
    this.probes.delete(probe.readId);
    state.probe = null;
    state.votingFromEntry = this.bugs.rebuildWithoutProbe ? 0 : highest + 2;
    this.dirty.add(state); // persisted now if the key already reached the threshold
    this.touched.add(state.name);
  }

  /** Catch-up in both directions, driven by the chosen id every message carries. */
  private compareChosen(state: KeyState, from: number, message: PeerMessage): void {
    const ours = state.chosen.entryId;
    if (message.chosenId < ours && message.type !== 'chosen' && !this.holdsOurDecision(state, message)) {
      const lastPush = state.lastPushTick?.get(from) ?? Number.NEGATIVE_INFINITY;
      if (message.type === 'fetch' || this.nowTicks - lastPush >= this.options.fetchIntervalTicks) {
        this.send(from, { type: 'chosen', key: state.key, chosenId: ours, entry: state.chosen });
        (state.lastPushTick ??= new Map()).set(from, this.nowTicks);
      }
    } else if (message.chosenId > ours && message.type !== 'chosen' && this.nowTicks - state.lastFetchTick >= this.options.fetchIntervalTicks) {
      this.requestFetch(state.key, from);
    }
  }

  /**
   * The message is the sender's vote for our latest chosen entry, at the ballot it was chosen
   * with: the sender holds the chosen value, and typically knows the decision already (its accept
   * completed the majority; the message was built just before it learned, so its chosen id lags).
   * Pushing the whole entry back would be a wasted full-value message per write; if the sender
   * does not know yet, the chosen id on our next message for the key makes it fetch.
   */
  private holdsOurDecision(state: KeyState, message: PeerMessage): boolean {
    if (message.type !== 'paxos' || message.entryId !== state.chosen.entryId || state.chosenBallot === null) return false;
    const accepted = message.sender.accepted;
    return accepted !== null && ballotsEqual(accepted.ballot, state.chosenBallot);
  }

  private onPaxos(state: KeyState, from: number, message: Extract<PeerMessage, { type: 'paxos' }>): void {
    if (message.entryId !== state.instance.entryId) return; // other entry: compareChosen did the catch-up
    if (!this.canVote(state.name)) {
      // A learner stays silent but still learns decisions from the voters' states.
      state.instance.observe(from, message.sender);
      this.maybeLearnFromInstance(state);
      return;
    }
    const acceptedBefore = state.instance.own.accepted;
    const { ownChanged, senderStale } = state.instance.onMessage(from, message.sender, message.viewOfReceiver);
    if (ownChanged && (state.instance.chosen() !== null || state.instance.own.accepted === acceptedBefore)) {
      // Only the sender still needs our new state, so answer it alone (fewer messages never
      // weaken safety; a lost answer is covered by the sender's retransmission):
      // - a new promise only matters to the proposer collecting promises (classic Paxos phase 1);
      // - an accept that completed a majority: we know the decision, and every other voter
      //   learns it the same way (its own accept + the proposer's state) or from the chosen id
      //   on the proposer's next message.
      // With 3 replicas a prepare-skip write costs 4 messages instead of 6. An accept that does
      // not decide (5 replicas) is still broadcast: the other voters learn the decision from it.
      this.dirty.add(state);
      this.touched.add(state.name);
      this.scheduleStateSends(state, this.peerBit(from));
    } else if (ownChanged) this.ownStateChanged(state);
    else if (senderStale) this.scheduleStateSends(state, this.peerBit(from));
    this.maybeLearnFromInstance(state);
  }

  private maybeLearnFromInstance(state: KeyState): void {
    const proposal = state.instance.chosen();
    if (proposal === null) return;
    const entryId = state.instance.entryId;
    const durableVotes = state.instance.viewsAccepting(proposal.ballot) + (this.ownAcceptDurable(state, entryId, proposal.ballot) ? 1 : 0);
    this.learnChosen(state, { entryId, payload: proposal.payload }, durableVotes >= this.majority);
    state.chosenBallot = proposal.ballot;
  }

  private ownAcceptDurable(state: KeyState, entryId: number, ballot: Ballot): boolean {
    const durable = state.durableAccepted;
    return durable !== null && durable.entryId === entryId && ballotsEqual(durable.ballot, ballot);
  }

  /** `durable`: known chosen from durable states alone (see isChosenDurable). */
  private learnChosen(state: KeyState, entry: ChosenEntry, durable: boolean): void {
    if (entry.entryId <= state.chosen.entryId) return;
    assert(entry.payload !== null, 'a chosen entry above 0 has a payload');
    // State messages are built at the end of the turn; the ones owed for the entry being closed
    // must carry its final state (e.g. our accept, which the proposer needs to learn the
    // decision), so build them before the instance is replaced.
    const owed = this.stateSends.get(state);
    if (owed !== undefined) {
      this.sendStates(state, owed);
      this.stateSends.delete(state);
    }
    state.chosen = entry;
    state.chosenDurable = durable;
    state.chosenBallot = null;
    state.durableAccepted = null;
    state.instance = new Instance(entry.entryId + 1, this.replicaId, this.replicaIds, PRISTINE_ACCEPTOR_STATE, this.bugs);
    this.dirty.add(state);
    this.touched.add(state.name);
  }

  /** Own state changed: persist it, and tell everyone (all replicas learn from all, Algorithm 1). */
  private ownStateChanged(state: KeyState): void {
    this.dirty.add(state);
    this.touched.add(state.name);
    this.scheduleStateSends(state, this.allPeerBits);
  }

  private scheduleStateSends(state: KeyState, peerBits: number): void {
    this.stateSends.set(state, (this.stateSends.get(state) ?? 0) | peerBits);
  }

  private peerBit(peer: number): number {
    return 1 << this.peers.indexOf(peer);
  }

  private sendStates(state: KeyState, peerBits: number): void {
    for (let index = 0; index < this.peers.length; index++) {
      if ((peerBits & (1 << index)) !== 0) this.send(this.peers[index], this.paxosMessage(state, this.peers[index]));
    }
  }

  private paxosMessage(state: KeyState, peer: number): PeerMessage {
    return {
      type: 'paxos',
      key: state.key,
      chosenId: state.chosen.entryId,
      entryId: state.instance.entryId,
      sender: state.instance.own,
      viewOfReceiver: summarize(state.instance.viewOf(peer)),
    };
  }

  private send(peer: number, message: PeerMessage): void {
    let queue = this.sends.get(peer);
    if (queue === undefined) this.sends.set(peer, (queue = []));
    queue.push(message);
  }
}
