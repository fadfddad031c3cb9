/**
 * The three targets against the project's own front ends (RESP server, HTTP/WebSocket server) over
 * an in-memory router: the protocols the benchmark speaks are the ones the server serves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchConfig, runBench } from '../../src/bench/run.js';
import type { TargetName } from '../../src/bench/targets/types.js';
import { WORKLOAD_PRESETS, type WorkloadName } from '../../src/bench/workload.js';
import { type HttpServer, startHttpServer } from '../../src/frontends/http/server.js';
import { type RespServer, startRespServer } from '../../src/frontends/resp/server.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { MemoryRouter } from '../helpers/memory-router.js';

function config(target: TargetName, port: number, workload: WorkloadName): BenchConfig {
  return {
    target,
    endpoints: [{ host: '127.0.0.1', port }],
    workload,
    ...WORKLOAD_PRESETS[workload],
    zipfianTheta: 0.99,
    keyCount: 100,
    valueSizeBytes: 50,
    keyPrefix: 'bench:',
    scanLengthMax: 10,
    preload: true,
    load: { kind: 'closed', clients: 3, pipeline: 4 },
    warmupSeconds: 0,
    durationSeconds: 0.25,
    timeoutMs: 3000,
    intervalMs: 100,
    connectTimeoutMs: 2000,
    seed: 3,
  };
}

describe('targets against the PaxosStore front ends (in-memory router)', () => {
  let http: HttpServer;
  let resp: RespServer;
  beforeAll(async () => {
    const router = new MemoryRouter();
    http = await startHttpServer({ port: 0, router, metrics: new MetricsRegistry() });
    resp = await startRespServer({ port: 0, router });
  });
  afterAll(async () => {
    await http?.close();
    await resp?.close();
  });

  it.each([
    ['resp', 'A'],
    ['resp', 'E'],
    ['http', 'F'],
    ['ws', 'A'],
    ['ws', 'E'],
  ] as const)('%s target, workload %s: zero errors', async (target, workload) => {
    const port = target === 'resp' ? resp.port : http.port;
    const result = await runBench(config(target, port, workload));
    expect(result.preload).toMatchObject({ errors: 0, firstError: null });
    const { total, errorSamples } = result.statistics;
    expect(errorSamples).toEqual([]);
    expect(total.errors + total.timeouts).toBe(0);
    expect(total.count).toBeGreaterThan(20);
  });
});
