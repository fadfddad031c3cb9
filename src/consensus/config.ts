/**
 * Knobs of the consensus layer. Times are scheduler ticks (the shard worker ticks once per
 * millisecond; the simulator's tick is its unit of time). Every loop a request runs is bounded by
 * one of these, so a request always ends with a result or a typed error.
 */
import { PaxosStoreError } from '../errors.js';

export interface ConsensusConfig {
  /** Resend the own state of an instance to peers when nothing happened for this long. */
  readonly resendTicks: number;
  /** A prepare or accept phase gives up after this long without reaching its goal. */
  readonly phaseTimeoutTicks: number;
  /** Prepare rounds one proposal may try (each after a randomized backoff) before giving up. */
  readonly proposeRoundsMax: number;
  /** Entries a write may try (it lost the entry to another write, so it retries on the next). */
  readonly writeAttemptsMax: number;
  /** Query rounds of one consistent read. */
  readonly readRoundsMax: number;
  /** One consistent-read round waits at most this long for replies. */
  readonly readTimeoutTicks: number;
  /** Base of the randomized exponential backoff between prepare rounds (breaks duelling proposers). */
  readonly backoffTicks: number;
  /** A lagging replica asks a peer for the chosen entry of a key at most this often. */
  readonly fetchIntervalTicks: number;
  /** Clients remembered per key for request-id dedup (see paxos-log.ts). */
  readonly sessionsMax: number;
}

export const CONSENSUS_CONFIG_DEFAULT: ConsensusConfig = Object.freeze({
  resendTicks: 20,
  phaseTimeoutTicks: 120,
  proposeRoundsMax: 6,
  writeAttemptsMax: 12,
  readRoundsMax: 6,
  readTimeoutTicks: 60,
  backoffTicks: 4,
  fetchIntervalTicks: 10,
  sessionsMax: 16,
});

export function resolveConsensusConfig(overrides: Partial<ConsensusConfig> = {}): ConsensusConfig {
  const config = { ...CONSENSUS_CONFIG_DEFAULT, ...overrides };
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isSafeInteger(value) || value < 1) throw new PaxosStoreError('INVALID_ARGUMENT', `consensus config ${name} must be a positive integer`, { name, value });
  }
  return config;
}

/** Test-only protocol bugs, to prove that the simulator and the checker catch them. */
export interface ReplicaBugs {
  /** Release messages and replies before their group commit is durable. */
  readonly replyBeforePersist?: boolean;
  /** Accept a proposal even after promising a higher ballot. */
  readonly acceptWithoutPromiseCheck?: boolean;
  /** Use the round-0 prepare-skip ballot even when another replica proposed the last chosen entry. */
  readonly prepareSkipByAnyReplica?: boolean;
  /** Answer a linearizable get from the local chosen entry without asking a majority. */
  readonly localReadWithoutMajority?: boolean;
  /** A rebuilding (wiped) replica votes at once instead of probing a majority first. */
  readonly rebuildWithoutProbe?: boolean;
}
