import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BenchConfig, runBench } from '../../src/bench/run.js';
import { WORKLOAD_PRESETS, type WorkloadName } from '../../src/bench/workload.js';
import { type RunningRedis, startRedis } from './redis-server.js';

function config(port: number, overrides: Partial<BenchConfig> = {}, workload: WorkloadName = 'A'): BenchConfig {
  return {
    target: 'resp',
    endpoints: [{ host: '127.0.0.1', port }],
    workload,
    mix: WORKLOAD_PRESETS[workload].mix,
    distribution: WORKLOAD_PRESETS[workload].distribution,
    zipfianTheta: 0.99,
    keyCount: 2000,
    valueSizeBytes: 64,
    keyPrefix: 'bench:',
    scanLengthMax: 20,
    preload: true,
    load: { kind: 'closed', clients: 4, pipeline: 4 },
    warmupSeconds: 0.1,
    durationSeconds: 0.6,
    timeoutMs: 5000,
    intervalMs: 200,
    connectTimeoutMs: 2000,
    seed: 1,
    ...overrides,
  };
}

describe('real runs against redis-server', () => {
  let redis: RunningRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('closed loop, workload A with preload: completes with zero errors', async () => {
    const result = await runBench(config(redis.port));
    expect(result.preload).toMatchObject({ keys: 2000, errors: 0 });
    const { total, operations, timeSeries } = result.statistics;
    expect(total.errors).toBe(0);
    expect(total.timeouts).toBe(0);
    expect(total.count).toBeGreaterThan(500);
    expect(operations.map((operation) => operation.operation)).toEqual(['read', 'update']);
    // Workload A is 50/50; the measured split is close to it.
    expect(operations[0].count / total.count).toBeGreaterThan(0.4);
    expect(operations[0].count / total.count).toBeLessThan(0.6);
    expect(total.latencyMs!.p50).toBeGreaterThan(0);
    expect(total.latencyMs!.p50).toBeLessThanOrEqual(total.latencyMs!.p99);
    expect(timeSeries.length).toBeGreaterThanOrEqual(3);
  });

  it('open loop at a fixed rate sends the scheduled number of operations with zero errors', async () => {
    const result = await runBench(config(redis.port, { load: { kind: 'open', clients: 2, pipeline: 16, ratePerSecond: 2000, arrival: 'uniform' }, preload: false }));
    const { total, sendLagMs } = result.statistics;
    expect(total.errors + total.timeouts).toBe(0);
    expect(total.count).toBe(1200);
    expect(sendLagMs).not.toBeNull();
  });

  it.each(['B', 'C', 'D', 'E', 'F'] as const)('workload %s runs with zero errors', async (workload) => {
    const result = await runBench(config(redis.port, { durationSeconds: 0.25, warmupSeconds: 0, preload: false }, workload));
    const { total } = result.statistics;
    expect(total.errors + total.timeouts).toBe(0);
    expect(total.count).toBeGreaterThan(100);
  });

  it('counts server errors instead of dropping them', async () => {
    // Keys holding a list make GET fail with -WRONGTYPE: every read is an error, every update succeeds.
    const port = redis.port;
    const { RespConnection } = await import('../../src/bench/targets/resp-client.js');
    const connection = await RespConnection.connect('127.0.0.1', port);
    await Promise.all(Array.from({ length: 50 }, (_, i) => connection.send(['RPUSH', `list:${String(i).padStart(12, '0')}`, 'x'])));
    await connection.close();
    const result = await runBench(config(port, { keyPrefix: 'list:', keyCount: 50, preload: false, mix: { read: 1 }, workload: 'C', durationSeconds: 0.3 }));
    const { total, errorSamples } = result.statistics;
    expect(total.count).toBe(0);
    expect(total.errors).toBeGreaterThan(100);
    expect(errorSamples[0].message).toContain('WRONGTYPE');
  });
});

describe('HTTP target', () => {
  let server: http.Server;
  const store = new Map<string, Buffer>();
  let requests = 0;
  beforeAll(async () => {
    server = http.createServer((request, response) => {
      requests++;
      const key = decodeURIComponent(request.url!.replace('/v1/kv/', ''));
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        if (key.endsWith('7')) {
          response.writeHead(503, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'OVERLOADED', message: 'shed' } }));
        } else if (request.method === 'PUT') {
          store.set(key, Buffer.concat(chunks));
          response.writeHead(204).end();
        } else if (store.has(key)) response.writeHead(200).end(store.get(key));
        else response.writeHead(404).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('reads and writes over keep-alive, counting error statuses with their catalogue code', async () => {
    const port = (server.address() as AddressInfo).port;
    const result = await runBench(config(port, { target: 'http', keyCount: 100, distribution: 'uniform', durationSeconds: 0.4 }));
    const { total, errorSamples } = result.statistics;
    // Keys ending in 7 (10 of 100) answer 503 OVERLOADED; the preload's failures are reported too.
    expect(result.preload!.errors).toBe(10);
    expect(total.count).toBeGreaterThan(50);
    expect(total.errors / (total.count + total.errors)).toBeGreaterThan(0.04);
    expect(total.errors / (total.count + total.errors)).toBeLessThan(0.2);
    expect(errorSamples[0].message).toBe('OVERLOADED: shed');
    expect(store.get('bench:000000000001')?.length).toBe(64);
    expect(requests).toBeGreaterThan(total.count);
  });

  it('refuses a scan workload before connecting', async () => {
    await expect(runBench(config(1, { target: 'http' }, 'E'))).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
