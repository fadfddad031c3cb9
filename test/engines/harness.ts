/** Shared helpers of the engine tests: a simulated cluster running one engine stack per replica. */
import { createHash } from 'node:crypto';
import { KvApplicator, KvService } from '../../src/apps/kv/kv-applicator.js';
import { buildStack, type Stack, type StackOptions } from '../../src/engines/stack.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import type { ReadView } from '../../src/storage/engine.js';
import type { NetworkFaults } from '../../src/log/sim-world.js';
import { Random } from '../../src/util/random.js';

export interface KvReplica {
  stack: Stack;
  kv: KvService;
  applicator: KvApplicator;
}

export class KvCluster {
  readonly replicas = new Map<number, KvReplica>();

  private constructor(
    readonly sim: SimLogCluster,
    private readonly options: StackOptions,
  ) {}

  static async create(seed: number, faults?: NetworkFaults, options: StackOptions = {}): Promise<KvCluster> {
    const sim = await SimLogCluster.create(new Random(seed), 3, faults);
    const cluster = new KvCluster(sim, options);
    for (const id of sim.replicaIds) cluster.rebuild(id);
    return cluster;
  }

  rebuild(replicaId: number, options: StackOptions = this.options): KvReplica {
    const applicator = new KvApplicator();
    const stack = buildStack(this.sim.replica(replicaId).node, applicator, options);
    const replica = { stack, kv: new KvService(stack.top), applicator };
    this.replicas.set(replicaId, replica);
    return replica;
  }

  get world() {
    return this.sim.world;
  }

  replica(replicaId: number): KvReplica {
    return this.replicas.get(replicaId)!;
  }

  /** Runs `promise` in simulated time; fails the test when it does not settle. */
  run<T>(promise: Promise<T>, ticksMax = 20_000): Promise<T> {
    return runInSimulation(this.sim, promise, ticksMax);
  }

  /**
   * Plays every replica to the tail, flushes its applied state, and returns a digest of each
   * LocalStore (the durable LsmTree itself) outside the log's own keys.
   */
  async digests(): Promise<string[]> {
    for (const replica of this.replicas.values()) (await this.run(replica.stack.top.sync())).release();
    for (const replica of this.replicas.values()) (await this.run(replica.stack.top.sync())).release();
    for (const replica of this.replicas.values()) await this.run(replica.stack.base.flush());
    return this.sim.replicaIds.map((id) => localStoreDigest(this.sim.replica(id).store));
  }
}

/** SHA-256 of every key and value of a LocalStore except L/… (per-replica Paxos state, legitimately different). */
export function localStoreDigest(store: ReadView): string {
  const hash = createHash('sha256');
  for (const [key, value] of store.iterate()) {
    if (key[0] === 0x4c && key[1] === 0x2f) continue;
    hash.update(key);
    hash.update(value);
  }
  return hash.digest('hex');
}

/** Runs `promise` in the cluster's simulated time; fails the test when it does not settle. */
export async function runInSimulation<T>(cluster: SimLogCluster, promise: Promise<T>, ticksMax = 50_000): Promise<T> {
  const outcome = await cluster.world.runFor(promise, ticksMax);
  if (!outcome.settled) throw new Error(`did not settle within ${ticksMax} ticks`);
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.value as T;
}
