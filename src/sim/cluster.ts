/**
 * A simulated replica group in one thread: replicas (the production Replica class, turns run
 * by the simulator), a simulated network and a simulated durable store per replica, all driven by
 * one seeded Random and one event queue, so a seed replays exactly.
 *
 * - Network: messages may be dropped, duplicated, delayed and reordered; partitions block pairs
 *   of replicas until healed. With `encodeMessages`, every message goes through the binary
 *   wire codec (src/consensus/wire-codec.ts) as on the wire (catches messages that do not survive encoding, and any aliasing between replicas);
 *   without it the objects are shared, which is several times faster (the core never mutates them).
 * - Disk: a group commit becomes durable after a (sometimes slow) delay, in commit order; a crash
 *   drops every commit not yet durable, and the replica restarts from the durable records only.
 * - Agreement oracle: every chosen entry that becomes durable at any replica is compared with the
 *   first one made durable for that (key, entry id) anywhere; a mismatch is a safety failure even
 *   if no client saw it. (Durable, not merely learned: a replica may count its own accept before
 *   it is durable, and a crash then takes both back before anyone could see them.)
 */
import { decodePeerMessages, encodePeerMessage } from '../consensus/wire-codec.js';
import type { ReplicaBugs } from '../consensus/config.js';
import type { ConsensusConfig } from '../consensus/config.js';
import type { PeerMessage } from '../consensus/messages.js';
import { type ChosenEntry, decodePaxosLog } from '../consensus/paxos-log.js';
import type { PersistRecord } from '../consensus/replica-core.js';
import { keyName } from '../util/byte-codec.js';
import { Replica, type ReplicaStorage } from '../consensus/replica.js';
import type { Random } from '../util/random.js';
import { EventQueue } from './event-queue.js';
import type { FaultProfile } from './faults.js';


/** Durable records of one replica; a commit becomes durable only when its event fires. */
class SimStore implements ReplicaStorage {
  readonly durable = new Map<string, Uint8Array>();
  private generation = 0;
  private lastDurableTime = 0;

  constructor(
    private readonly cluster: SimCluster,
    private readonly replicaId: number,
    private readonly random: Random,
  ) {}

  load(key: Uint8Array): Uint8Array | undefined {
    return this.durable.get(keyName(key));
  }

  commit(records: readonly PersistRecord[], done: (error?: Error) => void): void {
    const profile = this.cluster.profile;
    const slow = this.random.chance(profile.slowDiskRate);
    const latency = this.random.range(1, slow ? profile.slowDiskTicksMax : profile.diskTicksMax);
    // fsyncs complete in order: a later commit is never durable before an earlier one.
    const time = Math.max(this.lastDurableTime, this.cluster.now + latency);
    this.lastDurableTime = time;
    const generation = this.generation;
    const copies = records.map((record) => ({ name: keyName(record.key), value: record.value.slice() }));
    this.cluster.events.schedule(time, () => {
      if (generation !== this.generation) return;
      for (const { name, value } of copies) {
        this.durable.set(name, value);
        this.cluster.observeChosen(this.replicaId, name, decodePaxosLog(value).chosen);
      }
      done();
    });
  }

  /** The disk is lost: nothing survives. */
  wipe(): void {
    this.durable.clear();
    this.crash();
  }

  /** Everything not yet durable is lost. */
  crash(): void {
    this.generation++;
    this.lastDurableTime = this.cluster.now;
  }
}

export interface SimClusterOptions {
  readonly replicaCount: number;
  readonly random: Random;
  readonly profile: FaultProfile;
  readonly bugs?: ReplicaBugs;
  readonly config?: Partial<ConsensusConfig>;
  readonly encodeMessages?: boolean;
  /** Small values exercise eviction and reload of key state from the durable store. */
  readonly keysInMemoryMax?: number;
}

export class SimCluster {
  now = 0;
  readonly events = new EventQueue();
  readonly replicaIds: readonly number[];
  profile: FaultProfile;
  readonly agreementFailures: string[] = [];
  readonly counters = { messagesSent: 0, messagesDropped: 0, messagesDuplicated: 0, crashes: 0, wipes: 0, partitions: 0, chosenEntries: 0 };
  /** Replicas whose disk was wiped once: they restart in rebuilding mode from then on. */
  private readonly wiped = new Set<number>();
  private readonly replicas = new Map<number, Replica | null>();
  private readonly stores = new Map<number, SimStore>();
  private readonly blocked = new Set<string>();
  private readonly oracle = new Map<string, Map<number, string>>();
  private readonly random: Random;

  constructor(private readonly options: SimClusterOptions) {
    this.random = options.random;
    this.profile = options.profile;
    this.replicaIds = Array.from({ length: options.replicaCount }, (_, index) => index + 1);
    for (const id of this.replicaIds) {
      this.stores.set(id, new SimStore(this, id, this.random.fork()));
      this.start(id);
    }
  }

  replica(id: number): Replica | null {
    return this.replicas.get(id) ?? null;
  }

  isUp(id: number): boolean {
    return this.replica(id) !== null;
  }

  crash(id: number): void {
    const replica = this.replica(id);
    if (replica === null) return;
    this.counters.crashes++;
    this.stores.get(id)!.crash();
    this.replicas.set(id, null); // dropped without close(): a crash tells nobody anything
  }

  /**
   * Disks may be lost on a minority of replicas only: a majority of lost disks is lost data, from
   * which no protocol recovers safely (the rebuild probe needs a majority of intact replicas).
   */
  mayWipe(id: number): boolean {
    const majority = Math.floor(this.replicaIds.length / 2) + 1;
    return this.wiped.has(id) || this.wiped.size < this.replicaIds.length - majority;
  }

  /** Crash that also loses the disk; the replica restarts in rebuilding mode. */
  wipe(id: number): void {
    if (!this.isUp(id) || !this.mayWipe(id)) return;
    this.crash(id);
    this.counters.wipes++;
    this.stores.get(id)!.wipe();
    this.wiped.add(id);
  }

  start(id: number): void {
    if (this.isUp(id)) return;
    const replica = new Replica({
      replicaId: id,
      replicaIds: this.replicaIds,
      storage: this.stores.get(id)!,
      transport: (peer, messages) => this.send(id, peer, messages),
      random: this.random.fork(),
      config: this.options.config,
      turns: 'manual',
      rebuilding: this.wiped.has(id),
      keysInMemoryMax: this.options.keysInMemoryMax,
      bugs: this.options.bugs,
    });
    this.replicas.set(id, replica);
  }

  /** Blocks traffic between the two groups (both directions) until heal(). */
  partition(groupA: readonly number[], groupB: readonly number[]): void {
    this.counters.partitions++;
    for (const a of groupA) for (const b of groupB) {
      this.blocked.add(`${a}>${b}`);
      this.blocked.add(`${b}>${a}`);
    }
  }

  heal(): void {
    this.blocked.clear();
  }

  get partitioned(): boolean {
    return this.blocked.size > 0;
  }

  /** One tick: due events (deliveries, disk completions, client actions), then a turn per replica. */
  step(): void {
    this.now++;
    for (let event = this.events.popDue(this.now); event !== undefined; event = this.events.popDue(this.now)) event.run();
    for (const id of this.replicaIds) {
      const replica = this.replica(id);
      if (replica === null) continue;
      replica.tick(1);
      replica.runTurn();
    }
  }

  /** End-of-run agreement: every live replica's chosen entry of each key goes through the oracle too. */
  checkFinalAgreement(keyNames: readonly string[]): void {
    for (const id of this.replicaIds) {
      const replica = this.replica(id);
      if (replica === null) continue;
      for (const name of keyNames) this.observeChosen(id, name, replica.core.chosen(name));
    }
  }

  private send(from: number, to: number, messages: readonly PeerMessage[]): void {
    const profile = this.profile;
    for (const message of messages) {
      this.counters.messagesSent++;
      if (this.blocked.has(`${from}>${to}`) || this.random.chance(profile.dropRate)) {
        this.counters.messagesDropped++;
        continue;
      }
      const payload = this.options.encodeMessages ? encodePeerMessage(message) : message;
      const copies = this.random.chance(profile.duplicateRate) ? 2 : 1;
      if (copies === 2) this.counters.messagesDuplicated++;
      for (let copy = 0; copy < copies; copy++) {
        const delay = this.random.range(profile.delayTicksMin, profile.delayTicksMax);
        this.events.schedule(this.now + delay, () => this.deliver(from, to, payload));
      }
    }
  }

  private deliver(from: number, to: number, payload: Uint8Array | PeerMessage): void {
    const replica = this.replica(to);
    if (replica === null || this.blocked.has(`${from}>${to}`)) return;
    replica.receive(from, payload instanceof Uint8Array ? decodeFrameOfOne(payload) : [payload]);
  }

  observeChosen(replicaId: number, name: string, entry: ChosenEntry): void {
    let entries = this.oracle.get(name);
    if (entries === undefined) this.oracle.set(name, (entries = new Map()));
    if (entry.entryId === 0) return;
    const identity = entryIdentity(entry);
    const first = entries.get(entry.entryId);
    if (first === undefined) {
      entries.set(entry.entryId, identity);
      this.counters.chosenEntries++;
    } else if (first !== identity && this.agreementFailures.length < 10) {
      this.agreementFailures.push(`key ${JSON.stringify(name)} entry ${entry.entryId}: replica ${replicaId} learned ${identity}, but ${first} was chosen before`);
    }
  }
}

function entryIdentity(entry: ChosenEntry): string {
  const payload = entry.payload;
  if (payload === null) return 'none';
  const value = payload.value === null ? 'tombstone' : Buffer.from(payload.value).toString('latin1');
  const request = payload.requestId === null ? '-' : `${payload.requestId.clientId}#${payload.requestId.sequence}`;
  return `${JSON.stringify(value)} by ${request} via replica ${payload.proposerId}`;
}

/** Decodes one encoded message (a msgpack bin) as the one element of a frame payload. */
function decodeFrameOfOne(encoded: Uint8Array): PeerMessage[] {
  const payload = new Uint8Array(encoded.length + 1);
  payload[0] = 0x91; // msgpack fixarray of one
  payload.set(encoded, 1);
  return decodePeerMessages(payload);
}
