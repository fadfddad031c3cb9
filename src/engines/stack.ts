/**
 * Assembles an engine stack over one replica of the shared log. Order, bottom to top:
 *
 *   BaseEngine → ViewTracking → LogBackup? → LeaseEngine? → BrainDoctor → Batching? → Observer → application
 *
 * LogBackup sits right above ViewTracking: the trim it allows (the backed-up prefix) caps the one
 * ViewTracking passes to BaseEngine, and its bids and completions are control entries that no
 * lease check refuses. Lease sits below Batching so a batch (one entry) is checked against the
 * lease once; Observer sits on top so it measures the whole stack as the application sees it.
 * Engines read the applied state (BaseEngine.localStore), which includes unflushed entries.
 */
import type { LogNode } from '../log/log-node.js';
import { VirtualLog } from '../log/virtual-log.js';
import { BASE_ENGINE_DEFAULTS, BaseEngine, type BaseEngineOptions } from './base-engine.js';
import { BatchingEngine } from './batching-engine.js';
import { BrainDoctorEngine } from './brain-doctor-engine.js';
import { LeaseEngine, type LeaseOptions } from './lease-engine.js';
import { type BackupOptions, LogBackupEngine } from './log-backup-engine.js';
import { ObserverEngine } from './observer-engine.js';
import type { IApplicator, IEngine } from './types.js';
import { ViewTrackingEngine } from './view-tracking-engine.js';

export interface StackOptions {
  readonly batching?: boolean;
  readonly lease?: LeaseOptions;
  /** Log backup to a directory (and trim only what is backed up). */
  readonly backup?: BackupOptions;
  readonly base?: Partial<BaseEngineOptions>;
  readonly nowUs?: () => number;
}

export interface Stack {
  readonly log: VirtualLog;
  readonly base: BaseEngine;
  readonly views: ViewTrackingEngine;
  readonly backup: LogBackupEngine | null;
  readonly lease: LeaseEngine | null;
  readonly doctor: BrainDoctorEngine;
  readonly batching: BatchingEngine | null;
  readonly observer: ObserverEngine;
  readonly top: IEngine;
}

export function buildStack(node: LogNode, applicator: IApplicator, options: StackOptions = {}): Stack {
  const log = new VirtualLog(node);
  const baseOptions = { ...BASE_ENGINE_DEFAULTS, ...options.base };
  const base = new BaseEngine(node, log, baseOptions);
  const store = base.localStore;
  const views = new ViewTrackingEngine(base, store, node.replicaId, node.replicaIds, () => base.flushedPosition, true, () => base.flush());
  let below: IEngine = views;
  let backup: LogBackupEngine | null = null;
  if (options.backup !== undefined) {
    const deadline = () => node.clock.now() + baseOptions.timeoutTicks;
    backup = new LogBackupEngine(below, store, node.replicaId, log, () => base.appliedPosition, options.backup, deadline);
    below = backup;
  }
  let lease: LeaseEngine | null = null;
  if (options.lease !== undefined) {
    lease = new LeaseEngine(below, store, node.replicaId, node.clock, () => base.localSnapshot(), options.lease);
    below = lease;
  }
  const doctor = new BrainDoctorEngine(below, store);
  below = doctor;
  let batching: BatchingEngine | null = null;
  if (options.batching) {
    batching = new BatchingEngine(below, store);
    below = batching;
  }
  const observer = new ObserverEngine('observer', below, store, options.nowUs);
  observer.registerUpcall(applicator);
  return { log, base, views, backup, lease, doctor, batching, observer, top: observer };
}
