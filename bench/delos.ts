/**
 * `npm run bench:delos`: latency and throughput of the Delos KV route (/v1/delos/kv/:key) on the
 * local 3-replica cluster, next to the per-key PaxosStore route (/v1/kv/:key) measured in the
 * same run with the same HTTP client, so the ratio is meaningful on a shared machine.
 *
 *   phase 1: BENCH_SEQUENTIAL (1000) PUTs one after another through replica 1 (latency)
 *   phase 2: BENCH_CLIENTS (20) concurrent clients, BENCH_CONCURRENT_REQUESTS (4000) PUTs in all
 *   phase 3: the same concurrent load of linearizable GETs
 *   then: replica 1's ObserverEngine summaries from /metrics (quantiles of the last 1–2 minutes)
 *
 * Environment knobs: those of the phases above, BENCH_VALUE_BYTES (100), BENCH_BASE_PORT (17400),
 * BENCH_SHARDS, BENCH_SOCKETS_PER_PEER, BENCH_BATCH_MAX_DELAY_US (cluster-process.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'hdr-histogram-js';
import { clusterArgsFromEnvironment, startClusterProcess, stopProcess } from './cluster-process.js';

const sequential = Number(process.env.BENCH_SEQUENTIAL ?? 1000);
const clients = Number(process.env.BENCH_CLIENTS ?? 20);
const concurrentRequests = Number(process.env.BENCH_CONCURRENT_REQUESTS ?? 4000);
const valueBytes = Number(process.env.BENCH_VALUE_BYTES ?? 100);
const basePort = Number(process.env.BENCH_BASE_PORT ?? 17400);
/** Replica 1's HTTP port in the local cluster's port plan (src/cluster/ports.ts). */
const httpPort = basePort + 1;
const agent = new Agent({ keepAlive: true, maxSockets: clients });
const value = Buffer.alloc(valueBytes, 0x61);

interface Row {
  route: string;
  phase: string;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function call(method: 'GET' | 'PUT', path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const outgoing = request({ host: '127.0.0.1', port: httpPort, method, path, agent }, (response) => {
      let body = '';
      response.setEncoding('latin1');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`${method} ${path}: HTTP ${response.statusCode}`))));
    });
    outgoing.on('error', reject);
    outgoing.end(method === 'PUT' ? value : undefined);
  });
}

async function measure(route: string, phase: string, method: 'GET' | 'PUT', count: number, concurrency: number): Promise<Row> {
  const histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  let next = 0;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (next < count) {
      const index = next++;
      const begin = performance.now();
      await call(method, `${route}/bench-${index % 1000}`);
      histogram.recordValue(Math.round((performance.now() - begin) * 1000));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = (performance.now() - started) / 1000;
  return {
    route,
    phase,
    requestsPerSecond: Math.round(count / seconds),
    p50Ms: histogram.getValueAtPercentile(50) / 1000,
    p99Ms: histogram.getValueAtPercentile(99) / 1000,
    maxMs: histogram.maxValue / 1000,
  };
}

/** `layer quantile → ms` lines of the Delos observer summary, read from the Prometheus text. */
function observerLines(metrics: string): string[] {
  const pattern = /^paxosstore_delos_layer_duration_seconds\{([^}]*)\} (\S+)$/;
  const lines: string[] = [];
  for (const line of metrics.split('\n')) {
    const match = pattern.exec(line);
    if (match === null) continue;
    const labels = Object.fromEntries([...match[1].matchAll(/(\w+)="([^"]*)"/g)].map(([, name, value]) => [name, value]));
    lines.push(`${labels.layer} q${labels.quantile}: ${(Number(match[2]) * 1000).toFixed(2)} ms`);
  }
  return lines;
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'paxosstore-bench-delos-'));
  const cluster = await startClusterProcess(join(root, 'cluster'), basePort, clusterArgsFromEnvironment());
  const rows: Row[] = [];
  let observer: string[] = [];
  try {
    for (const route of ['/v1/delos/kv', '/v1/kv']) {
      await measure(route, 'warm-up', 'PUT', 200, clients);
      rows.push(await measure(route, `${sequential} sequential PUTs`, 'PUT', sequential, 1));
      rows.push(await measure(route, `${clients} clients, PUT`, 'PUT', concurrentRequests, clients));
      rows.push(await measure(route, `${clients} clients, GET`, 'GET', concurrentRequests, clients));
      if (route === '/v1/delos/kv') {
        await new Promise((resolve) => setTimeout(resolve, 1500)); // workers ship metrics once a second
        observer = observerLines(await call('GET', '/metrics'));
      }
    }
  } finally {
    agent.destroy();
    await stopProcess(cluster);
    rmSync(root, { recursive: true, force: true });
  }
  console.log(`\n${valueBytes}-byte values, keyspace 1000, through replica 1's HTTP port\n`);
  console.log('| route | phase | requests/s | p50 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) {
    console.log(`| ${row.route} | ${row.phase} | ${row.requestsPerSecond} | ${row.p50Ms.toFixed(2)} | ${row.p99Ms.toFixed(2)} | ${row.maxMs.toFixed(2)} |`);
  }
  console.log(`\nreplica 1 ObserverEngine (group kv), all Delos phases:\n  ${observer.join('\n  ')}`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
