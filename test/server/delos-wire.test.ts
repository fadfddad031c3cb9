/**
 * The wire pieces of the Delos server binding, without processes: the ring frames' optional log
 * group and log position (absent fields keep the PaxosStore frames as they were), the log
 * envelope validator at the peer-link boundary, and the split of received frames in DelosHost.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Packr, unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { RingFrameCodec } from '../../src/ipc/ring-frame.js';
import type { LogMessage } from '../../src/log/messages.js';
import { loadShardHasher } from '../../src/router/shard-hash.js';
import { DelosHost, isLogEnvelope, type LogEnvelope, logGroupOwner } from '../../src/server/delos-host.js';

const requestId = { clientId: 'c', timestampMs: 1, sequence: 2 };
const key = new Uint8Array([1, 2, 3]);
const roots: string[] = [];

afterAll(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true });
});

describe('ring frames for Delos requests', () => {
  const codec = new RingFrameCodec();

  it('keeps PaxosStore frames in the binary form and carries the log group and log position in msgpack tuples', () => {
    const plain = codec.encode({ type: 'request', id: 7, key, operation: { kind: 'delete' }, requestId });
    expect(plain[0]).toBe(0xc1);
    expect(codec.decode(plain)).not.toHaveProperty('logGroup');
    const reply = codec.encode({ type: 'reply', id: 7, result: { applied: true, version: 3, value: null } });
    expect(reply[0]).toBe(0xc1);
    expect(codec.decode(reply)).toEqual({ type: 'reply', id: 7, result: { applied: true, version: 3, value: null } });

    const grouped = codec.encode({ type: 'request', id: 8, key, operation: { kind: 'get', consistency: 'local' }, requestId, logGroup: 'kv' });
    expect((unpack(grouped) as unknown[]).length).toBe(8);
    expect(codec.decode(grouped)).toMatchObject({ type: 'request', id: 8, logGroup: 'kv', operation: { kind: 'get', consistency: 'local' } });
    const positionedBytes = codec.encode({ type: 'reply', id: 8, result: { applied: true, version: 4, value: null, logPosition: 41 } });
    expect((unpack(positionedBytes) as unknown[]).length).toBe(6);
    expect(codec.decode(positionedBytes)).toEqual({ type: 'reply', id: 8, result: { applied: true, version: 4, value: null, logPosition: 41 } });
  });

  it('refuses a log group that is not a string and a log position that is not an integer', () => {
    const packr = new Packr({ useRecords: false });
    expect(() => codec.decode(packr.pack([0, 1, key, [2, null], 'c', 1, 2, 99]))).toThrow(/logGroup/);
    expect(() => codec.decode(packr.pack([1, 1, true, 1, null, 'x']))).toThrow(/logPosition/);
  });
});

const ballot = { round: 1, replicaId: 2 };
const stateMessage: LogMessage = {
  kind: 'state',
  loglet: 1,
  slot: 5,
  sender: {
    promised: ballot,
    accepted: { ballot, payload: { value: new Uint8Array([9]), proposerId: 2, requestId: { clientId: '2:1:0', timestampMs: 0, sequence: 0 }, sessions: [] } },
  },
  viewOfReceiver: { promised: ballot, acceptedBallot: null },
};

describe('log envelopes on the peer links', () => {
  // The same msgpackr settings as PeerLinks: what passes here passes the real wire.
  const wire = new Packr({ useRecords: false, useBigIntExtension: true, copyBuffers: true });
  const roundTrip = (value: unknown): unknown => wire.unpack(wire.pack(value));

  it('accepts every log message kind after a msgpack round trip', () => {
    const messages: LogMessage[] = [
      stateMessage,
      { kind: 'chosen', loglet: 0, slot: 3, value: { kind: 'data', data: new Uint8Array([1]), proposerId: 1, token: '1:2:3' } },
      { kind: 'chosen', loglet: 2, slot: 0, value: { kind: 'seal', data: null, proposerId: 3, token: '3:1:0' } },
      { kind: 'tailQuery', loglet: 1, queryId: 4 },
      { kind: 'tailReply', loglet: 1, queryId: 4, tail: 17 },
      { kind: 'trimmed', loglet: 1, trimSlot: 12 },
    ];
    for (const message of messages) expect(isLogEnvelope(roundTrip({ type: 'log', group: 'kv', message }))).toBe(true);
  });

  it('rejects malformed envelopes and messages', () => {
    const bad: unknown[] = [
      null,
      { type: 'log', group: 'kv' },
      { type: 'log', group: 'g'.repeat(65), message: { kind: 'tailQuery', loglet: 1, queryId: 1 } },
      { type: 'log', group: 7, message: { kind: 'tailQuery', loglet: 1, queryId: 1 } },
      { type: 'log', group: 'kv', message: { kind: 'tailQuery', loglet: -1, queryId: 1 } },
      { type: 'log', group: 'kv', message: { kind: 'tailReply', loglet: 1, queryId: 1, tail: 1.5 } },
      { type: 'log', group: 'kv', message: { kind: 'gossip', loglet: 1 } },
      { type: 'log', group: 'kv', message: { ...stateMessage, sender: { promised: { round: 'x', replicaId: 1 }, accepted: null } } },
      { type: 'log', group: 'kv', message: { ...stateMessage, viewOfReceiver: null } },
      { type: 'log', group: 'kv', message: { kind: 'chosen', loglet: 0, slot: 3, value: { kind: 'other', data: null, proposerId: 1, token: 't' } } },
      { type: 'log', group: 'kv', message: { kind: 'chosen', loglet: 0, slot: 3, value: { kind: 'data', data: 'text', proposerId: 1, token: 't' } } },
    ];
    for (const envelope of bad) expect(isLogEnvelope(envelope), JSON.stringify(envelope)).toBe(false);
  });

  it('DelosHost takes the log envelopes out of a received frame, hands back the rest, and counts what it dropped', async () => {
    await loadShardHasher();
    expect(logGroupOwner('kv', 1)).toBe(0);
    const root = mkdtempSync(join(tmpdir(), 'paxosstore-delos-wire-'));
    roots.push(root);
    const sent: [number, LogEnvelope][] = [];
    const host = await DelosHost.open({
      shardDirectory: root,
      shardIndex: 0,
      shardCount: 1,
      replicaId: 1,
      replicaIds: [1, 2, 3],
      requestTimeoutMs: 1000,
      send: (peer, envelope) => sent.push([peer, envelope]),
      warn: () => {},
    });
    try {
      expect(host.groupNames).toEqual(['kv']);
      const consensus = { type: 'fetch', key, chosenId: 0 };
      const frame = [consensus, { type: 'log', group: 'kv', message: { kind: 'tailQuery', loglet: 1, queryId: 9 } }, { type: 'log', group: 'nope', message: { kind: 'tailQuery', loglet: 1, queryId: 9 } }, { type: 'log', group: 'kv' }];
      expect(host.takeLogMessages(2, frame)).toEqual([consensus]);
      // Whatever a peer codec decodes reaches this split: non-objects pass on to the consensus validator.
      expect(host.takeLogMessages(2, [null, 7, consensus])).toEqual([null, 7, consensus]);
      const plain = [consensus];
      expect(host.takeLogMessages(2, plain)).toBe(plain);
      // The valid tail query was answered to its sender, on the same group.
      expect(sent).toEqual([[2, { type: 'log', group: 'kv', message: { kind: 'tailReply', loglet: 1, queryId: 9, tail: 0 } }]]);
      const rejected = host.metricsFamilies().find((family) => family.name === 'paxosstore_delos_peer_messages_rejected_total');
      expect(rejected).toMatchObject({ series: [{ value: 2 }] });
    } finally {
      await host.close();
    }
  });
});
