/**
 * Micro-benchmark: the coroutine scheduler's turn. Per iteration, 1000 coroutines on 1000 keys
 * are spawned, each runs until it waits on its key, the keys are touched, and the next turn
 * resumes and finishes them all (one group commit, results released): the scheduler's own cost
 * per request, without the Paxos core or I/O.
 * Run: `npx tsc -p . && node dist/bench/micro/scheduler.js`.
 */
import { Bench } from 'tinybench';
import { type Coroutine, Scheduler } from '../../src/scheduler/scheduler.js';

const COROUTINES = 1000;

export async function benchScheduler(timeMs = 1000): Promise<Bench> {
  const keys = Array.from({ length: COROUTINES }, (_, index) => `key-${index}`);
  const ready = new Uint8Array(COROUTINES);
  let touched: string[] = [];
  let records: number[] = [];
  let completed = 0;
  const scheduler = new Scheduler<number, never>({
    takeTouchedKeys: () => {
      const keysOfTurn = touched;
      touched = [];
      return keysOfTurn;
    },
    takeEffects: () => {
      const recordsOfTurn = records;
      records = [];
      return { records: recordsOfTurn, sends: new Map() };
    },
    commit: (_records, done) => done(),
    send: () => {},
  });
  function* request(index: number): Coroutine<number> {
    const woken = yield { key: keys[index], until: () => ready[index] === 1, ticks: 1_000_000 };
    if (!woken) throw new Error('timed out');
    records.push(index);
    return index;
  }
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench.add(`scheduler: ${COROUTINES} coroutines spawn → wait → wake → finish, per batch of ${COROUTINES}`, () => {
    ready.fill(0);
    completed = 0;
    for (let index = 0; index < COROUTINES; index++) scheduler.spawn(keys[index], request(index), () => completed++);
    scheduler.runTurn();
    ready.fill(1);
    touched = keys;
    scheduler.runTurn();
    if (completed !== COROUTINES) throw new Error(`only ${completed} of ${COROUTINES} coroutines completed`);
  });
  await bench.run();
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchScheduler();
  console.table(bench.table());
}
