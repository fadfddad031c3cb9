import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { isValidPeerMessage, type PeerMessage } from '../../src/consensus/messages.js';
import { Replica } from '../../src/consensus/replica.js';
import { KEY_BYTES_MAX } from '../../src/storage/engine.js';
import { Random } from '../../src/util/random.js';

const key = new TextEncoder().encode('k');
const payload = { value: new Uint8Array([1]), proposerId: 1, requestId: { clientId: 'c', timestampMs: 5, sequence: 2 }, sessions: [{ clientId: 'c', sequence: 2, result: { applied: true, version: 3, value: null } }] };
const valid: PeerMessage[] = [
  { type: 'paxos', key, chosenId: 2, entryId: 3, sender: { promised: { round: 1, replicaId: 2 }, accepted: { ballot: { round: 1, replicaId: 2 }, payload } }, viewOfReceiver: { promised: { round: 0, replicaId: 0 }, acceptedBallot: null } },
  { type: 'chosen', key, chosenId: 3, entry: { entryId: 3, payload } },
  { type: 'fetch', key, chosenId: 0 },
  { type: 'readQuery', key, chosenId: 1, readId: 9 },
  { type: 'readReply', key, chosenId: 1, readId: 9, acceptedBeyondChosen: false },
];

describe('peer messages', () => {
  it('every kind survives msgpackr and validates', () => {
    const packr = new Packr({ useRecords: false });
    for (const message of valid) {
      const decoded = packr.unpack(packr.pack(message));
      expect(isValidPeerMessage(decoded, KEY_BYTES_MAX)).toBe(true);
    }
  });

  it('rejects malformed messages', () => {
    const broken: unknown[] = [
      null,
      { ...valid[0], sender: { promised: { round: -1, replicaId: 2 }, accepted: null } },
      { ...valid[0], viewOfReceiver: undefined },
      { ...valid[1], entry: { entryId: 3, payload: { ...payload, sessions: [{}] } } },
      { ...valid[2], key: 'k' },
      { ...valid[3], readId: 1.5 },
      { ...valid[4], acceptedBeyondChosen: 'no' },
      { ...valid[2], type: 'gossip' },
    ];
    for (const message of broken) expect(isValidPeerMessage(message, KEY_BYTES_MAX)).toBe(false);
  });

  it('a replica drops and counts malformed messages instead of throwing', () => {
    const replica = new Replica({
      replicaId: 1,
      replicaIds: [1, 2, 3],
      storage: { load: () => undefined, commit: (_records, done) => done() },
      transport: () => {},
      random: new Random(1),
      turns: 'manual',
    });
    replica.receive(2, [{ type: 'paxos', key, chosenId: 0 } as unknown as PeerMessage, valid[3]]);
    replica.receive(7, [valid[2]]); // not a member
    expect(replica.counters.peerMessagesRejected).toBe(2);
    expect(replica.counters.peerMessages).toBe(3);
  });
});
