/**
 * A short real run against a real local cluster (3 replica processes started by the CLI's
 * `cluster` command, through the sweep orchestration): it must complete with zero errors. Needs
 * the compiled CLI (`npm run build`, which `npm test` does first); skipped with a message without it.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { BenchConfig } from '../../src/bench/run.js';
import { runSweep } from '../../src/bench/sweep.js';

const cli = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

const config: BenchConfig = {
  target: 'resp',
  endpoints: [],
  workload: 'A',
  mix: { read: 0.5, update: 0.5 },
  distribution: 'zipfian',
  zipfianTheta: 0.99,
  keyCount: 50,
  valueSizeBytes: 100,
  keyPrefix: 'bench:',
  scanLengthMax: 10,
  preload: true,
  load: { kind: 'closed', clients: 3, pipeline: 2 },
  warmupSeconds: 0.2,
  durationSeconds: 1,
  timeoutMs: 5000,
  intervalMs: 250,
  connectTimeoutMs: 5000,
  seed: 1,
};

describe('bench against a real local cluster', () => {
  it.skipIf(!existsSync(cli))(`workload A over RESP on a fresh 3-replica cluster completes with zero errors (needs ${cli}: npm run build)`, async () => {
    const sweep = await runSweep(config, {
      parameters: [{ name: 'socketsPerPeer', values: [2] }],
      cluster: { command: process.execPath, args: [cli, 'cluster'] },
      replicas: 3,
      readyTimeoutMs: 30_000,
      stopTimeoutMs: 10_000,
    });
    const run = sweep.runs[0];
    expect(run.error).toBeNull();
    expect(run.result!.preload).toMatchObject({ errors: 0 });
    const { total, errorSamples } = run.result!.statistics;
    expect(errorSamples).toEqual([]);
    expect(total.errors + total.timeouts).toBe(0);
    // A loaded 2-core machine running the whole suite managed ~20 in 0.6 s: the bound says "it ran", not how fast.
    expect(total.count).toBeGreaterThan(5);
  });
});
