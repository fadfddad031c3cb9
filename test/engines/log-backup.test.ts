import { describe, expect, it } from 'vitest';
import { KvApplicator, KvService, readResult } from '../../src/apps/kv/kv-applicator.js';
import { BaseEngine } from '../../src/engines/base-engine.js';
import { LogBackupEngine, readSegment, restoreToPosition, segmentFileName } from '../../src/engines/log-backup-engine.js';
import { SimLogCluster } from '../../src/log/sim-cluster.js';
import { VirtualLog } from '../../src/log/virtual-log.js';
import { LsmTree } from '../../src/storage/lsm/index.js';
import { SimulatedFileSystem } from '../../src/storage/sim-file-system.js';
import { Random } from '../../src/util/random.js';
import { KvCluster, runInSimulation as run } from './harness.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();


describe('LogBackupEngine', () => {
  it('replicas back up disjoint segments, trim waits for backup, and a store restores to any position', async () => {
    const cluster = await SimLogCluster.create(new Random(8), 3);
    const backupFileSystem = new SimulatedFileSystem();
    const target = { fileSystem: backupFileSystem, directory: '/backup', segmentPositions: 8, bidExpiryPositions: 1_000 };
    const replicas = cluster.replicas.map((replica) => {
      const log = new VirtualLog(replica.node);
      const base = new BaseEngine(replica.node, log);
      const backup = new LogBackupEngine(base, base.localStore, replica.replicaId, log, () => base.appliedPosition, target, () => cluster.world.now() + 5_000);
      backup.registerUpcall(new KvApplicator());
      return { base, backup, kv: new KvService(backup) };
    });
    const positions: number[] = [];
    for (let i = 0; i < 30; i++) {
      await run(cluster, replicas[i % 3].kv.execute(`k${i % 4}`, { kind: 'set', value: encoder.encode(`v${i}`) }));
      positions.push(replicas[i % 3].base.appliedPosition);
    }
    // Nothing is backed up yet: the trim prefix passed down is 0 even though everything above allows more.
    replicas[0].backup.setTrimPrefix(1_000);
    expect(await run(cluster, replicas[0].base.trim())).toBe(0);
    // Replicas 1 and 2 race for segments; the log decides each segment's owner.
    for (let round = 0; round < 6; round++) {
      await run(cluster, Promise.all([replicas[0].backup.backUpOneSegment(), replicas[1].backup.backUpOneSegment()]));
    }
    for (const { backup } of replicas) (await run(cluster, backup.sync())).release();
    const uploaded = replicas[0].backup.segmentsUploaded + replicas[1].backup.segmentsUploaded;
    const files = backupFileSystem.list('/backup');
    expect(files.length).toBe(uploaded); // no segment was uploaded twice
    expect(replicas[0].backup.segmentsUploaded).toBeGreaterThan(0);
    expect(replicas[1].backup.segmentsUploaded).toBeGreaterThan(0);
    const backedUp = replicas[0].backup.backedUpPosition;
    expect(backedUp % 8).toBe(0);
    expect(backedUp).toBeGreaterThanOrEqual(24);
    for (const { backup } of replicas) expect(backup.backedUpPosition).toBe(backedUp);
    expect(readSegment(backupFileSystem, `/backup/${segmentFileName(0, 8)}`).length).toBeGreaterThan(0);
    // Trim now follows the backup, never past it.
    const trimmed = await run(cluster, replicas[0].base.trim());
    expect(trimmed).toBe(backedUp);
    // Point-in-time restore from an empty snapshot to just after write 12.
    const restored = await LsmTree.open({ directory: '/restore', fileSystem: new SimulatedFileSystem(), backgroundThread: 'inline', compression: false });
    const point = positions[12];
    expect(point).toBeLessThanOrEqual(backedUp);
    expect(await restoreToPosition(restored, target, new KvApplicator(), point)).toBe(point);
    for (let key = 0; key < 4; key++) {
      const latest = [...Array(13).keys()].filter((i) => i % 4 === key).pop()!;
      expect(decoder.decode(readResult(restored, `k${key}`).value!)).toBe(`v${latest}`);
    }
    await expect(restoreToPosition(restored, target, new KvApplicator(), backedUp + 100)).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });
});

describe('LogBackupEngine bid expiry (in buildStack)', () => {
  it('an owner that dies mid-upload loses the segment after bidExpiryPositions; another replica backs it up and trim moves', async () => {
    const backupFileSystem = new SimulatedFileSystem();
    const backup = { fileSystem: backupFileSystem, directory: '/backup', segmentPositions: 8, bidExpiryPositions: 20 };
    const cluster = await KvCluster.create(21, undefined, { backup });
    // Replica 2's uploads never finish: it dies during one.
    const hangingUploads = new Proxy(backupFileSystem, {
      get(target, property) {
        if (property === 'writeFileAtomic') return () => new Promise(() => {});
        const value = Reflect.get(target, property) as unknown;
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    cluster.rebuild(2, { backup: { ...backup, fileSystem: hangingUploads } });
    const write = (replicaId: number, index: number) => cluster.run(cluster.replica(replicaId).kv.execute(`k${index % 3}`, { kind: 'set', value: encoder.encode(`v${index}`) }));
    for (let index = 0; index < 10; index++) await write(1, index);
    for (const id of [1, 2, 3]) {
      (await cluster.run(cluster.replica(id).stack.top.sync())).release();
      await cluster.run(cluster.replica(id).stack.views.heartbeat());
    }
    // Every replica's view allows a trim, but nothing is backed up: trim waits.
    expect(Math.min(...cluster.replica(1).stack.views.viewSnapshot().values())).toBeGreaterThan(0);
    expect(await cluster.run(cluster.replica(1).stack.base.trim())).toBe(0);
    // Replica 2 wins segment 0, starts uploading, and dies.
    const segmentZeroOwner = encoder.encode('E/backup/owner/000000000000');
    void cluster.replica(2).stack.backup!.backUpOneSegment();
    expect(await cluster.world.runUntil(() => cluster.replica(2).stack.base.localStore.get(segmentZeroOwner) !== undefined, 5_000)).toBe(true);
    cluster.sim.crash(2);
    // Replica 1 cannot take the segment while the bid is live.
    (await cluster.run(cluster.replica(1).stack.top.sync())).release();
    expect(await cluster.run(cluster.replica(1).stack.backup!.backUpOneSegment())).toBeNull();
    expect(backupFileSystem.list('/backup')).toEqual([]);
    // The log moves on; once 20 positions passed the bid, replica 1 wins segment 0 and the rest.
    for (let index = 10; index < 30; index++) await write(1, index);
    const backedUpSegments: number[] = [];
    for (let start = await cluster.run(cluster.replica(1).stack.backup!.backUpOneSegment()); start !== null; start = await cluster.run(cluster.replica(1).stack.backup!.backUpOneSegment())) {
      backedUpSegments.push(start);
    }
    expect(backedUpSegments[0]).toBe(0);
    expect(backedUpSegments.length).toBeGreaterThanOrEqual(3);
    const backedUp = cluster.replica(1).stack.backup!.backedUpPosition;
    expect(backedUp).toBe(8 * backedUpSegments.length);
    expect(readSegment(backupFileSystem, `/backup/${segmentFileName(0, 8)}`).map((record) => record.position)).toContain(0);
    // Replica 2 comes back; with every view reported again, trim follows the backup.
    await cluster.sim.restart(2);
    cluster.rebuild(2);
    for (const id of [2, 3, 1]) {
      (await cluster.run(cluster.replica(id).stack.top.sync())).release();
      await cluster.run(cluster.replica(id).stack.views.heartbeat());
    }
    for (const id of [1, 2, 3]) expect(cluster.replica(id).stack.backup!.backedUpPosition).toBe(backedUp);
    const trimmed = await cluster.run(cluster.replica(1).stack.base.trim());
    expect(trimmed).toBe(backedUp);
    expect(new Set(await cluster.digests()).size).toBe(1);
  });
});
