import { describe, expect, it } from 'vitest';
import { PaxosStoreError } from '../../src/errors.js';
import type { RequestOutcome } from '../../src/ipc/channel.js';
import { RequestDeadlines } from '../../src/server/request-deadlines.js';

describe('RequestDeadlines', () => {
  it('replies TIMEOUT to expired requests only, once, and ignores their late completions', () => {
    let now = 1000;
    const deadlines = new RequestDeadlines(50, () => now);
    const replies: Array<[string, RequestOutcome]> = [];
    const track = (name: string) => deadlines.track((outcome) => replies.push([name, outcome]));
    const first = track('first');
    now = 1020;
    const second = track('second');
    now = 1030;
    const third = track('third');
    third({ ok: true, value: { applied: true, version: 3, value: null } });
    expect(replies.map(([name]) => name)).toEqual(['third']);
    expect(deadlines.size).toBe(2);

    deadlines.expire(1049);
    expect(replies).toHaveLength(1);
    deadlines.expire(1050);
    expect(replies.map(([name]) => name)).toEqual(['third', 'first']);
    const [, timeout] = replies[1];
    expect(timeout.ok).toBe(false);
    expect(!timeout.ok && timeout.error).toBeInstanceOf(PaxosStoreError);
    expect(!timeout.ok && (timeout.error as PaxosStoreError).code).toBe('TIMEOUT');

    first({ ok: true, value: { applied: true, version: 1, value: null } });
    third({ ok: true, value: { applied: true, version: 3, value: null } });
    expect(replies).toHaveLength(2);

    second({ ok: false, error: new PaxosStoreError('CONTENTION', 'busy') });
    deadlines.expire(10_000);
    expect(replies.map(([name]) => name)).toEqual(['third', 'first', 'second']);
    expect(deadlines.size).toBe(0);
  });
});
