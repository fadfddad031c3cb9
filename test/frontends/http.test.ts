import * as http from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import type { HttpLimits } from '../../src/frontends/http/limits.js';
import { type HttpServer, startHttpServer } from '../../src/frontends/http/server.js';
import { MetricsRegistry } from '../../src/metrics/registry.js';
import { MemoryRouter } from '../helpers/memory-router.js';
import { parsePrometheusText, sampleValue } from '../metrics/prometheus-parser.js';

const servers: HttpServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start(limits: Partial<HttpLimits> = {}, statusProvider?: () => Record<string, unknown>) {
  const router = new MemoryRouter();
  const metrics = new MetricsRegistry();
  const server = await startHttpServer({ port: 0, router, metrics, limits, statusProvider });
  servers.push(server);
  const base = `http://127.0.0.1:${server.port}`;
  return { router, metrics, server, base };
}

async function errorOf(response: Response): Promise<{ code: string; message: string; version?: number }> {
  expect(response.headers.get('content-type')).toBe('application/json');
  const body = (await response.json()) as { error: { code: string; message: string; version?: number } };
  return body.error;
}

const allBytes = new Uint8Array(256).map((_, index) => index);

describe('HTTP key routes', () => {
  test('binary-safe PUT and GET with versions in X-Version and ETag', async () => {
    const { base, router } = await start();
    const url = `${base}/v1/kv/bin%00%FF%2Fkey`;
    const put = await fetch(url, { method: 'PUT', body: allBytes });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ applied: true, version: 1 });
    expect(put.headers.get('x-version')).toBe('1');
    expect(put.headers.get('etag')).toBe('"1"');
    expect(router.peek(new Uint8Array([0x62, 0x69, 0x6e, 0, 0xff, 0x2f, 0x6b, 0x65, 0x79])).version).toBe(1);

    const get = await fetch(url);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('application/octet-stream');
    expect(get.headers.get('x-version')).toBe('1');
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(allBytes);

    const local = await fetch(`${url}?consistency=local`);
    expect(local.status).toBe(200);
    const bogus = await fetch(`${url}?consistency=eventual`);
    expect(bogus.status).toBe(400);
    expect((await errorOf(bogus)).code).toBe('INVALID_ARGUMENT');

    const empty = await fetch(`${base}/v1/kv/empty`, { method: 'PUT', body: '' });
    expect(empty.status).toBe(200);
    const emptyGet = await fetch(`${base}/v1/kv/empty`);
    expect(emptyGet.status).toBe(200);
    expect((await emptyGet.arrayBuffer()).byteLength).toBe(0);
  });

  test('missing keys, bad percent-encoding and unknown routes', async () => {
    const { base } = await start();
    const missing = await fetch(`${base}/v1/kv/nothing`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get('x-version')).toBe('0');
    expect((await errorOf(missing)).code).toBe('NOT_FOUND');
    const malformed = await fetch(`${base}/v1/kv/a%zz`);
    expect(malformed.status).toBe(400);
    const route = await fetch(`${base}/v2/whatever`);
    expect(route.status).toBe(404);
    expect((await errorOf(route)).message).toContain('no route');
  });

  test('If-Match / If-None-Match preconditions', async () => {
    const { base } = await start();
    const url = `${base}/v1/kv/account`;
    const put = (body: string, headers: Record<string, string>) => fetch(url, { method: 'PUT', body, headers });

    expect((await put('create', { 'If-None-Match': '*' })).status).toBe(200);
    const again = await put('create again', { 'If-None-Match': '*' });
    expect(again.status).toBe(412);
    expect((await errorOf(again)).code).toBe('PRECONDITION_FAILED');

    const cas = await put('v2', { 'If-Match': '"1"' });
    expect(cas.status).toBe(200);
    expect(cas.headers.get('x-version')).toBe('2');
    const stale = await put('lost update', { 'If-Match': '1' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('x-version')).toBe('2');
    expect((await errorOf(stale)).version).toBe(2);
    expect(await (await fetch(url)).text()).toBe('v2');

    expect((await put('x', { 'If-Match': 'abc' })).status).toBe(400);
    expect((await put('x', { 'If-Match': '2', 'If-None-Match': '*' })).status).toBe(400);
    const absent = await fetch(`${base}/v1/kv/absent`, { method: 'PUT', body: 'x', headers: { 'If-Match': '*' } });
    expect(absent.status).toBe(412);
  });

  test('DELETE with and without a version', async () => {
    const { base } = await start();
    const url = `${base}/v1/kv/doomed`;
    await fetch(url, { method: 'PUT', body: 'x' });
    const stale = await fetch(url, { method: 'DELETE', headers: { 'If-Match': '7' } });
    expect(stale.status).toBe(412);
    const deleted = await fetch(url, { method: 'DELETE', headers: { 'If-Match': '1' } });
    expect(deleted.status).toBe(200);
    expect(await deleted.json()).toEqual({ applied: true, version: 2 });
    const gone = await fetch(url, { method: 'DELETE' });
    expect(gone.status).toBe(404);
    const get = await fetch(url);
    expect(get.status).toBe(404);
    expect(get.headers.get('x-version')).toBe('2');
  });

  test('POST incr and append', async () => {
    const { base } = await start();
    const incr = await fetch(`${base}/v1/kv/counter?op=incr&delta=-5`, { method: 'POST' });
    expect(incr.status).toBe(200);
    expect(await incr.text()).toBe('-5');
    expect(await (await fetch(`${base}/v1/kv/counter?op=incr`, { method: 'POST' })).text()).toBe('-4');
    await fetch(`${base}/v1/kv/text`, { method: 'PUT', body: 'abc' });
    const wrongType = await fetch(`${base}/v1/kv/text?op=incr`, { method: 'POST' });
    expect(wrongType.status).toBe(400);
    expect((await errorOf(wrongType)).code).toBe('WRONG_TYPE');
    const append = await fetch(`${base}/v1/kv/text?op=append`, { method: 'POST', body: 'def' });
    expect(await append.text()).toBe('abcdef');
    expect(append.headers.get('x-version')).toBe('2');
    expect((await fetch(`${base}/v1/kv/text?op=frobnicate`, { method: 'POST' })).status).toBe(400);
  });

  test('router errors map to their status codes', async () => {
    const { base, router } = await start();
    for (const [code, status] of [
      ['NO_QUORUM', 503],
      ['CONTENTION', 409],
      ['TIMEOUT', 504],
      ['OVERLOADED', 503],
    ] as const) {
      router.injectFailures(code);
      const response = await fetch(`${base}/v1/kv/k`, { method: 'PUT', body: 'v' });
      expect(response.status).toBe(status);
      expect((await errorOf(response)).code).toBe(code);
    }
  });

  test('a write retried with the same X-Client-Id and X-Request-Sequence applies once', async () => {
    const { base, router } = await start();
    const headers = { 'X-Client-Id': 'curl-1', 'X-Request-Sequence': '42' };
    router.injectFailures('TIMEOUT', 1, { applied: true });
    const first = await fetch(`${base}/v1/kv/once?op=append`, { method: 'POST', body: 'x', headers });
    expect(first.status).toBe(504);
    const retry = await fetch(`${base}/v1/kv/once?op=append`, { method: 'POST', body: 'x', headers });
    expect(retry.status).toBe(200);
    expect(await retry.text()).toBe('x');
    expect(router.peek('once').version).toBe(1);
    const badHeaders = await fetch(`${base}/v1/kv/once`, { method: 'PUT', body: 'x', headers: { 'X-Client-Id': 'c' } });
    expect(badHeaders.status).toBe(400);
  });
});

/** Sends a PUT with a chunked body, one chunk every few ms, and returns the status the server answers with. */
function streamingPut(port: number, path: string, chunk: Buffer, chunks: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, method: 'PUT' }, (response) => {
      let body = '';
      response.on('data', (data) => {
        body += data;
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    let sent = 0;
    const next = () => {
      if (request.destroyed || sent === chunks) {
        if (!request.destroyed) request.end();
        return;
      }
      sent += 1;
      request.write(chunk, () => setTimeout(next, 2));
    };
    next();
  });
}

describe('aborted exchanges', () => {
  test('a client that goes away before its reply does not disturb the server', async () => {
    const inner = new MemoryRouter();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let calls = 0;
    const router = {
      execute: async (...args: Parameters<MemoryRouter['execute']>) => {
        calls += 1;
        await gate;
        return inner.execute(...args);
      },
      info: () => inner.info(),
    };
    const server = await startHttpServer({ port: 0, router, metrics: new MetricsRegistry() });
    servers.push(server);
    const base = `http://127.0.0.1:${server.port}`;
    const controller = new AbortController();
    const abandoned = fetch(`${base}/v1/kv/k`, { method: 'PUT', body: 'v', signal: controller.signal });
    while (calls === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    controller.abort();
    await expect(abandoned).rejects.toThrow();
    // Let uWS notice the closed connection before the reply is ready.
    await new Promise((resolve) => setTimeout(resolve, 50));
    release();
    while (inner.peek('k').version === 0) await new Promise((resolve) => setTimeout(resolve, 2));
    // The write went through (the router had it); the reply had nowhere to go; the server lives on.
    expect(inner.peek('k').version).toBe(1);
    expect((await fetch(`${base}/v1/kv/k`)).status).toBe(200);
  });
});

describe('HTTP size limits', () => {
  test('413 for a declared oversized body, a streamed oversized body, and a long key; the server keeps serving', async () => {
    const { base, server, router } = await start({ valueBytesMax: 1024, keyBytesMax: 16 });
    const declared = await fetch(`${base}/v1/kv/big`, { method: 'PUT', body: new Uint8Array(4096) });
    expect(declared.status).toBe(413);
    expect((await errorOf(declared)).code).toBe('VALUE_TOO_LARGE');

    // No Content-Length: the limit must trip while streaming, long before the 1 MiB would be sent.
    const streamed = await streamingPut(server.port, '/v1/kv/big', Buffer.alloc(300, 1), 3500);
    expect(streamed.status).toBe(413);
    expect(JSON.parse(streamed.body).error.code).toBe('VALUE_TOO_LARGE');
    expect(router.peek('big').version).toBe(0);

    const longKey = await fetch(`${base}/v1/kv/${'k'.repeat(17)}`);
    expect(longKey.status).toBe(413);
    expect((await errorOf(longKey)).code).toBe('KEY_TOO_LARGE');

    const fits = await streamingPut(server.port, '/v1/kv/fits', Buffer.alloc(256, 2), 4);
    expect(fits.status).toBe(200);
    expect(Buffer.from(router.peek('fits').value!)).toEqual(Buffer.alloc(1024, 2));
  });
});

describe('POST /v1/kv/_batch', () => {
  test('sets then gets, utf8 and base64, per-item errors', async () => {
    const { base, router } = await start({ valueBytesMax: 64 });
    const response = await fetch(`${base}/v1/kv/_batch`, {
      method: 'POST',
      body: JSON.stringify({
        sets: [
          { key: 'a', value: 'alpha' },
          { key: 'b', value: 'beta', ifVersion: 5 },
        ],
        gets: ['a', 'b', 'c'],
      }),
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      sets: [
        { key: 'a', applied: true, version: 1 },
        { key: 'b', applied: false, version: 0 },
      ],
      gets: [
        { key: 'a', found: true, version: 1, value: 'alpha' },
        { key: 'b', found: false, version: 0 },
        { key: 'c', found: false, version: 0 },
      ],
    });

    const binaryKey = Buffer.from([0xff, 0x00]).toString('base64');
    const binary = await fetch(`${base}/v1/kv/_batch`, {
      method: 'POST',
      body: JSON.stringify({ encoding: 'base64', sets: [{ key: binaryKey, value: Buffer.from(allBytes.subarray(0, 64)).toString('base64') }], gets: [binaryKey] }),
    });
    const binaryBody = (await binary.json()) as { gets: { value: string }[] };
    expect(Buffer.from(binaryBody.gets[0].value, 'base64')).toEqual(Buffer.from(allBytes.subarray(0, 64)));
    expect(router.peek(Buffer.from([0xff, 0x00])).version).toBe(1);

    await fetch(`${base}/v1/kv/raw`, { method: 'PUT', body: new Uint8Array([0xc3, 0x28]) });
    router.injectFailures('NO_QUORUM');
    const mixed = await fetch(`${base}/v1/kv/_batch`, { method: 'POST', body: JSON.stringify({ sets: [{ key: 'x', value: '1' }], gets: ['raw'] }) });
    // Not valid UTF-8: the value comes back in base64, marked as such.
    expect(await mixed.json()).toEqual({
      sets: [{ key: 'x', error: { code: 'NO_QUORUM', message: 'injected NO_QUORUM' } }],
      gets: [{ key: 'raw', found: true, version: 1, value: 'wyg=', valueEncoding: 'base64' }],
    });
  });

  test('malformed JSON, wrong shapes, too many items and oversized bodies', async () => {
    const { base } = await start({ batchItemsMax: 3, batchBodyBytesMax: 512 });
    const post = (body: string) => fetch(`${base}/v1/kv/_batch`, { method: 'POST', body });
    const cases: [string, number, string][] = [
      ['{"sets": [', 400, 'INVALID_ARGUMENT'],
      ['[1, 2]', 400, 'INVALID_ARGUMENT'],
      ['{"gets": "a"}', 400, 'INVALID_ARGUMENT'],
      ['{"gets": [1]}', 400, 'INVALID_ARGUMENT'],
      ['{"sets": [{"key": "a"}]}', 400, 'INVALID_ARGUMENT'],
      ['{"encoding": "base64", "gets": ["!!"]}', 400, 'INVALID_ARGUMENT'],
      ['{"gets": ["a", "b", "c", "d"]}', 413, 'REQUEST_TOO_LARGE'],
      [JSON.stringify({ gets: ['x'.repeat(600)] }), 413, 'REQUEST_TOO_LARGE'],
    ];
    for (const [body, status, code] of cases) {
      const response = await post(body);
      expect(response.status, body).toBe(status);
      expect((await errorOf(response)).code, body).toBe(code);
    }
    expect((await post('{"gets": ["ok"]}')).status).toBe(200);
  });
});

describe('health, status and metrics', () => {
  test('healthz and status', async () => {
    const { base } = await start({}, () => ({ peers: [{ replicaId: 2, state: 'connected' }] }));
    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    const status = (await (await fetch(`${base}/v1/status`)).json()) as {
      router: { replicaCount: number };
      frontends: { ws: unknown; http: unknown };
      peers: unknown;
    };
    expect(status.router.replicaCount).toBe(1);
    expect(status.frontends.ws).toEqual({ connections: 0, inFlight: 0 });
    expect(status.frontends.http).toEqual({ inFlight: 1 }); // the status request itself
    expect(status.peers).toEqual([{ replicaId: 2, state: 'connected' }]);
  });

  test('healthz reports an unhealthy replica with 503, and a failing provider with 500', async () => {
    let health: () => { healthy: boolean; reason?: string } = () => ({ healthy: false, reason: 'no quorum' });
    const server = await startHttpServer({
      port: 0,
      router: new MemoryRouter(),
      metrics: new MetricsRegistry(),
      healthProvider: () => health(),
    });
    servers.push(server);
    const url = `http://127.0.0.1:${server.port}/healthz`;
    const unhealthy = await fetch(url);
    expect(unhealthy.status).toBe(503);
    expect(await unhealthy.json()).toEqual({ status: 'unhealthy', reason: 'no quorum' });
    health = () => {
      throw new Error('provider broke');
    };
    const broken = await fetch(url);
    expect(broken.status).toBe(500);
    expect((await errorOf(broken)).code).toBe('INTERNAL');
    health = () => ({ healthy: true });
    expect((await fetch(url)).status).toBe(200);
  });

  test('/metrics is valid Prometheus text that counts the requests made', async () => {
    const { base, router } = await start();
    for (let i = 0; i < 3; i++) await fetch(`${base}/v1/kv/m`, { method: 'PUT', body: String(i) });
    for (let i = 0; i < 5; i++) await fetch(`${base}/v1/kv/m`);
    await fetch(`${base}/v1/kv/absent`);
    router.injectFailures('NO_QUORUM');
    await fetch(`${base}/v1/kv/m`);

    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const families = parsePrometheusText(await response.text());
    const requests = (operation: string, outcome: string) =>
      sampleValue(families, 'paxosstore_requests_total', 'paxosstore_requests_total', { frontend: 'http', operation, outcome });
    expect(families.get('paxosstore_requests_total')?.type).toBe('counter');
    expect(requests('set', 'ok')).toBe(3);
    expect(requests('get', 'ok')).toBe(5);
    expect(requests('get', 'NOT_FOUND')).toBe(1);
    expect(requests('get', 'NO_QUORUM')).toBe(1);
    expect(families.get('paxosstore_request_duration_seconds')?.type).toBe('summary');
    const count = sampleValue(families, 'paxosstore_request_duration_seconds', 'paxosstore_request_duration_seconds_count', {
      frontend: 'http',
      operation: 'get',
    });
    expect(count).toBe(7);
    const p99 = sampleValue(families, 'paxosstore_request_duration_seconds', 'paxosstore_request_duration_seconds', {
      frontend: 'http',
      operation: 'get',
      quantile: '0.99',
    });
    expect(p99).toBeGreaterThan(0);
    expect(p99).toBeLessThan(1);
    expect(sampleValue(families, 'paxosstore_ws_connections', 'paxosstore_ws_connections', {})).toBe(0);
    expect(sampleValue(families, 'paxosstore_http_in_flight_requests', 'paxosstore_http_in_flight_requests', {})).toBe(1);
  });

  test('a second server on the same port fails (exclusive listen) and close frees the port', async () => {
    const { server } = await start();
    await expect(startHttpServer({ port: server.port, router: new MemoryRouter(), metrics: new MetricsRegistry() })).rejects.toMatchObject({
      code: 'IO_ERROR',
    });
    await server.close();
    const again = await startHttpServer({ port: server.port, router: new MemoryRouter(), metrics: new MetricsRegistry() });
    servers.push(again);
    expect(again.port).toBe(server.port);
  });
});
