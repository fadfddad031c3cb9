/**
 * A simulated shared-log cluster: N replicas, each with its own SimulatedFileSystem and LsmTree
 * (the LocalStore), one SimWorld for network and time, crash-restart that keeps only what was
 * durable. Layers above (VirtualLog, engine stack) are rebuilt on restart by `onRestart`.
 */
import { LsmTree } from '../storage/lsm/index.js';
import { SimulatedFileSystem } from '../storage/sim-file-system.js';
import type { Random } from '../util/random.js';
import { LOGLET_TIMING_DEFAULT, type LogletTiming } from './loglet.js';
import { LogNode } from './log-node.js';
import type { LogMessage } from './messages.js';
import { CALM_NETWORK, type NetworkFaults, SimWorld } from './sim-world.js';

export interface SimReplica {
  readonly replicaId: number;
  readonly fileSystem: SimulatedFileSystem;
  node: LogNode;
  store: LsmTree;
  up: boolean;
}

const DIRECTORY = '/local-store';

export class SimLogCluster {
  readonly world: SimWorld<LogMessage>;
  readonly replicas: SimReplica[] = [];
  readonly replicaIds: readonly number[];

  private constructor(
    readonly random: Random,
    replicaCount: number,
    faults: NetworkFaults,
    private readonly timing: LogletTiming,
  ) {
    this.world = new SimWorld<LogMessage>(random, faults);
    this.replicaIds = Array.from({ length: replicaCount }, (_, index) => index + 1);
  }

  static async create(random: Random, replicaCount = 3, faults: NetworkFaults = CALM_NETWORK, timing = LOGLET_TIMING_DEFAULT): Promise<SimLogCluster> {
    const cluster = new SimLogCluster(random, replicaCount, faults, timing);
    for (const replicaId of cluster.replicaIds) {
      const fileSystem = new SimulatedFileSystem();
      const store = await openStore(fileSystem);
      const replica: SimReplica = { replicaId, fileSystem, store, node: cluster.newNode(replicaId, store), up: true };
      cluster.replicas.push(replica);
      cluster.world.attach(replicaId, replica.node);
    }
    return cluster;
  }

  replica(replicaId: number): SimReplica {
    return this.replicas[replicaId - 1];
  }

  private newNode(replicaId: number, store: LsmTree): LogNode {
    return new LogNode(replicaId, this.replicaIds, store, this.world, this.world, this.random.uint32(), this.random.fork(), this.timing);
  }

  /** Power loss at one replica: the node stops, the disk keeps only durable bytes. */
  crash(replicaId: number): void {
    const replica = this.replica(replicaId);
    if (!replica.up) return;
    replica.node.crash();
    replica.fileSystem.crash(this.random, { bitFlipProbability: 0 });
    replica.up = false;
  }

  /** Reopens the LocalStore from what survived and starts a new incarnation of the node. */
  async restart(replicaId: number): Promise<SimReplica> {
    const replica = this.replica(replicaId);
    if (replica.up) return replica;
    replica.store = await openStore(replica.fileSystem);
    replica.node = this.newNode(replicaId, replica.store);
    replica.up = true;
    this.world.attach(replicaId, replica.node);
    return replica;
  }

  failures(): unknown[] {
    return this.replicas.flatMap((replica) => replica.node.failures);
  }
}

function openStore(fileSystem: SimulatedFileSystem): Promise<LsmTree> {
  return LsmTree.open({ directory: DIRECTORY, fileSystem, compression: false, backgroundThread: 'inline', memtableBytesMax: 1024 * 1024 });
}
