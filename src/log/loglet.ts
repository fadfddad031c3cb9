/**
 * One loglet at one replica: a slot-indexed driver over the consensus core's per-instance Paxos
 * (src/consensus/instance.ts). Leaderless: any replica appends by driving the first slot it does
 * not know to be decided; when another value wins that slot it moves on to the next one.
 *
 *   slots:  0 1 2 3 4 5 6 7 …
 *           c c c c o o . .      c = chosen here, o = open instance here, . = nothing yet
 *                   ▲ contiguous (every slot below is chosen here)
 *
 * Prepare-skip: the replica whose value was chosen at slot s-1 goes straight to accept at slot s
 * with ballot (0, self) (Instance.acceptDirect), so a steady single appender needs one round trip
 * per entry. Any contender prepares at round ≥ 1 and pre-empts it.
 *
 * A hole (a slot whose proposer died) is filled by a prepare carrying a NOOP: Paxos returns the
 * value some acceptor already accepted, if any, so filling never overwrites a possible decision.
 * A SEAL ends the loglet: every slot after the first SEAL is void, and an append whose slot lands
 * after it fails with SEALED so the virtual log retries on the next loglet.
 *
 * Persistence rule (Algorithm 1): own state is durable in the LocalStore before any message that
 * reflects it is sent; messages carry the snapshot that was persisted, not the live state.
 */
import { prepareSkipBallot } from '../consensus/ballot.js';
import { Instance, type InstanceBugs, summarize } from '../consensus/instance.js';
import type { AcceptorState } from '../consensus/paxos-log.js';
import { PaxosStoreError } from '../errors.js';
import type { OrderedKvEngine, WriteOperation } from '../storage/engine.js';
import { assert } from '../util/assert.js';
import type { Random } from '../util/random.js';
import type { LogMessage } from './messages.js';
import type { LogClock } from './sim-world.js';
import {
  acceptorKey,
  chosenKey,
  decodeAcceptor,
  decodeSlotValue,
  decodeTrim,
  encodeAcceptor,
  encodeSlotValue,
  encodeTrim,
  fromPayload,
  logletPrefix,
  type SlotKind,
  type SlotValue,
  toPayload,
  trimKey,
} from './slot-codec.js';

/** What a loglet needs from its replica: identity, storage, clock and a way to talk. */
export interface LogletHost {
  readonly replicaId: number;
  readonly replicaIds: readonly number[];
  readonly store: OrderedKvEngine;
  readonly clock: LogClock;
  readonly alive: boolean;
  /** A per-incarnation nonce so proposal tokens never repeat across restarts. */
  readonly nonce: number;
  /** Backoff jitter: without it, dueling proposers with equal delays pre-empt each other forever. */
  readonly random: Random;
  send(to: number, message: LogMessage): void;
  /** Runs background work; errors after a crash are expected and dropped, others are recorded. */
  spawn(work: Promise<unknown>): void;
}

export interface LogletTiming {
  /** Ticks a proposer waits for a decision before it prepares again with a higher round. */
  readonly retryTicks: number;
  /** Slots learned (or filled with NOOP) per round of catch-up. */
  readonly catchUpSlotsMax: number;
  /** Test-only protocol bugs of the consensus core, to show the tests catch them. Never in production. */
  readonly instanceBugs?: InstanceBugs;
}

export const LOGLET_TIMING_DEFAULT: LogletTiming = Object.freeze({ retryTicks: 20, catchUpSlotsMax: 64 });

const decoder = new TextDecoder();

export function sealedError(logletId: number, sealSlot: number): PaxosStoreError {
  return new PaxosStoreError('PRECONDITION_FAILED', `loglet ${logletId} is sealed at slot ${sealSlot}`, { sealed: true, logletId, sealSlot });
}

export function isSealedError(error: unknown): error is PaxosStoreError {
  return error instanceof PaxosStoreError && error.details?.sealed === true;
}

export class Loglet {
  private readonly instances = new Map<number, Instance>();
  private readonly chosen = new Map<number, SlotValue>();
  private readonly waiters = new Map<number, Array<() => void>>();
  private readonly tailQueries = new Map<number, Map<number, number>>();
  private nextQueryId = 0;
  private proposalCounter = 0;
  /** Next slot a local append may claim (slots below were claimed by earlier local appends). */
  private nextProposalSlot = 0;
  /** Every slot below is chosen here (or trimmed). */
  private contiguousSlot = 0;
  /** Highest slot accepted or chosen here, + 1. */
  private localTailSlot = 0;
  private trimSlot = 0;
  /** Highest prefix trim any peer reported: slots below it can no longer be learned from peers. */
  private peerTrimSlot = 0;
  private firstSealSlot: number | null = null;

  constructor(
    readonly logletId: number,
    private readonly host: LogletHost,
    private readonly timing: LogletTiming = LOGLET_TIMING_DEFAULT,
  ) {
    this.load();
  }

  private load(): void {
    const trim = this.host.store.get(trimKey(this.logletId));
    if (trim !== undefined) this.trimSlot = decodeTrim(trim);
    const prefix = new TextEncoder().encode(logletPrefix(this.logletId));
    for (const [key, value] of this.host.store.iterate({ prefix })) {
      const name = decoder.decode(key).slice(prefix.length);
      if (name === 'trim') continue;
      const slot = Number.parseInt(name.slice(2), 16);
      if (name.startsWith('c/')) this.noteChosen(slot, decodeSlotValue(value));
      else if (name.startsWith('a/')) {
        const own = decodeAcceptor(value);
        this.instances.set(slot, this.newInstance(slot, own));
        if (own.accepted !== null) this.localTailSlot = Math.max(this.localTailSlot, slot + 1);
      }
    }
    this.contiguousSlot = Math.max(this.contiguousSlot, this.trimSlot);
    this.advanceContiguous();
  }

  get contiguous(): number {
    return this.contiguousSlot;
  }

  get trimmedBelow(): number {
    return this.trimSlot;
  }

  /** The slot of the first SEAL known here, if every slot before it is known too. */
  get sealSlot(): number | null {
    return this.firstSealSlot !== null && this.firstSealSlot < this.contiguousSlot ? this.firstSealSlot : null;
  }

  chosenAt(slot: number): SlotValue | undefined {
    return this.chosen.get(slot);
  }

  // ── appending ────────────────────────────────────────────────────────────────────────────────

  /**
   * Appends a value and returns its slot once it is chosen and every earlier slot is known here.
   * Throws SEALED (PRECONDITION_FAILED with details.sealed) when the loglet ended before it, and
   * TIMEOUT when `deadline` passes (indeterminate: the value may still be chosen later).
   */
  async append(kind: SlotKind, data: Uint8Array | null, deadline: number): Promise<number> {
    const value: SlotValue = { kind, data, proposerId: this.host.replicaId, token: `${this.host.replicaId}:${this.host.nonce}:${this.proposalCounter++}` };
    let slot = this.claimSlot(0);
    for (;;) {
      this.checkDeadline(deadline);
      const seal = this.sealSlot;
      if (seal !== null && seal < slot) {
        if (kind === 'seal') return seal;
        throw sealedError(this.logletId, seal);
      }
      const decided = this.chosen.get(slot) ?? (await this.decide(slot, value, deadline));
      if (decided.token === value.token) break;
      slot = this.claimSlot(slot + 1);
    }
    await this.learnPrefix(slot, deadline);
    const seal = this.sealSlot;
    if (seal !== null && seal < slot) {
      if (kind === 'seal') return seal;
      throw sealedError(this.logletId, seal);
    }
    return slot;
  }

  /** Concurrent appends of this replica take distinct slots instead of duelling for one. */
  private claimSlot(minimum: number): number {
    const slot = Math.max(minimum, this.contiguousSlot, this.nextProposalSlot);
    this.nextProposalSlot = slot + 1;
    return slot;
  }

  /** Drives `slot` until some value is chosen there (ours or another) and returns it. */
  private async decide(slot: number, value: SlotValue, deadline: number): Promise<SlotValue> {
    this.checkTrimmed(slot);
    const payload = toPayload(value);
    const instance = this.instance(slot);
    const previous = this.chosen.get(slot - 1);
    if (slot > 0 && instance.isPristine() && previous?.proposerId === this.host.replicaId && value.kind !== 'noop') {
      instance.acceptDirect(prepareSkipBallot(this.host.replicaId), payload);
      await this.persistAndBroadcast(slot, instance);
      const decided = await this.waitChosen(slot, this.timing.retryTicks);
      if (decided !== undefined) return decided;
    }
    for (;;) {
      this.checkDeadline(deadline);
      const current = this.chosen.get(slot);
      if (current !== undefined) return current;
      const ballot = { round: instance.highestRound() + 1, replicaId: this.host.replicaId };
      instance.prepare(ballot);
      await this.persistAndBroadcast(slot, instance);
      let acceptSent = false;
      const giveUp = this.host.clock.now() + this.timing.retryTicks;
      while (this.host.clock.now() < giveUp) {
        const decided = this.chosen.get(slot);
        if (decided !== undefined) return decided;
        const attempt = instance.maybeAccept(ballot, payload);
        if (attempt === 'preempted') break;
        if (attempt === 'accepted' && !acceptSent) {
          acceptSent = true;
          await this.persistAndBroadcast(slot, instance);
          continue;
        }
        await this.waitChange(slot, giveUp - this.host.clock.now());
      }
      await this.host.clock.sleep(this.host.random.range(1, this.timing.retryTicks), this.host);
    }
  }

  /** Makes every slot below `slot` known here: asks peers, and fills holes nobody decided with NOOP. */
  async learnPrefix(slot: number, deadline: number): Promise<void> {
    while (this.contiguousSlot < slot) {
      this.checkDeadline(deadline);
      this.checkTrimmed(this.contiguousSlot);
      const missing: number[] = [];
      for (let s = this.contiguousSlot; s < slot && missing.length < this.timing.catchUpSlotsMax; s++) {
        if (!this.chosen.has(s)) missing.push(s);
      }
      for (const s of missing) this.broadcastState(s, this.instance(s).own);
      await this.waitChosen(missing[missing.length - 1], this.timing.retryTicks);
      if (this.contiguousSlot >= slot) return;
      const hole = this.contiguousSlot;
      if (!this.chosen.has(hole)) {
        const noop: SlotValue = { kind: 'noop', data: null, proposerId: this.host.replicaId, token: `${this.host.replicaId}:${this.host.nonce}:${this.proposalCounter++}` };
        await this.decide(hole, noop, deadline);
      }
    }
  }

  /**
   * A linearizable tail: the highest slot accepted at any of a majority, + 1. Every chosen slot was
   * accepted by a majority, which intersects the majority that answered.
   */
  async checkTail(deadline: number): Promise<number> {
    for (;;) {
      this.checkDeadline(deadline);
      const queryId = this.nextQueryId++;
      const replies = new Map<number, number>([[this.host.replicaId, this.localTailSlot]]);
      this.tailQueries.set(queryId, replies);
      for (const peer of this.peers()) this.host.send(peer, { kind: 'tailQuery', loglet: this.logletId, queryId });
      const giveUp = this.host.clock.now() + this.timing.retryTicks;
      while (replies.size < this.majority() && this.host.clock.now() < giveUp) await this.waitChange(-1 - queryId, giveUp - this.host.clock.now());
      this.tailQueries.delete(queryId);
      if (replies.size >= this.majority()) return Math.max(...replies.values());
    }
  }

  /** Drops slots below `slot` here (the caller made sure every replica has applied them). */
  async prefixTrim(slot: number): Promise<void> {
    if (slot <= this.trimSlot) return;
    assert(slot <= this.contiguousSlot, 'trim only what is known here');
    const operations: WriteOperation[] = [{ type: 'put', key: trimKey(this.logletId), value: encodeTrim(slot) }];
    for (let s = this.trimSlot; s < slot; s++) {
      operations.push({ type: 'delete', key: chosenKey(this.logletId, s) });
      operations.push({ type: 'delete', key: acceptorKey(this.logletId, s) });
      this.chosen.delete(s);
      this.instances.delete(s);
    }
    this.trimSlot = slot;
    await this.host.store.batch(operations);
  }

  // ── receiving ────────────────────────────────────────────────────────────────────────────────

  onMessage(from: number, message: LogMessage): void {
    switch (message.kind) {
      case 'state':
        this.onState(from, message.slot, message.sender, message.viewOfReceiver);
        return;
      case 'chosen':
        if (message.slot >= this.trimSlot) this.host.spawn(this.recordChosen(message.slot, message.value));
        return;
      case 'tailQuery':
        this.host.send(from, { kind: 'tailReply', loglet: this.logletId, queryId: message.queryId, tail: this.localTailSlot });
        return;
      case 'tailReply': {
        const replies = this.tailQueries.get(message.queryId);
        if (replies === undefined) return;
        replies.set(from, message.tail);
        this.notify(-1 - message.queryId);
        return;
      }
      case 'trimmed':
        this.peerTrimSlot = Math.max(this.peerTrimSlot, message.trimSlot);
        this.notifyAll();
        return;
    }
  }

  private onState(from: number, slot: number, sender: AcceptorState, viewOfReceiver: ReturnType<typeof summarize>): void {
    if (slot < this.trimSlot) {
      this.host.send(from, { kind: 'trimmed', loglet: this.logletId, trimSlot: this.trimSlot });
      return;
    }
    const known = this.chosen.get(slot);
    if (known !== undefined) {
      this.host.send(from, { kind: 'chosen', loglet: this.logletId, slot, value: known });
      return;
    }
    const instance = this.instance(slot);
    const { ownChanged, senderStale } = instance.onMessage(from, sender, viewOfReceiver);
    const decided = instance.chosen();
    if (decided !== null) {
      this.host.spawn(this.recordChosen(slot, fromPayload(decided.payload)));
      return;
    }
    if (ownChanged) this.host.spawn(this.persistAndBroadcast(slot, instance));
    else if (senderStale) this.sendState(from, slot, instance.own, instance);
    this.notify(slot);
  }

  private async recordChosen(slot: number, value: SlotValue): Promise<void> {
    if (this.chosen.has(slot) || slot < this.trimSlot) return;
    this.noteChosen(slot, value);
    this.instances.delete(slot);
    this.advanceContiguous();
    this.notify(slot);
    await this.host.store.batch([
      { type: 'put', key: chosenKey(this.logletId, slot), value: encodeSlotValue(value) },
      { type: 'delete', key: acceptorKey(this.logletId, slot) },
    ]);
    for (const peer of this.peers()) this.host.send(peer, { kind: 'chosen', loglet: this.logletId, slot, value });
  }

  private noteChosen(slot: number, value: SlotValue): void {
    const previous = this.chosen.get(slot);
    assert(previous === undefined || previous.token === value.token, 'one value chosen per slot');
    this.chosen.set(slot, value);
    this.localTailSlot = Math.max(this.localTailSlot, slot + 1);
    if (value.kind === 'seal' && (this.firstSealSlot === null || slot < this.firstSealSlot)) this.firstSealSlot = slot;
  }

  private advanceContiguous(): void {
    while (this.chosen.has(this.contiguousSlot)) this.contiguousSlot++;
  }

  // ── plumbing ─────────────────────────────────────────────────────────────────────────────────

  private instance(slot: number): Instance {
    let instance = this.instances.get(slot);
    if (instance === undefined) {
      instance = this.newInstance(slot);
      this.instances.set(slot, instance);
    }
    return instance;
  }

  private newInstance(slot: number, own?: AcceptorState): Instance {
    return new Instance(slot, this.host.replicaId, this.host.replicaIds, own, this.timing.instanceBugs);
  }

  private async persistAndBroadcast(slot: number, instance: Instance): Promise<void> {
    const snapshot = instance.own;
    if (snapshot.accepted !== null) this.localTailSlot = Math.max(this.localTailSlot, slot + 1);
    await this.host.store.put(acceptorKey(this.logletId, slot), encodeAcceptor(snapshot));
    if (this.chosen.has(slot)) return;
    this.broadcastState(slot, snapshot, instance);
  }

  private broadcastState(slot: number, snapshot: AcceptorState, instance = this.instance(slot)): void {
    for (const peer of this.peers()) this.sendState(peer, slot, snapshot, instance);
  }

  private sendState(peer: number, slot: number, snapshot: AcceptorState, instance: Instance): void {
    this.host.send(peer, { kind: 'state', loglet: this.logletId, slot, sender: snapshot, viewOfReceiver: summarize(instance.viewOf(peer)) });
  }

  private peers(): number[] {
    return this.host.replicaIds.filter((id) => id !== this.host.replicaId);
  }

  private majority(): number {
    return Math.floor(this.host.replicaIds.length / 2) + 1;
  }

  private checkDeadline(deadline: number): void {
    if (this.host.clock.now() > deadline) throw new PaxosStoreError('TIMEOUT', `loglet ${this.logletId}: no decision before tick ${deadline}`);
  }

  private checkTrimmed(slot: number): void {
    if (slot < this.trimSlot || slot < this.peerTrimSlot) {
      throw new PaxosStoreError('NOT_FOUND', `loglet ${this.logletId}: slot ${slot} was trimmed`, { trimmed: true, slot });
    }
  }

  private async waitChosen(slot: number, ticks: number): Promise<SlotValue | undefined> {
    const giveUp = this.host.clock.now() + ticks;
    while (!this.chosen.has(slot) && this.host.clock.now() < giveUp) await this.waitChange(slot, giveUp - this.host.clock.now());
    return this.chosen.get(slot);
  }

  /** Resolves on the next change of `slot` (negative: a tail query) or after `ticks`. */
  private waitChange(slot: number, ticks: number): Promise<void> {
    return new Promise((resolve) => {
      let list = this.waiters.get(slot);
      if (list === undefined) {
        list = [];
        this.waiters.set(slot, list);
      }
      list.push(resolve);
      void this.host.clock.sleep(Math.max(1, ticks), this.host).then(resolve);
    });
  }

  private notify(slot: number): void {
    const list = this.waiters.get(slot);
    if (list === undefined) return;
    this.waiters.delete(slot);
    for (const resolve of list) resolve();
  }

  private notifyAll(): void {
    for (const slot of [...this.waiters.keys()]) this.notify(slot);
  }
}
