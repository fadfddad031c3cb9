/**
 * ReplicaCore's durability bookkeeping: when a chosen entry may be trusted by a result released
 * before this replica's pending group commits (isChosenDurable), driven by hand message by message
 * and commit by commit.
 */
import { describe, expect, it } from 'vitest';
import type { PeerMessage } from '../../src/consensus/messages.js';
import type { EntryPayload } from '../../src/consensus/paxos-log.js';
import { type PersistRecord, ReplicaCore } from '../../src/consensus/replica-core.js';

const REPLICAS = [1, 2, 3];
const payload = (value: string, proposerId: number): EntryPayload => ({
  value: new TextEncoder().encode(value),
  proposerId,
  requestId: { clientId: value, timestampMs: 0, sequence: 1 },
  sessions: [],
});

interface Node {
  readonly core: ReplicaCore;
  /** Records handed to a commit that the test has not completed yet. */
  pending: PersistRecord[];
  outbox: Map<number, PeerMessage[]>;
}

function makeNodes(): Map<number, Node> {
  const nodes = new Map<number, Node>();
  for (const id of REPLICAS) {
    nodes.set(id, { core: new ReplicaCore({ replicaId: id, replicaIds: REPLICAS, load: () => undefined, fetchIntervalTicks: 10 }), pending: [], outbox: new Map() });
  }
  return nodes;
}

/** Ends a turn at `node`: its records join the commit in flight, its messages wait in its outbox. */
function endTurn(node: Node): void {
  const { records, sends } = node.core.takeEffects();
  node.pending.push(...records);
  for (const [peer, messages] of sends) node.outbox.set(peer, [...(node.outbox.get(peer) ?? []), ...messages]);
}

function commit(node: Node): void {
  node.core.onCommitted(node.pending);
  node.pending = [];
}

/** Delivers what `from` owes `to` (the test decides whether `from` committed first). */
function deliver(nodes: Map<number, Node>, from: number, to: number): void {
  const source = nodes.get(from)!;
  const target = nodes.get(to)!;
  for (const message of source.outbox.get(to) ?? []) target.core.step(from, message);
  source.outbox.delete(to);
  endTurn(target);
}

/** Entry 1 of `k` at ballot prepared by replica 1, promised by 2 and 3, accepted at 1 (not committed yet). */
function acceptAtOne(nodes: Map<number, Node>): void {
  const one = nodes.get(1)!;
  const ballot = one.core.prepare('k');
  endTurn(one);
  commit(one);
  for (const peer of [2, 3]) {
    deliver(nodes, 1, peer);
    commit(nodes.get(peer)!);
    deliver(nodes, peer, 1);
  }
  expect(one.core.maybeAccept('k', ballot, payload('v', 1))).toBe('accepted');
  endTurn(one);
}

describe('ReplicaCore: chosen from durable states only', () => {
  it('a proposer whose accept is durable trusts the decision an acceptor reports; the acceptor waits for its own commit', () => {
    const nodes = makeNodes();
    const [one, two] = [nodes.get(1)!, nodes.get(2)!];
    acceptAtOne(nodes);
    commit(one); // persisted before sent
    deliver(nodes, 1, 2);
    // Replica 2 learns "chosen" in the very turn it accepts: its own vote is not durable yet.
    expect(two.core.chosen('k').entryId).toBe(1);
    expect(two.core.isChosenDurable('k')).toBe(false);
    commit(two);
    expect(two.core.isChosenDurable('k')).toBe(true);
    deliver(nodes, 2, 1);
    // Replica 1: its own accept (committed) + replica 2's state (sent after its commit).
    expect(one.core.chosen('k').entryId).toBe(1);
    expect(one.core.isChosenDurable('k')).toBe(true);
    expect(one.pending).toHaveLength(1); // the chosen mark is still being written; the reply need not wait for it
  });

  it('a decision counted with an own accept still in flight is not durable until that replica commits the chosen entry', () => {
    const nodes = makeNodes();
    const one = nodes.get(1)!;
    acceptAtOne(nodes);
    const acceptRecords = one.pending;
    one.pending = [];
    // Deliver without committing (the scheduler never does this; the core must still not vouch).
    deliver(nodes, 1, 2);
    commit(nodes.get(2)!);
    deliver(nodes, 2, 1);
    expect(one.core.chosen('k').entryId).toBe(1);
    expect(one.core.isChosenDurable('k')).toBe(false);
    one.core.onCommitted(acceptRecords); // the accept of entry 1 alone does not make the chosen mark durable
    expect(one.core.isChosenDurable('k')).toBe(false);
    commit(one); // the record with the chosen entry
    expect(one.core.isChosenDurable('k')).toBe(true);
  });

  it('a chosen entry pushed by a peer is durable (peers send only what they persisted)', () => {
    const nodes = makeNodes();
    const three = nodes.get(3)!;
    acceptAtOne(nodes);
    commit(nodes.get(1)!);
    deliver(nodes, 1, 2);
    commit(nodes.get(2)!);
    three.core.step(2, { type: 'chosen', key: new TextEncoder().encode('k'), chosenId: 1, entry: nodes.get(2)!.core.chosen('k') });
    expect(three.core.chosen('k').entryId).toBe(1);
    expect(three.core.isChosenDurable('k')).toBe(true);
  });
});
