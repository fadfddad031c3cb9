/**
 * One simulator run: a seed decides the fault profile, the workload and every random choice.
 *
 *   safety phase (faults on) ──► liveness phase (faults healed, crashed replicas restarted,
 *                                 no new requests; every pending request must be answered
 *                                 within livenessTicksMax) ──► checks
 *
 * Checks: no assertion fired in the core; the agreement oracle saw one value per (key, entry),
 * durable ones during the run and every replica's chosen entries at the end;
 * the client history is linearizable (src/check). A failing seed prints the command that
 * reproduces it.
 */
import { describeViolation } from '../check/describe.js';
import { checkLinearizability } from '../check/linearizability.js';
import type { ConsensusConfig, ReplicaBugs } from '../consensus/config.js';
import { AssertionError } from '../util/assert.js';
import { Random } from '../util/random.js';
import { SimCluster } from './cluster.js';
import { describeProfile, type FaultProfile, randomFaultProfile } from './faults.js';
import { Workload } from './workload.js';

export interface SeedOptions {
  readonly seed: number;
  readonly replicaCount: 3 | 5;
  readonly bugs?: ReplicaBugs;
  /** Replaces parts of the seed's random fault profile (bug-injection tests force some faults). */
  readonly profileOverride?: Partial<FaultProfile>;
  readonly safetyTicks?: number;
  readonly livenessTicksMax?: number;
  readonly config?: Partial<ConsensusConfig>;
  /** Search steps per key for the checker: deterministic, unlike a time budget. */
  readonly checkerStepsMax?: number;
}

export type SeedVerdict = 'ok' | 'assertion' | 'agreement' | 'linearizability' | 'liveness' | 'checker-inconclusive';

export interface SeedReport {
  readonly seed: number;
  readonly replicaCount: number;
  readonly verdict: SeedVerdict;
  /** Human-readable failure (empty when ok). */
  readonly failure: string;
  readonly reproduce: string;
  readonly profile: FaultProfile;
  readonly operations: number;
  readonly outcomes: { ok: number; error: number; unknown: number };
  readonly ticks: number;
  readonly counters: SimCluster['counters'];
}

export const SAFETY_TICKS_DEFAULT = 1500;
export const LIVENESS_TICKS_MAX_DEFAULT = 4000;

export function reproduceCommand(seed: number, replicaCount: number): string {
  return `npm run sim -- --seed ${seed} --replicas ${replicaCount}`;
}

export function runSeed(options: SeedOptions): SeedReport {
  const random = new Random(options.seed);
  const profile: FaultProfile = { ...randomFaultProfile(random.fork()), ...options.profileOverride };
  const config = { ...timeoutsFor(profile), ...options.config };
  // One seed in four sends every message through the binary wire codec, as on the wire.
  const encodeMessages = options.seed % 4 === 0;
  // One seed in three keeps a single key in memory: every other idle key is evicted and reloaded.
  const keysInMemoryMax = options.seed % 3 === 1 ? 1 : undefined;
  const cluster = new SimCluster({ replicaCount: options.replicaCount, random: random.fork(), profile, bugs: options.bugs, config, encodeMessages, keysInMemoryMax });
  const keyCount = random.range(2, 5);
  const keys = Array.from({ length: keyCount }, (_, index) => `k${index}`);
  const workload = new Workload(cluster, random.fork(), {
    clientCount: random.range(3, 7),
    keys,
    attemptTimeoutTicks: Math.max(300, 12 * profile.delayTicksMax),
    retriesMax: random.range(0, 3),
    thinkTicksMax: 15,
  });
  const faults = random.fork();
  const report = (verdict: SeedVerdict, failure: string): SeedReport => {
    const outcomes = { ok: 0, error: 0, unknown: 0 };
    for (const operation of workload.history) outcomes[operation.outcome.type]++;
    return {
      seed: options.seed,
      replicaCount: options.replicaCount,
      verdict,
      failure,
      reproduce: reproduceCommand(options.seed, options.replicaCount),
      profile,
      operations: workload.history.length,
      outcomes,
      ticks: cluster.now,
      counters: cluster.counters,
    };
  };

  try {
    runSafetyPhase(cluster, faults, options.safetyTicks ?? SAFETY_TICKS_DEFAULT);
    const stuck = runLivenessPhase(cluster, workload, options.livenessTicksMax ?? LIVENESS_TICKS_MAX_DEFAULT);
    cluster.checkFinalAgreement(keys);
    if (cluster.agreementFailures.length > 0) return report('agreement', cluster.agreementFailures.join('\n'));
    if (stuck.length > 0) return report('liveness', `requests unanswered ${options.livenessTicksMax ?? LIVENESS_TICKS_MAX_DEFAULT} ticks after healing:\n${stuck.join('\n')}`);
  } catch (error) {
    if (!(error instanceof AssertionError)) throw error;
    return report('assertion', `${error.message}\n${error.stack ?? ''}`);
  }
  const result = checkLinearizability(workload.history, { searchStepsMax: options.checkerStepsMax ?? 2_000_000, timeBudgetMs: 60_000 });
  if (result.verdict === 'violation') return report('linearizability', describeViolation(result));
  if (result.verdict === 'unknown') return report('checker-inconclusive', `key ${result.key}: ${result.reason}`);
  return report('ok', '');
}

/**
 * Timeouts scaled to the seed's network: the production defaults assume a round trip far below
 * one tick; the simulator stretches delays to dozens of ticks to shake out races, and timeouts
 * shorter than a round trip would only measure retransmission storms.
 */
function timeoutsFor(profile: FaultProfile): Partial<ConsensusConfig> {
  const roundTripTicks = 2 * profile.delayTicksMax + profile.diskTicksMax;
  return {
    resendTicks: Math.max(20, roundTripTicks + 2),
    backoffTicks: Math.max(4, roundTripTicks),
    phaseTimeoutTicks: Math.max(120, 4 * roundTripTicks),
    readTimeoutTicks: Math.max(60, 2 * roundTripTicks),
  };
}

function runSafetyPhase(cluster: SimCluster, faults: Random, ticks: number): void {
  const profile = cluster.profile;
  const restartAt = new Map<number, number>();
  let healAt = 0;
  for (let tick = 0; tick < ticks; tick++) {
    if (cluster.partitioned && cluster.now >= healAt) cluster.heal();
    if (!cluster.partitioned && faults.chance(profile.partitionRate)) {
      const shuffled = [...cluster.replicaIds].sort(() => faults.float() - 0.5);
      const cut = faults.range(1, shuffled.length - 1);
      cluster.partition(shuffled.slice(0, cut), shuffled.slice(cut));
      healAt = cluster.now + faults.range(10, Math.max(10, profile.partitionTicksMax));
    }
    for (const [id, time] of restartAt) {
      if (cluster.now >= time) {
        cluster.start(id);
        restartAt.delete(id);
      }
    }
    const crash = faults.chance(profile.crashRate);
    const wipe = faults.chance(profile.wipeRate);
    if (crash || wipe) {
      const id = faults.pick(cluster.replicaIds);
      if (cluster.isUp(id)) {
        if (wipe && cluster.mayWipe(id)) cluster.wipe(id);
        else cluster.crash(id);
        restartAt.set(id, cluster.now + faults.range(1, Math.max(1, profile.downTicksMax)));
      }
    }
    cluster.step();
  }
}

/** Heals everything, then runs until every pending request is answered; returns the stuck ones. */
function runLivenessPhase(cluster: SimCluster, workload: Workload, ticksMax: number): string[] {
  cluster.heal();
  for (const id of cluster.replicaIds) cluster.start(id);
  cluster.profile = { ...cluster.profile, dropRate: 0, duplicateRate: 0, partitionRate: 0, crashRate: 0, slowDiskRate: 0 };
  workload.drain();
  for (let tick = 0; tick < ticksMax && workload.pendingCount > 0; tick++) cluster.step();
  const stuck = workload.pendingDescriptions();
  workload.abandonPending();
  return stuck;
}

export function describeReport(report: SeedReport): string {
  const head = `seed ${report.seed} replicas ${report.replicaCount}: ${report.verdict} — ${report.operations} ops (ok ${report.outcomes.ok}, error ${report.outcomes.error}, unknown ${report.outcomes.unknown}), ${report.ticks} ticks; faults: ${describeProfile(report.profile)}`;
  if (report.verdict === 'ok') return head;
  return `${head}\n${report.failure}\nreproduce: ${report.reproduce}`;
}
