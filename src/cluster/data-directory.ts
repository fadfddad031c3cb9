import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { PaxosStoreError } from '../errors.js';
import { joinPath } from '../storage/file-system.js';
import { RealFileSystem } from '../storage/real-file-system.js';
import type { ServerConfig } from './config.js';

/**
 * The identity a data directory is pinned to. Written on first start; every later start must
 * match it, because keys are placed by `hash(key) mod shards` and PaxosLogs assume a fixed
 * replica set: starting with another shard count would make existing keys invisible, and
 * starting as another replica would corrupt the quorum.
 *
 *   <dataDir>/cluster.json        this identity (written atomically)
 *   <dataDir>/LOCK                pid of the process serving it (two processes on one
 *                                 directory would corrupt its Bitcasks)
 *   <dataDir>/shard-<k>/          the Bitcask of shard worker k
 */
export interface DataDirectoryIdentity {
  readonly formatVersion: 1;
  readonly clusterId: string;
  readonly replicaId: number;
  readonly replicaIds: readonly number[];
  readonly shards: number;
}

const IDENTITY_FILE = 'cluster.json';

export function shardDirectory(dataDir: string, shardIndex: number): string {
  return joinPath(dataDir, `shard-${shardIndex}`);
}

export function identityOf(config: ServerConfig): DataDirectoryIdentity {
  return {
    formatVersion: 1,
    clusterId: config.clusterId,
    replicaId: config.replicaId,
    replicaIds: config.replicas.map((replica) => replica.id),
    shards: config.shards,
  };
}

/**
 * The shard count a data directory was created with, or undefined for a new directory. Lets a
 * restart without `--shards` keep what the cluster was built with when the default changes.
 */
export function recordedShardCount(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(joinPath(dataDir, IDENTITY_FILE), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const shards = (JSON.parse(text) as Partial<DataDirectoryIdentity>).shards;
    return Number.isSafeInteger(shards) && (shards as number) >= 1 ? shards : undefined;
  } catch {
    return undefined; // prepareDataDirectory reports the damaged file when the replica starts
  }
}

/** Creates the directory and its identity, or verifies the identity it already has. */
export async function prepareDataDirectory(config: ServerConfig, fileSystem = new RealFileSystem()): Promise<'created' | 'existing'> {
  const expected = identityOf(config);
  fileSystem.makeDirectory(config.dataDir);
  const path = joinPath(config.dataDir, IDENTITY_FILE);
  if (!fileSystem.exists(path)) {
    await fileSystem.writeFileAtomic(path, new TextEncoder().encode(`${JSON.stringify(expected, null, 2)}\n`));
    return 'created';
  }
  let found: DataDirectoryIdentity;
  try {
    found = JSON.parse(new TextDecoder().decode(fileSystem.readFile(path))) as DataDirectoryIdentity;
  } catch (error) {
    throw new PaxosStoreError('CORRUPTION', `${path} is not valid JSON; refusing to start`, undefined, { cause: error });
  }
  const mismatches: string[] = [];
  if (found.formatVersion !== expected.formatVersion) mismatches.push(`formatVersion is ${found.formatVersion}, this build writes ${expected.formatVersion}`);
  if (found.clusterId !== expected.clusterId) mismatches.push(`clusterId is ${JSON.stringify(found.clusterId)}, config says ${JSON.stringify(expected.clusterId)}`);
  if (found.replicaId !== expected.replicaId) mismatches.push(`replicaId is ${found.replicaId}, config says ${expected.replicaId}`);
  if (found.shards !== expected.shards) mismatches.push(`shards is ${found.shards}, config says ${expected.shards} (the shard count is fixed for the life of a cluster)`);
  if (JSON.stringify(found.replicaIds) !== JSON.stringify(expected.replicaIds)) {
    mismatches.push(`replica set is [${found.replicaIds}], config says [${expected.replicaIds}]`);
  }
  if (mismatches.length > 0) {
    throw new PaxosStoreError('CONFIG_MISMATCH', `data directory ${config.dataDir} belongs to another configuration: ${mismatches.join('; ')}`, {
      mismatches,
    });
  }
  return 'existing';
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/**
 * Takes the directory's lock for this process. A lock left by a process that no longer exists
 * (kill -9, power loss) is taken over; one held by a live process is an error.
 */
export function lockDataDirectory(dataDir: string): () => void {
  const path = joinPath(dataDir, 'LOCK');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: 'wx' });
      return () => rmSync(path, { force: true });
    } catch (error) {
      if ((error as { code?: string }).code !== 'EEXIST') throw new PaxosStoreError('IO_ERROR', `cannot create ${path}: ${String(error)}`);
    }
    const holder = Number.parseInt(readFileSync(path, 'utf8'), 10);
    if (Number.isInteger(holder) && holder !== process.pid && processAlive(holder)) {
      throw new PaxosStoreError('CONFIG_MISMATCH', `data directory ${dataDir} is in use by process ${holder} (${path})`);
    }
    rmSync(path, { force: true }); // stale: its process is gone
  }
  throw new PaxosStoreError('IO_ERROR', `cannot take the lock ${path}`);
}
