/**
 * The HTTP target: `GET /v1/kv/:key` and `PUT /v1/kv/:key` (raw value bytes as the body) over
 * keep-alive connections. HTTP/1.1 has no usable pipelining, so each client is an http.Agent with
 * `pipeline` sockets: the number of requests in flight per client matches the RESP target.
 *
 *   read             GET   → 200 (value) or 404 (no such key); both are successes
 *   update, insert   PUT   → 2xx
 *   readModifyWrite  GET, then PUT
 *   scan             not supported: the HTTP API has no multi-key read
 */
import http from 'node:http';
import { type ErrorCode, errorCatalogue, PaxosStoreError } from '../../errors.js';
import type { BenchOperation } from '../workload.js';
import { type BenchTarget, type Endpoint, TARGET_SUPPORTS_SCAN, type TargetOptions } from './types.js';

/** Bodies above this are not what a KV benchmark reads; refuse rather than buffer without bound. */
const RESPONSE_BYTES_MAX = 64 * 1024 * 1024;

function errorFromResponse(status: number, body: Buffer): PaxosStoreError {
  // Our server answers `{ error: { code, message } }`; anything else keeps the status and text.
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { error?: { code?: string; message?: string } };
    const code = parsed.error?.code;
    if (code !== undefined && Object.hasOwn(errorCatalogue, code)) return new PaxosStoreError(code as ErrorCode, parsed.error?.message);
  } catch {
    // Not JSON: fall through.
  }
  return new PaxosStoreError('INTERNAL', `HTTP ${status}: ${body.toString('utf8', 0, Math.min(body.length, 200))}`);
}

export class HttpTarget implements BenchTarget {
  readonly name = 'http' as const;
  readonly supportsScan = TARGET_SUPPORTS_SCAN.http;
  private readonly agents: http.Agent[];
  private readonly endpoints: Endpoint[];

  constructor(private readonly options: TargetOptions) {
    this.agents = Array.from({ length: options.clients }, () => new http.Agent({ keepAlive: true, maxSockets: options.pipeline }));
    this.endpoints = Array.from({ length: options.clients }, (_, index) => options.endpoints[index % options.endpoints.length]);
  }

  static async open(options: TargetOptions): Promise<HttpTarget> {
    const target = new HttpTarget(options);
    // One request per client checks reachability before the measurement starts (a 404 is fine).
    try {
      await Promise.all(target.agents.map((_, client) => target.request(client, 'GET', '__paxosstore_bench_probe__')));
    } catch (error) {
      await target.close();
      throw error;
    }
    return target;
  }

  async execute(client: number, operation: BenchOperation): Promise<void> {
    switch (operation.type) {
      case 'read':
        return this.request(client, 'GET', operation.key);
      case 'update':
      case 'insert':
        return this.request(client, 'PUT', operation.key, operation.value);
      case 'readModifyWrite':
        await this.request(client, 'GET', operation.key);
        return this.request(client, 'PUT', operation.key, operation.value);
      case 'scan':
        throw new PaxosStoreError('INVALID_ARGUMENT', 'the http target has no multi-key read, so it cannot scan');
    }
  }

  async close(): Promise<void> {
    for (const agent of this.agents) agent.destroy();
  }

  private request(client: number, method: 'GET' | 'PUT', key: string, body?: Uint8Array): Promise<void> {
    const endpoint = this.endpoints[client];
    return new Promise((resolve, reject) => {
      const request = http.request(
        {
          host: endpoint.host,
          port: endpoint.port,
          method,
          path: `/v1/kv/${encodeURIComponent(key)}`,
          agent: this.agents[client],
          timeout: this.options.connectTimeoutMs,
          headers: body ? { 'content-type': 'application/octet-stream', 'content-length': body.length } : undefined,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let bytes = 0;
          response.on('data', (chunk: Buffer) => {
            bytes += chunk.length;
            if (bytes > RESPONSE_BYTES_MAX) response.destroy(new Error(`response larger than ${RESPONSE_BYTES_MAX} bytes`));
            else chunks.push(chunk);
          });
          response.on('error', (error) => reject(new PaxosStoreError('IO_ERROR', `HTTP ${method}: ${error.message}`)));
          response.on('end', () => {
            const status = response.statusCode ?? 0;
            if ((status >= 200 && status < 300) || (status === 404 && method === 'GET')) resolve();
            else reject(errorFromResponse(status, Buffer.concat(chunks)));
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no response within ${this.options.connectTimeoutMs} ms`)));
      request.on('error', (error) => reject(new PaxosStoreError('IO_ERROR', `HTTP ${method} ${endpoint.host}:${endpoint.port}: ${error.message}`)));
      request.end(body);
    });
  }
}
