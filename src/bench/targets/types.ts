/**
 * What the load generator drives: a target executes one workload operation on one of its client
 * connections and resolves when the reply is complete, or rejects with a PaxosStoreError. The
 * load generator owns timing; targets own protocols.
 */
import { PaxosStoreError } from '../../errors.js';
import type { BenchOperation } from '../workload.js';

export interface Endpoint {
  readonly host: string;
  readonly port: number;
}

export type TargetName = 'resp' | 'http' | 'ws';

/** Known before connecting, so an impossible run is refused before any setup or preload. */
export const TARGET_SUPPORTS_SCAN: Readonly<Record<TargetName, boolean>> = { resp: true, http: false, ws: true };

export interface TargetOptions {
  readonly endpoints: readonly Endpoint[];
  /** Client connections; client i talks to endpoints[i % endpoints.length]. */
  readonly clients: number;
  /** Requests each client keeps in flight at most (RESP pipelining, HTTP sockets per client). */
  readonly pipeline: number;
  readonly connectTimeoutMs: number;
  /** The benchmark's per-operation timeout; targets whose client has its own deadline set it above this. */
  readonly operationTimeoutMs: number;
}

export interface BenchTarget {
  readonly name: TargetName;
  /** False when the protocol has no multi-key read: workload E (scan) is refused up front. */
  readonly supportsScan: boolean;
  execute(client: number, operation: BenchOperation): Promise<void>;
  close(): Promise<void>;
}

/** Parses `host:port[,host:port…]`; a bare port means 127.0.0.1. */
export function parseEndpoints(text: string): Endpoint[] {
  return text.split(',').map((item) => {
    const trimmed = item.trim();
    const match = /^(?:(\[[^\]]+\]|[^:]+):)?(\d+)$/.exec(trimmed);
    const port = match ? Number(match[2]) : Number.NaN;
    if (!match || !(port > 0 && port < 65536)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `endpoint "${trimmed}" is not HOST:PORT`);
    }
    return { host: (match[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port };
  });
}

