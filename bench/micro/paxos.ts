/**
 * Micro-benchmark: the consensus layer without I/O. Three Replicas (pure core + scheduler) in one
 * thread with manual turns, storage in a Map whose group commit completes at once, and a
 * transport that queues messages; the driver runs turns and delivers messages until the request
 * completes. One iteration = one full write (or linearizable read) agreed by the three replicas:
 * every Paxos core step, effect hand-off and scheduler turn of that operation, on all replicas.
 * Run: `npx tsc -p . && node dist/bench/micro/paxos.js`.
 */
import { Bench } from 'tinybench';
import type { KeyResult, RequestId } from '../../src/api/operations.js';
import type { PeerMessage } from '../../src/consensus/messages.js';
import { Replica } from '../../src/consensus/replica.js';
import { Random } from '../../src/util/random.js';

const REPLICA_IDS = [1, 2, 3];
const KEYS = 1024;

interface Envelope {
  readonly from: number;
  readonly to: number;
  readonly messages: readonly PeerMessage[];
}

function createGroup(): { replicas: Map<number, Replica>; inbox: Envelope[] } {
  const inbox: Envelope[] = [];
  const replicas = new Map<number, Replica>();
  for (const replicaId of REPLICA_IDS) {
    const records = new Map<string, Uint8Array>();
    replicas.set(
      replicaId,
      new Replica({
        replicaId,
        replicaIds: REPLICA_IDS,
        storage: {
          load: (key) => records.get(Buffer.from(key).toString('latin1')),
          commit: (batch, done) => {
            for (const record of batch) records.set(Buffer.from(record.key).toString('latin1'), record.value);
            done();
          },
        },
        transport: (peer, messages) => inbox.push({ from: replicaId, to: peer, messages }),
        random: new Random(replicaId),
        turns: 'manual',
      }),
    );
  }
  return { replicas, inbox };
}

/** Runs turns and delivers messages until `done()` or nothing moves; throws if the request is stuck. */
function settle(group: ReturnType<typeof createGroup>, done: () => boolean): void {
  for (let round = 0; round < 64 && !done(); round++) {
    for (const replica of group.replicas.values()) replica.runTurn();
    const deliveries = group.inbox.splice(0);
    for (const envelope of deliveries) group.replicas.get(envelope.to)!.receive(envelope.from, envelope.messages);
  }
  if (!done()) throw new Error('consensus did not complete');
}

export async function benchPaxos(timeMs = 1000): Promise<Bench> {
  const group = createGroup();
  const proposer = group.replicas.get(1)!;
  const keys = Array.from({ length: KEYS }, (_, index) => Buffer.from(`key-${index}`));
  const value = Buffer.alloc(100, 7);
  let sequence = 0;
  const requestId = (): RequestId => ({ clientId: 'bench', timestampMs: 0, sequence: sequence++ });
  const run = (key: Buffer, operation: Parameters<Replica['submit']>[1]): KeyResult => {
    let result: KeyResult | undefined;
    let failure: Error | undefined;
    proposer.submit(key, operation, requestId(), (outcome) => {
      if (outcome.ok) result = outcome.value;
      else failure = outcome.error;
    });
    settle(group, () => result !== undefined || failure !== undefined);
    if (failure) throw failure;
    return result!;
  };
  let next = 0;
  const bench = new Bench({ time: timeMs, warmupTime: 200 });
  bench
    .add('paxos write: set agreed by 3 replicas (cores + schedulers, no I/O)', () => {
      run(keys[next++ % KEYS], { kind: 'set', value });
    })
    .add('paxos read: linearizable get confirmed by a majority (no I/O)', () => {
      run(keys[next++ % KEYS], { kind: 'get', consistency: 'linearizable' });
    });
  await bench.run();
  for (const replica of group.replicas.values()) replica.close();
  return bench;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const bench = await benchPaxos();
  console.table(bench.table());
}
