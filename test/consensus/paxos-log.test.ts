import { describe, expect, it } from 'vitest';
import { decodePaxosLog, EMPTY_CHOSEN_ENTRY, encodePaxosLog, PRISTINE_ACCEPTOR_STATE, type PaxosLogRecord } from '../../src/consensus/paxos-log.js';
import { PaxosStoreError } from '../../src/errors.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe('PaxosLog record codec', () => {
  it('round-trips an empty log', () => {
    const record: PaxosLogRecord = { chosen: EMPTY_CHOSEN_ENTRY, open: PRISTINE_ACCEPTOR_STATE };
    expect(decodePaxosLog(encodePaxosLog(record))).toEqual(record);
  });

  it('round-trips a chosen entry with sessions, a tombstone and an open accepted proposal', () => {
    const record: PaxosLogRecord = {
      chosen: {
        entryId: 7,
        payload: {
          value: null,
          proposerId: 2,
          requestId: { clientId: 'client-a', timestampMs: 1234, sequence: 9 },
          sessions: [{ clientId: 'client-a', sequence: 9, result: { applied: true, version: 7, value: bytes('old') } }],
        },
      },
      open: {
        promised: { round: 3, replicaId: 1 },
        accepted: { ballot: { round: 3, replicaId: 1 }, payload: { value: bytes('new'), proposerId: 1, requestId: null, sessions: [] } },
      },
    };
    const decoded = decodePaxosLog(encodePaxosLog(record));
    expect(decoded.chosen.entryId).toBe(7);
    expect(decoded.chosen.payload?.value).toBeNull();
    expect(Buffer.from(decoded.chosen.payload!.sessions[0].result.value!).toString()).toBe('old');
    expect(decoded.open.promised).toEqual({ round: 3, replicaId: 1 });
    expect(Buffer.from(decoded.open.accepted!.payload.value!).toString()).toBe('new');
    expect(decoded.chosen.payload?.requestId).toEqual({ clientId: 'client-a', timestampMs: 1234, sequence: 9 });
  });

  it('rejects garbage and truncated records with CORRUPTION', () => {
    const good = encodePaxosLog({ chosen: EMPTY_CHOSEN_ENTRY, open: PRISTINE_ACCEPTOR_STATE });
    for (const bad of [new Uint8Array([0xc1]), good.subarray(0, good.length - 1), bytes('hello'), new Uint8Array([0x93, 1, 2, 3])]) {
      expect(() => decodePaxosLog(bad)).toThrow(PaxosStoreError);
      try {
        decodePaxosLog(bad);
      } catch (error) {
        expect((error as PaxosStoreError).code).toBe('CORRUPTION');
      }
    }
  });
});
