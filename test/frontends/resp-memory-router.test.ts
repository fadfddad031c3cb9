import { describe, expect, it } from 'vitest';
import type { KeyOperation, RequestId } from '../../src/api/operations.js';
import { PaxosStoreError } from '../../src/errors.js';
import { Random } from '../../src/util/random.js';
import { MemoryRouter } from '../helpers/memory-router.js';

// The in-memory router is the reference the front ends are tested against, so its semantics are
// checked here against src/api/operations.ts line by line.

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | null) => (value === null ? null : new TextDecoder().decode(value));
let sequence = 0;
const id = (clientId = 'test'): RequestId => ({ clientId, timestampMs: 0, sequence: ++sequence });
const run = (router: MemoryRouter, key: string, operation: KeyOperation, requestId = id()) =>
  router.execute(bytes(key), operation, requestId);
const get: KeyOperation = { kind: 'get', consistency: 'linearizable' };

describe('MemoryRouter', () => {
  it('versions every applied write, including deletes (tombstones)', async () => {
    const router = new MemoryRouter();
    expect(await run(router, 'k', get)).toEqual({ applied: true, version: 0, value: null });
    expect(await run(router, 'k', { kind: 'set', value: bytes('a') })).toEqual({ applied: true, version: 1, value: null });
    const replaced = await run(router, 'k', { kind: 'set', value: bytes('b') });
    expect([replaced.version, text(replaced.value)]).toEqual([2, 'a']);
    const deleted = await run(router, 'k', { kind: 'delete' });
    expect([deleted.applied, deleted.version, text(deleted.value)]).toEqual([true, 3, 'b']);
    expect(await run(router, 'k', { kind: 'delete' })).toEqual({ applied: false, version: 3, value: null });
    expect(await run(router, 'k', get)).toEqual({ applied: true, version: 3, value: null });
  });

  it('evaluates ifVersion, onlyIfAbsent and onlyIfPresent; a refused write reports the current state', async () => {
    const router = new MemoryRouter();
    expect((await run(router, 'k', { kind: 'set', value: bytes('x'), onlyIfPresent: true })).applied).toBe(false);
    expect((await run(router, 'k', { kind: 'set', value: bytes('x'), ifVersion: 0 })).applied).toBe(true);
    const refused = await run(router, 'k', { kind: 'set', value: bytes('y'), onlyIfAbsent: true });
    expect([refused.applied, refused.version, text(refused.value)]).toEqual([false, 1, 'x']);
    expect((await run(router, 'k', { kind: 'set', value: bytes('y'), ifVersion: 0 })).applied).toBe(false);
    expect((await run(router, 'k', { kind: 'delete', ifVersion: 7 })).applied).toBe(false);
    expect((await run(router, 'k', { kind: 'delete', ifVersion: 1 })).applied).toBe(true);
  });

  it('increments integers, refuses non-integers and overflow with WRONG_TYPE without writing', async () => {
    const router = new MemoryRouter();
    expect(text((await run(router, 'n', { kind: 'incr', delta: 5n })).value)).toBe('5');
    expect(text((await run(router, 'n', { kind: 'incr', delta: -7n })).value)).toBe('-2');
    await run(router, 's', { kind: 'set', value: bytes('abc') });
    await expect(run(router, 's', { kind: 'incr', delta: 1n })).rejects.toMatchObject({ code: 'WRONG_TYPE' });
    await run(router, 'big', { kind: 'set', value: bytes('9223372036854775807') });
    await expect(run(router, 'big', { kind: 'incr', delta: 1n })).rejects.toMatchObject({ code: 'WRONG_TYPE' });
    expect(router.peek('big').version).toBe(1);
  });

  it('appends, and enforces key and value limits', async () => {
    const router = new MemoryRouter({ valueBytesMax: 4 });
    expect(text((await run(router, 'a', { kind: 'append', value: bytes('ab') })).value)).toBe('ab');
    expect(text((await run(router, 'a', { kind: 'append', value: bytes('cd') })).value)).toBe('abcd');
    await expect(run(router, 'a', { kind: 'append', value: bytes('e') })).rejects.toMatchObject({ code: 'VALUE_TOO_LARGE' });
    await expect(run(router, 'x'.repeat(64 * 1024 + 1), get)).rejects.toMatchObject({ code: 'KEY_TOO_LARGE' });
  });

  it('deduplicates a retried write with the same request id', async () => {
    const router = new MemoryRouter();
    router.injectFailures('TIMEOUT', 1, { applied: true });
    const requestId = id('retrying-client');
    await expect(run(router, 'n', { kind: 'incr', delta: 1n }, requestId)).rejects.toBeInstanceOf(PaxosStoreError);
    const retried = await run(router, 'n', { kind: 'incr', delta: 1n }, requestId);
    expect([retried.version, text(retried.value)]).toEqual([1, '1']);
    expect(text(router.peek('n').value)).toBe('1');
  });

  it('forgets the oldest request ids beyond dedupEntriesMax', async () => {
    const router = new MemoryRouter({ dedupEntriesMax: 2 });
    const first = id('c');
    await run(router, 'n', { kind: 'incr', delta: 1n }, first);
    await run(router, 'n', { kind: 'incr', delta: 1n }, first);
    expect(text(router.peek('n').value)).toBe('1');
    await run(router, 'n', { kind: 'incr', delta: 1n });
    await run(router, 'n', { kind: 'incr', delta: 1n });
    await run(router, 'n', { kind: 'incr', delta: 1n }, first);
    expect(text(router.peek('n').value)).toBe('4');
  });

  it('copies stored values, so a caller reusing its buffer cannot change the store', async () => {
    const router = new MemoryRouter();
    const value = bytes('abc');
    await run(router, 'k', { kind: 'set', value });
    value[0] = 0x7a;
    expect(text(router.peek('k').value)).toBe('abc');
  });

  it('with a delay, completes concurrent calls out of order; after close() every call rejects with CLOSED', async () => {
    const router = new MemoryRouter({ random: new Random(7), delayMsMax: 5 });
    const order: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => run(router, `k${i}`, { kind: 'set', value: bytes('v') }).then(() => order.push(i))),
    );
    expect(order).not.toEqual([...order].sort((a, b) => a - b));
    router.close();
    await expect(run(router, 'k', get)).rejects.toMatchObject({ code: 'CLOSED' });
    expect(router.info().counters.inFlight).toBe(0);
  });
});
