/**
 * Per-connection state the commands see: identity (CLIENT ID / SETNAME / SETINFO), the read mode,
 * and the one door to the router. Kept apart from the socket so commands are testable without one.
 *
 * Ordering. A pipelining client sends `SET k 1; GET k` without waiting, and Redis answers the GET
 * with 1 because it executes a connection's commands one after another. The router runs calls
 * concurrently and they may complete in any order, so `execute` chains each operation behind the
 * previous unfinished operation on the same key from this connection: per key, a connection's
 * operations take effect in the order it sent them. Operations on different keys still run in
 * parallel (that is what makes pipelining fast); a pipeline's writes to different keys are
 * concurrent operations and may take effect in any order, as for any concurrent clients.
 *
 * Request ids: clientId = `<prefix>-<connection id>` where the server's prefix carries the replica
 * id and a random per-process nonce (a restarted server must not reuse a clientId, or the router's
 * retry deduplication could mistake a new request for an old one); sequence increases by one per
 * router call in the order commands arrived; timestampMs is the wall clock when the command arrived.
 */
import type { Consistency, KeyOperation, KeyResult, RequestId } from '../../api/operations.js';
import type { Router, RouterInfo } from '../../router/types.js';
import { keyName } from '../../util/byte-codec.js';

/** What INFO, CLIENT LIST and CONFIG GET report about the server around a session. */
export interface ServerFacts {
  readonly port: number;
  readonly startedMs: number;
  readonly connectionsMax: number;
  readonly bulkBytesMax: number;
  connectionCount(): number;
  counters(): Readonly<Record<string, number>>;
  routerInfo(): RouterInfo;
  /** One CLIENT LIST / CLIENT INFO line per open connection. */
  clientLines(): string[];
}

export class Session {
  name: string | null = null;
  libraryName: string | null = null;
  libraryVersion: string | null = null;
  readMode: Consistency = 'linearizable';
  /** Set by QUIT (and by HTTP requests sent to this port): close once this command's reply is written. */
  closeRequested = false;
  commandsProcessed = 0;
  lastCommand = '';
  private sequence = 0;
  /** key (latin1) → this connection's last unfinished operation on it (its result promise). */
  private readonly keyTails = new Map<string, Promise<KeyResult>>();

  constructor(
    readonly id: number,
    readonly clientId: string,
    readonly remoteAddress: string,
    readonly server: ServerFacts,
    private readonly router: Router,
    private readonly clock: () => number,
    readonly createdMs: number,
  ) {}

  /** Runs one key operation, after this connection's earlier unfinished operations on the same key. */
  execute(key: Uint8Array, operation: KeyOperation): Promise<KeyResult> {
    const requestId: RequestId = { clientId: this.clientId, timestampMs: this.clock(), sequence: ++this.sequence };
    const name = keyName(key);
    const previous = this.keyTails.get(name);
    let result: Promise<KeyResult>;
    if (previous === undefined) {
      result = this.router.execute(key, operation, requestId);
    } else {
      const run = (): Promise<KeyResult> => this.router.execute(key, operation, requestId);
      result = previous.then(run, run);
    }
    this.keyTails.set(name, result);
    // One reaction per operation (this runs per command): forget the key once its last operation settled.
    const forget = (): void => {
      if (this.keyTails.get(name) === result) this.keyTails.delete(name);
    };
    result.then(forget, forget);
    return result;
  }

  /** Keys with an operation still queued or running (a bounded map: at most one entry per in-flight key). */
  get keysInFlight(): number {
    return this.keyTails.size;
  }

  /** Redis's CLIENT LIST line format, with the fields that mean something here. */
  describe(nowMs: number): string {
    const fields = [
      `id=${this.id}`,
      `addr=${this.remoteAddress}`,
      `name=${this.name ?? ''}`,
      `age=${Math.floor((nowMs - this.createdMs) / 1000)}`,
      'db=0',
      `cmd=${this.lastCommand}`,
      `readmode=${this.readMode}`,
      `lib-name=${this.libraryName ?? ''}`,
      `lib-ver=${this.libraryVersion ?? ''}`,
    ];
    return fields.join(' ');
  }
}
