import { describe, expect, it } from 'vitest';
import { PaxosStoreError } from '../../src/errors.js';
import { type Coroutine, type Outcome, Scheduler, type SchedulerWorld, type Wait } from '../../src/scheduler/scheduler.js';

/** A world whose effects the test fills in and whose commits the test completes by hand. */
class FakeWorld implements SchedulerWorld<string, string> {
  touched = new Set<string>();
  records: string[] = [];
  outbox = new Map<number, string[]>();
  commits: Array<{ records: readonly string[]; done: (error?: Error) => void }> = [];
  sent: Array<{ peer: number; messages: readonly string[] }> = [];
  resultIsDurable?: (key: string) => boolean;

  takeTouchedKeys(): Iterable<string> {
    const touched = this.touched;
    this.touched = new Set();
    return touched;
  }
  takeEffects(): { records: string[]; sends: Map<number, string[]> } {
    const effects = { records: this.records, sends: this.outbox };
    this.records = [];
    this.outbox = new Map();
    return effects;
  }
  commit(records: readonly string[], done: (error?: Error) => void): void {
    this.commits.push({ records, done });
  }
  send(peer: number, messages: readonly string[]): void {
    this.sent.push({ peer, messages });
  }
  emit(record: string, peer: number, message: string): void {
    this.records.push(record);
    const queue = this.outbox.get(peer) ?? [];
    queue.push(message);
    this.outbox.set(peer, queue);
  }
}

function collect<T>(results: Array<Outcome<T>>): (outcome: Outcome<T>) => void {
  return (outcome) => results.push(outcome);
}

describe('coroutine scheduler', () => {
  it('gathers a turn into one group commit and one batch per peer, released after durability', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world);
    const results: Array<Outcome<string>> = [];
    // biome-ignore lint/correctness/useYield: a coroutine that finishes within its first turn
    function* writer(name: string): Coroutine<string> {
      world.emit(`record-${name}`, 2, `message-${name}`);
      world.emit(`record-${name}-b`, 3, `message-${name}-b`);
      return name;
    }
    for (const name of ['a', 'b', 'c']) scheduler.spawn(name, writer(name), collect(results));
    scheduler.runTurn();
    expect(world.commits).toHaveLength(1);
    expect(world.commits[0].records).toEqual(['record-a', 'record-a-b', 'record-b', 'record-b-b', 'record-c', 'record-c-b']);
    expect(world.sent).toEqual([]); // persisted before sent
    expect(results).toEqual([]); // and before replied
    world.commits[0].done();
    expect(world.sent).toEqual([
      { peer: 2, messages: ['message-a', 'message-b', 'message-c'] },
      { peer: 3, messages: ['message-a-b', 'message-b-b', 'message-c-b'] },
    ]);
    expect(results.map((result) => result.ok && result.value)).toEqual(['a', 'b', 'c']);
  });

  it('releases turns in order even when a later commit finishes first', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world);
    world.emit('r1', 2, 'm1');
    scheduler.runTurn();
    world.emit('r2', 2, 'm2');
    scheduler.runTurn();
    world.outbox.set(2, ['m3']); // a turn without records still waits for earlier commits
    scheduler.runTurn();
    world.commits[1].done();
    expect(world.sent).toEqual([]);
    world.commits[0].done();
    expect(world.sent.map((send) => send.messages[0])).toEqual(['m1', 'm2', 'm3']);
  });

  it('releases a result the world vouches for as durable at the end of its turn, the others after their commit', () => {
    const world = new FakeWorld();
    const durableKeys = new Set(['fast']);
    world.resultIsDurable = (key: string): boolean => durableKeys.has(key);
    const scheduler = new Scheduler(world);
    const results: Array<Outcome<string>> = [];
    // biome-ignore lint/correctness/useYield: a coroutine that finishes within its first turn
    function* writer(name: string): Coroutine<string> {
      world.emit(`record-${name}`, 2, `message-${name}`);
      return name;
    }
    scheduler.spawn('slow', writer('slow'), collect(results));
    scheduler.runTurn();
    scheduler.spawn('fast', writer('fast'), collect(results));
    scheduler.runTurn();
    expect(results.map((result) => result.ok && result.value)).toEqual(['fast']); // ahead of both pending commits
    expect(world.sent).toEqual([]); // messages never take the shortcut
    world.commits[1].done();
    world.commits[0].done();
    expect(results.map((result) => result.ok && result.value)).toEqual(['fast', 'slow']);
    expect(world.sent.map((send) => send.messages[0])).toEqual(['message-slow', 'message-fast']);
  });

  it('resumes a waiting coroutine when its key is touched and the predicate holds, or on timeout', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world);
    let ready = false;
    const results: Array<Outcome<string>> = [];
    function* waiter(): Coroutine<string> {
      const first = yield { key: 'k', until: () => ready, ticks: 100 } satisfies Wait;
      const second = yield { key: 'k', until: () => false, ticks: 5 } satisfies Wait;
      return `${first}/${second}`;
    }
    scheduler.spawn('k', waiter(), collect(results));
    scheduler.runTurn();
    ready = true;
    scheduler.runTurn();
    expect(results).toEqual([]); // not touched: predicates are only re-checked for touched keys
    world.touched.add('k');
    scheduler.runTurn();
    scheduler.tick(4);
    scheduler.runTurn();
    expect(results).toEqual([]);
    scheduler.tick(1);
    scheduler.runTurn();
    expect(results).toEqual([{ ok: true, value: 'true/false' }]);
  });

  it('bounds in-flight coroutines per key and in total with OVERLOADED', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world, { inFlightMax: 3, inFlightPerKeyMax: 2 });
    const results: Array<Outcome<void>> = [];
    function* forever(): Coroutine<void> {
      yield { key: 'hot', until: () => false, ticks: 1_000 };
    }
    function* other(key: string): Coroutine<void> {
      yield { key, until: () => false, ticks: 1_000 };
    }
    expect(scheduler.spawn('hot', forever(), collect(results))).toBe(true);
    expect(scheduler.spawn('hot', forever(), collect(results))).toBe(true);
    expect(scheduler.spawn('hot', forever(), collect(results))).toBe(false);
    expect(scheduler.spawn('cold', other('cold'), collect(results))).toBe(true);
    expect(scheduler.spawn('cool', other('cool'), collect(results))).toBe(false);
    expect(results.map((result) => !result.ok && result.error.code)).toEqual(['OVERLOADED', 'OVERLOADED']);
  });

  it('turns a thrown PaxosStoreError into a failed outcome and a failed commit into IO_ERROR for everyone', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world);
    const results: Array<Outcome<void>> = [];
    // biome-ignore lint/correctness/useYield: a coroutine that fails before its first wait
    function* failing(): Coroutine<void> {
      throw new PaxosStoreError('WRONG_TYPE');
    }
    function* waiting(): Coroutine<void> {
      world.emit('r', 2, 'm');
      yield { key: 'w', until: () => false, ticks: 1_000 };
    }
    scheduler.spawn('f', failing(), collect(results));
    scheduler.spawn('w', waiting(), collect(results));
    scheduler.runTurn();
    world.commits[0].done(new Error('disk on fire'));
    expect(results.map((result) => !result.ok && result.error.code)).toEqual(['IO_ERROR', 'IO_ERROR']);
    expect(world.sent).toEqual([]);
    const late: Array<Outcome<void>> = [];
    scheduler.spawn('x', waiting(), collect(late));
    expect(late.map((result) => !result.ok && result.error.code)).toEqual(['IO_ERROR']);
  });

  it('the test-only releaseBeforeDurable switch really sends before the commit completes', () => {
    const world = new FakeWorld();
    const scheduler = new Scheduler(world, undefined, { releaseBeforeDurable: true });
    world.emit('r', 2, 'm');
    scheduler.runTurn();
    expect(world.sent).toHaveLength(1);
  });
});
