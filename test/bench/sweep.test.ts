import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { formatSweep } from '../../src/bench/format.js';
import type { BenchConfig } from '../../src/bench/run.js';
import { clusterFlags, parseReadyLine, parseSweepParameter, runSweep, type SweepOptions, sweepCombinations } from '../../src/bench/sweep.js';

const fakeCluster = fileURLToPath(new URL('./fake-cluster.mjs', import.meta.url));
const logDirectory = mkdtempSync(join(tmpdir(), 'bench-sweep-test-'));
afterAll(() => rmSync(logDirectory, { recursive: true, force: true }));

const config: BenchConfig = {
  target: 'resp',
  endpoints: [],
  workload: 'A',
  mix: { read: 0.5, update: 0.5 },
  distribution: 'zipfian',
  zipfianTheta: 0.99,
  keyCount: 500,
  valueSizeBytes: 32,
  keyPrefix: 'bench:',
  scanLengthMax: 10,
  preload: true,
  load: { kind: 'closed', clients: 3, pipeline: 2 },
  warmupSeconds: 0,
  durationSeconds: 0.3,
  timeoutMs: 2000,
  intervalMs: 100,
  connectTimeoutMs: 2000,
  seed: 1,
};

function options(parameters: SweepOptions['parameters'], log: string, readyTimeoutMs = 10_000): SweepOptions {
  process.env.FAKE_CLUSTER_LOG = log;
  return { parameters, cluster: { command: process.execPath, args: [fakeCluster] }, replicas: 3, readyTimeoutMs, stopTimeoutMs: 5000 };
}

function logEntries(log: string): { event: string; args?: string[]; dataDir?: string }[] {
  return readFileSync(log, 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line));
}

describe('sweep parameters', () => {
  it('parses settings, builds the cartesian product and the cluster flags', () => {
    const sockets = parseSweepParameter('socketsPerPeer=1,2');
    const delay = parseSweepParameter('batchMaxDelayUs=0,50,200');
    expect(sockets).toEqual({ name: 'socketsPerPeer', values: [1, 2] });
    const combinations = sweepCombinations([sockets, delay]);
    expect(combinations).toHaveLength(6);
    expect(combinations[0]).toEqual({ socketsPerPeer: 1, batchMaxDelayUs: 0 });
    expect(combinations[5]).toEqual({ socketsPerPeer: 2, batchMaxDelayUs: 200 });
    expect(clusterFlags(combinations[4])).toEqual(['--sockets-per-peer', '2', '--batch-max-delay-us', '50']);
    expect(() => parseSweepParameter('colour=1,2')).toThrow(/NAME/);
    expect(() => parseSweepParameter('shards=1,x')).toThrow(/integer/);
    expect(() => parseSweepParameter('shards=1,1')).toThrow(/repeated/);
    expect(() => sweepCombinations([sockets, sockets])).toThrow(/twice/);
  });

  it('parses the ready line and ignores other output', () => {
    expect(parseReadyLine('starting…')).toBeUndefined();
    expect(parseReadyLine('{"event":"log"}')).toBeUndefined();
    const replicas = parseReadyLine('{"event":"ready","replicas":[{"id":1,"resp":{"host":"127.0.0.1","port":7100},"http":{"host":"127.0.0.1","port":7101}}]}');
    expect(replicas?.[0].resp.port).toBe(7100);
    expect(() => parseReadyLine('{"event":"ready","replicas":[{"id":1}]}')).toThrow(/no valid replicas/);
  });
});

describe('sweep orchestration against a fake cluster', () => {
  it('starts a fresh cluster per combination with its flags, runs, stops it with SIGTERM, removes its data', async () => {
    const log = join(logDirectory, 'ok.log');
    const result = await runSweep(config, options([parseSweepParameter('socketsPerPeer=1,4'), parseSweepParameter('batchMaxDelayUs=0,200')], log));
    expect(result.runs.map((run) => run.error)).toEqual([null, null, null, null]);
    for (const run of result.runs) {
      expect(run.result!.statistics.total.errors + run.result!.statistics.total.timeouts).toBe(0);
      expect(run.result!.statistics.total.count).toBeGreaterThan(50);
      // Clients are spread over the three replicas' RESP endpoints.
      expect(run.result!.config.endpoints).toHaveLength(3);
    }
    const entries = logEntries(log);
    const starts = entries.filter((entry) => entry.event === 'start');
    const stops = entries.filter((entry) => entry.event === 'stopped');
    expect(starts).toHaveLength(4);
    expect(stops).toHaveLength(4);
    expect(starts[3].args).toEqual(expect.arrayContaining(['--replicas', '3', '--sockets-per-peer', '4', '--batch-max-delay-us', '200']));
    const dataDirs = starts.map((entry) => entry.args![entry.args!.indexOf('--data-dir') + 1]);
    expect(new Set(dataDirs).size).toBe(4);
    for (const dataDir of dataDirs) expect(existsSync(dataDir)).toBe(false);
    const table = formatSweep(result);
    expect(table).toMatch(/socketsPerPeer\s+batchMaxDelayUs\s+ops\/s/);
    expect(table.split('\n').filter((line) => /^\d/.test(line))).toHaveLength(4);
  });

  it('reports a cluster that never becomes ready (killed, data removed) and one that exits early', async () => {
    const log = join(logDirectory, 'never.log');
    process.env.FAKE_CLUSTER_MODE = 'never-ready';
    try {
      // Long enough for node to start and install its SIGTERM handler on a loaded machine.
      const neverReady = await runSweep(config, options([parseSweepParameter('shards=1')], log, 3000));
      expect(neverReady.runs[0].error).toMatch(/not ready within 3000 ms/);
      const start = logEntries(log)[0];
      expect(existsSync(start.args![start.args!.indexOf('--data-dir') + 1])).toBe(false);
      expect(logEntries(log).some((entry) => entry.event === 'stopped')).toBe(true);
      process.env.FAKE_CLUSTER_MODE = 'exit-early';
      const exitsEarly = await runSweep(config, options([parseSweepParameter('shards=1')], log));
      expect(exitsEarly.runs[0].error).toMatch(/exited before it was ready \(code 7.*exiting on purpose/s);
      expect(formatSweep(exitsEarly)).toMatch(/failed/);
    } finally {
      delete process.env.FAKE_CLUSTER_MODE;
    }
  });
});
