import { describe, expect, it } from 'vitest';
import { buildPayload, evaluate, lookUpSession, SESSION_RECORDS_PER_CLIENT_MAX } from '../../src/consensus/evaluate.js';
import { type ChosenEntry, EMPTY_CHOSEN_ENTRY } from '../../src/consensus/paxos-log.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const entry = (entryId: number, value: string | null): ChosenEntry => ({ entryId, payload: { value: value === null ? null : bytes(value), proposerId: 1, requestId: null, sessions: [] } });

describe('evaluate (operations.ts semantics at the linearization point)', () => {
  it('set returns the previous value and bumps the version; preconditions stop it', () => {
    expect(evaluate({ kind: 'set', value: bytes('b') }, entry(3, 'a'))).toEqual({ kind: 'write', value: bytes('b'), result: { applied: true, version: 4, value: bytes('a') } });
    expect(evaluate({ kind: 'set', value: bytes('b'), ifVersion: 2 }, entry(3, 'a'))).toEqual({ kind: 'noWrite', result: { applied: false, version: 3, value: bytes('a') } });
    expect(evaluate({ kind: 'set', value: bytes('b'), onlyIfAbsent: true }, entry(3, 'a')).kind).toBe('noWrite');
    expect(evaluate({ kind: 'set', value: bytes('b'), onlyIfPresent: true }, EMPTY_CHOSEN_ENTRY).kind).toBe('noWrite');
    expect(evaluate({ kind: 'set', value: bytes('b'), onlyIfAbsent: true }, entry(4, null)).kind).toBe('write');
  });

  it('delete writes a tombstone only when the key exists', () => {
    expect(evaluate({ kind: 'delete' }, entry(2, 'a'))).toEqual({ kind: 'write', value: null, result: { applied: true, version: 3, value: bytes('a') } });
    expect(evaluate({ kind: 'delete' }, entry(3, null)).kind).toBe('noWrite');
    expect(evaluate({ kind: 'delete', ifVersion: 1 }, entry(2, 'a')).kind).toBe('noWrite');
  });

  it('incr treats absent as 0, refuses non-integers and overflow', () => {
    expect(evaluate({ kind: 'incr', delta: 5n }, EMPTY_CHOSEN_ENTRY)).toEqual({ kind: 'write', value: bytes('5'), result: { applied: true, version: 1, value: bytes('5') } });
    expect(evaluate({ kind: 'incr', delta: -7n }, entry(1, '5')).kind === 'write' && true).toBe(true);
    expect(evaluate({ kind: 'incr', delta: 1n }, entry(1, 'x')).kind).toBe('wrongType');
    expect(evaluate({ kind: 'incr', delta: 1n }, entry(1, '9223372036854775807')).kind).toBe('wrongType');
  });

  it('append concatenates and get reports the current state', () => {
    expect(evaluate({ kind: 'append', value: bytes('c') }, entry(1, 'ab'))).toEqual({ kind: 'write', value: bytes('abc'), result: { applied: true, version: 2, value: bytes('abc') } });
    expect(evaluate({ kind: 'get', consistency: 'linearizable' }, entry(4, 'z'))).toEqual({ kind: 'noWrite', result: { applied: true, version: 4, value: bytes('z') } });
  });
});

describe('session table (request-id dedup)', () => {
  it('finds a retried request after writes of other clients', () => {
    let chosen: ChosenEntry = EMPTY_CHOSEN_ENTRY;
    const write = (clientId: string, sequence: number): void => {
      const payload = buildPayload(chosen, bytes(`${clientId}${sequence}`), { applied: true, version: chosen.entryId + 1, value: null }, 1, { clientId, timestampMs: 0, sequence }, 16);
      chosen = { entryId: chosen.entryId + 1, payload };
    };
    write('a', 1);
    for (let index = 0; index < 10; index++) write(`other${index}`, 1);
    expect(lookUpSession(chosen, { clientId: 'a', timestampMs: 0, sequence: 1 })).toEqual({ kind: 'duplicate', result: { applied: true, version: 1, value: null } });
    expect(lookUpSession(chosen, { clientId: 'a', timestampMs: 0, sequence: 2 })).toEqual({ kind: 'new' });
  });

  it('keeps a bounded window per client and per key', () => {
    let chosen: ChosenEntry = EMPTY_CHOSEN_ENTRY;
    for (let sequence = 1; sequence <= 10; sequence++) {
      const payload = buildPayload(chosen, null, { applied: true, version: sequence, value: null }, 1, { clientId: 'a', timestampMs: 0, sequence }, 4);
      chosen = { entryId: sequence, payload };
    }
    expect(chosen.payload?.sessions.length).toBe(SESSION_RECORDS_PER_CLIENT_MAX);
    expect(lookUpSession(chosen, { clientId: 'a', timestampMs: 0, sequence: 2 })).toEqual({ kind: 'superseded' });
    for (let index = 0; index < 10; index++) {
      const payload = buildPayload(chosen, null, { applied: true, version: 11 + index, value: null }, 1, { clientId: `b${index}`, timestampMs: 0, sequence: 1 }, 4);
      chosen = { entryId: 11 + index, payload };
    }
    expect(new Set(chosen.payload?.sessions.map((record) => record.clientId)).size).toBe(4);
  });
});
