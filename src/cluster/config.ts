import { PaxosStoreError } from '../errors.js';

/**
 * Configuration of one replica process, validated once at the boundary (CLI flags or a JSON
 * config file); everything inside trusts it. Every knob has a default that behaves on a 2-core
 * machine; README "Configuration" lists them all.
 *
 * Ports: worker k of replica r listens for its peers on `peerPort + k` of that replica's entry.
 */

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export interface ReplicaAddress {
  /** 1-based, unique, stable for the life of the cluster. */
  readonly id: number;
  readonly host: string;
  /** Worker k listens on peerPort + k. */
  readonly peerPort: number;
}

export interface TransportConfig {
  /** TCP connections from worker k to worker k of each peer; frames go round-robin over them. */
  readonly socketsPerPeer: number;
  /** A batch is written once it holds this many bytes… */
  readonly batchMaxBytes: number;
  /** …or once its oldest message waited this long (also flushed at the end of each scheduler turn). */
  readonly batchMaxDelayUs: number;
  /** Frames above this size are lz4-compressed. */
  readonly compressionThresholdBytes: number;
  /** Per-peer send queue bound; beyond it messages are dropped (Paxos retransmits). */
  readonly sendQueueBytesMax: number;
}

export interface StorageConfig {
  readonly fileSizeBytesMax: number;
  readonly valueBytesMax: number;
}

export interface ConsensusConfig {
  /** A client operation that has not completed after this long fails with TIMEOUT. */
  readonly requestTimeoutMs: number;
  /** In-flight operations per shard worker; more are refused with OVERLOADED. */
  readonly inFlightMax: number;
  /**
   * Floors of the adaptive Paxos timers (src/consensus/round-trip-estimator.ts), which rise above
   * them when measured round trips are slower: resend an instance's state after `resendMs`, give
   * up a prepare/accept phase after `phaseTimeoutMs`, re-query a consistent read after
   * `readTimeoutMs`. Peers talk over TCP, so a resend only helps after a lost connection or a full
   * send queue; the simulator, whose network drops messages, runs with shorter ones.
   */
  readonly resendMs: number;
  readonly phaseTimeoutMs: number;
  readonly readTimeoutMs: number;
}

export interface ServerConfig {
  readonly clusterId: string;
  readonly replicaId: number;
  readonly replicas: readonly ReplicaAddress[];
  /** Shared by all replicas; authenticates peer links (HMAC challenge/response). */
  readonly secret: string;
  readonly dataDir: string;
  /** Shard workers per replica; fixed for the life of the cluster (pinned in the data directory). */
  readonly shards: number;
  readonly resp: Endpoint | null;
  readonly http: Endpoint | null;
  readonly transport: TransportConfig;
  readonly storage: StorageConfig;
  readonly consensus: ConsensusConfig;
  /**
   * Set when this replica lost its data (disk replaced, directory wiped) but the cluster did not:
   * it then learns each key from its peers before it votes on it again, so it cannot forget a
   * promise or an accept it gave before the loss. Leave it on until the replica has caught up.
   */
  readonly rebuilding: boolean;
}

export const defaultTransportConfig: TransportConfig = {
  socketsPerPeer: 2,
  batchMaxBytes: 64 * 1024,
  batchMaxDelayUs: 100,
  compressionThresholdBytes: 16 * 1024,
  sendQueueBytesMax: 32 * 1024 * 1024,
};

export const defaultStorageConfig: StorageConfig = {
  fileSizeBytesMax: 64 * 1024 * 1024,
  valueBytesMax: 16 * 1024 * 1024,
};

export const defaultConsensusConfig: ConsensusConfig = {
  requestTimeoutMs: 5000,
  inFlightMax: 20_000,
  resendMs: 300,
  phaseTimeoutMs: 1000,
  readTimeoutMs: 500,
};

export const SHARDS_MAX = 64;
/**
 * One shard worker per replica unless told otherwise: every replica of a cluster must use the same
 * count, so the default cannot depend on the machine. On 2 cores one worker next to the main
 * thread halved the CPU per write compared with two (fewer threads, fuller batches); give more
 * cores more shards with `shards` / `--shards` (README, Tuning).
 */
export const SHARDS_DEFAULT = 1;
export const REPLICAS_MAX = 9;

type Json = Record<string, unknown>;

function fail(field: string, problem: string): never {
  throw new PaxosStoreError('INVALID_ARGUMENT', `config: ${field} ${problem}`);
}

function integer(source: Json, field: string, fallback: number | undefined, low: number, high: number, path: string): number {
  const value = source[field] ?? fallback;
  if (value === undefined) fail(`${path}${field}`, 'is required');
  if (typeof value !== 'number' || !Number.isInteger(value)) fail(`${path}${field}`, `must be an integer, got ${JSON.stringify(value)}`);
  if (value < low || value > high) fail(`${path}${field}`, `must be in [${low}, ${high}], got ${value}`);
  return value;
}

function text(source: Json, field: string, fallback: string | undefined, path: string): string {
  const value = source[field] ?? fallback;
  if (typeof value !== 'string' || value.length === 0) fail(`${path}${field}`, 'must be a non-empty string');
  return value;
}

function flag(source: Json, field: string): boolean {
  const value = source[field] ?? false;
  if (typeof value !== 'boolean') fail(field, `must be true or false, got ${JSON.stringify(value)}`);
  return value;
}

function object(source: Json, field: string): Json {
  const value = source[field];
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(field, 'must be an object');
  return value as Json;
}

function endpoint(source: Json, field: string): Endpoint | null {
  const value = source[field];
  if (value === null || value === false) return null;
  if (value === undefined) fail(field, 'is required (use null to disable)');
  const entry = object(source, field);
  return { host: text(entry, 'host', '127.0.0.1', `${field}.`), port: integer(entry, 'port', undefined, 0, 65535, `${field}.`) };
}

/** Validates a parsed JSON config (file or assembled from flags) and fills defaults. */
export function parseServerConfig(input: unknown): ServerConfig {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) fail('(root)', 'must be a JSON object');
  const source = input as Json;
  const replicaId = integer(source, 'replicaId', undefined, 1, 255, '');
  if (!Array.isArray(source.replicas) || source.replicas.length === 0) fail('replicas', 'must be a non-empty array');
  if (source.replicas.length > REPLICAS_MAX) fail('replicas', `may list at most ${REPLICAS_MAX} replicas`);
  const replicas = (source.replicas as unknown[]).map((entry, index) => {
    if (typeof entry !== 'object' || entry === null) fail(`replicas[${index}]`, 'must be an object');
    const item = entry as Json;
    return {
      id: integer(item, 'id', undefined, 1, 255, `replicas[${index}].`),
      host: text(item, 'host', '127.0.0.1', `replicas[${index}].`),
      peerPort: integer(item, 'peerPort', undefined, 1, 65535, `replicas[${index}].`),
    };
  });
  const ids = new Set(replicas.map((replica) => replica.id));
  if (ids.size !== replicas.length) fail('replicas', 'has duplicate ids');
  if (!ids.has(replicaId)) fail('replicaId', `${replicaId} is not listed in replicas`);
  if (replicas.length % 2 === 0) fail('replicas', 'must have an odd count (3 or 5 recommended): an even count adds no fault tolerance');
  const shards = integer(source, 'shards', SHARDS_DEFAULT, 1, SHARDS_MAX, '');
  for (const replica of replicas) {
    if (replica.peerPort + shards - 1 > 65535) fail(`replicas (id ${replica.id}).peerPort`, `+ shards exceeds 65535`);
  }
  const transportSource = object(source, 'transport');
  const storageSource = object(source, 'storage');
  const consensusSource = object(source, 'consensus');
  const t = defaultTransportConfig;
  const s = defaultStorageConfig;
  const c = defaultConsensusConfig;
  return {
    clusterId: text(source, 'clusterId', 'paxosstore', ''),
    replicaId,
    replicas: replicas.sort((a, b) => a.id - b.id),
    secret: text(source, 'secret', undefined, ''),
    dataDir: text(source, 'dataDir', undefined, ''),
    shards,
    resp: endpoint(source, 'resp'),
    http: endpoint(source, 'http'),
    transport: {
      socketsPerPeer: integer(transportSource, 'socketsPerPeer', t.socketsPerPeer, 1, 64, 'transport.'),
      batchMaxBytes: integer(transportSource, 'batchMaxBytes', t.batchMaxBytes, 512, 16 * 1024 * 1024, 'transport.'),
      batchMaxDelayUs: integer(transportSource, 'batchMaxDelayUs', t.batchMaxDelayUs, 0, 1_000_000, 'transport.'),
      compressionThresholdBytes: integer(transportSource, 'compressionThresholdBytes', t.compressionThresholdBytes, 64, 1 << 30, 'transport.'),
      sendQueueBytesMax: integer(transportSource, 'sendQueueBytesMax', t.sendQueueBytesMax, 1 << 16, 1 << 30, 'transport.'),
    },
    storage: {
      fileSizeBytesMax: integer(storageSource, 'fileSizeBytesMax', s.fileSizeBytesMax, 1 << 16, 1 << 30, 'storage.'),
      valueBytesMax: integer(storageSource, 'valueBytesMax', s.valueBytesMax, 1, 512 * 1024 * 1024, 'storage.'),
    },
    rebuilding: flag(source, 'rebuilding'),
    consensus: {
      requestTimeoutMs: integer(consensusSource, 'requestTimeoutMs', c.requestTimeoutMs, 10, 600_000, 'consensus.'),
      inFlightMax: integer(consensusSource, 'inFlightMax', c.inFlightMax, 1, 1_000_000, 'consensus.'),
      resendMs: integer(consensusSource, 'resendMs', c.resendMs, 1, 60_000, 'consensus.'),
      phaseTimeoutMs: integer(consensusSource, 'phaseTimeoutMs', c.phaseTimeoutMs, 1, 600_000, 'consensus.'),
      readTimeoutMs: integer(consensusSource, 'readTimeoutMs', c.readTimeoutMs, 1, 600_000, 'consensus.'),
    },
  };
}
