/**
 * The WebSocket target: the project's own TypeScript client (src/client), one client (one
 * connection) per benchmark client, so the benchmark includes the client's msgpack framing and
 * request-id bookkeeping exactly as applications see them.
 *
 *   read             client.get(key)
 *   update, insert   client.set(key, value)
 *   scan             client.mget(keys)         (the next N keys in key order)
 *   readModifyWrite  client.get(key), then client.set(key, value)
 *
 * Server errors are NOT retried by the client here (retryCodes: []): the benchmark counts them.
 * A dropped connection is still re-established by the client and its requests resent, as in
 * production; the benchmark's own timeout bounds how long that may take.
 */
import { type Client, connect } from '../../client/index.js';
import type { BenchOperation } from '../workload.js';
import { type BenchTarget, type Endpoint, TARGET_SUPPORTS_SCAN, type TargetOptions } from './types.js';

/** The client's own deadline sits above the benchmark's, so the benchmark's timeout is the one that counts. */
const CLIENT_DEADLINE_MARGIN_MS = 1000;

const url = (endpoint: Endpoint): string => `ws://${endpoint.host.includes(':') ? `[${endpoint.host}]` : endpoint.host}:${endpoint.port}`;

export class WebSocketTarget implements BenchTarget {
  readonly name = 'ws' as const;
  readonly supportsScan = TARGET_SUPPORTS_SCAN.ws;

  private constructor(private readonly clients: Client[]) {}

  static async open(options: TargetOptions): Promise<WebSocketTarget> {
    const endpoints = options.endpoints.map(url);
    const settled = await Promise.allSettled(
      Array.from({ length: options.clients }, (_, index) =>
        connect({
          // Client i starts at endpoint i (mod n) and fails over to the others in turn.
          endpoints: [...endpoints.slice(index % endpoints.length), ...endpoints.slice(0, index % endpoints.length)],
          timeoutMs: options.operationTimeoutMs + CLIENT_DEADLINE_MARGIN_MS,
          connectTimeoutMs: options.connectTimeoutMs,
          maxInFlight: options.pipeline,
          retryCodes: [],
        }),
      ),
    );
    const clients = settled.flatMap((outcome) => (outcome.status === 'fulfilled' ? [outcome.value] : []));
    const failure = settled.find((outcome) => outcome.status === 'rejected');
    if (failure) {
      await Promise.all(clients.map((client) => client.close()));
      throw failure.reason;
    }
    return new WebSocketTarget(clients);
  }

  async execute(client: number, operation: BenchOperation): Promise<void> {
    const connection = this.clients[client];
    switch (operation.type) {
      case 'read':
        await connection.get(operation.key);
        return;
      case 'update':
      case 'insert':
        await connection.set(operation.key, operation.value);
        return;
      case 'scan':
        await connection.mget(operation.keys);
        return;
      case 'readModifyWrite':
        await connection.get(operation.key);
        await connection.set(operation.key, operation.value);
        return;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.clients.map((client) => client.close()));
  }
}
