/**
 * The RESP target: GET / SET / MGET over our own pipelined RESP2 client (resp-client.ts), one TCP
 * connection per benchmark client. Works against Redis, our RESP front end, or any RESP server.
 *
 *   read             GET key
 *   update, insert   SET key value
 *   scan             MGET key…          (the next N keys in key order)
 *   readModifyWrite  GET key, then SET key value
 *
 * A connection that fails is re-established lazily by the next operation on it, at most once per
 * `reconnectDelayMs`, so a dead server produces a steady trickle of counted errors rather than a
 * busy loop of them.
 */
import { type ErrorCode, errorCatalogue, PaxosStoreError } from '../../errors.js';
import type { BenchOperation } from '../workload.js';
import { RespConnection, type RespReply } from './resp-client.js';
import { type BenchTarget, type Endpoint, TARGET_SUPPORTS_SCAN, type TargetOptions } from './types.js';

const RECONNECT_DELAY_MS = 100;

/** Maps `-CODE message` onto the catalogue when CODE is one of ours, else INTERNAL with the text kept. */
export function errorFromReply(message: string): PaxosStoreError {
  const code = message.split(' ', 1)[0];
  if (Object.hasOwn(errorCatalogue, code)) return new PaxosStoreError(code as ErrorCode, message);
  return new PaxosStoreError('INTERNAL', `server replied -${message}`);
}

function expectBulk(reply: RespReply, command: string): void {
  if (reply.kind === 'bulk') return;
  if (reply.kind === 'error') throw errorFromReply(reply.message);
  throw new PaxosStoreError('PROTOCOL_ERROR', `${command}: expected a bulk string, got ${reply.kind}`);
}

function expectOk(reply: RespReply, command: string): void {
  if (reply.kind === 'simple' && reply.value === 'OK') return;
  if (reply.kind === 'error') throw errorFromReply(reply.message);
  throw new PaxosStoreError('PROTOCOL_ERROR', `${command}: expected +OK, got ${reply.kind}`);
}

function expectArray(reply: RespReply, length: number, command: string): void {
  if (reply.kind === 'array' && reply.items !== null && reply.items.length === length) return;
  if (reply.kind === 'error') throw errorFromReply(reply.message);
  throw new PaxosStoreError('PROTOCOL_ERROR', `${command}: expected an array of ${length}, got ${reply.kind}`);
}

interface Slot {
  readonly endpoint: Endpoint;
  connection: RespConnection | undefined;
  connecting: Promise<RespConnection> | undefined;
  lastFailureMs: number;
}

export class RespTarget implements BenchTarget {
  readonly name = 'resp' as const;
  readonly supportsScan = TARGET_SUPPORTS_SCAN.resp;
  private readonly slots: Slot[];
  private closed = false;

  private constructor(private readonly options: TargetOptions) {
    this.slots = Array.from({ length: options.clients }, (_, index) => ({
      endpoint: options.endpoints[index % options.endpoints.length],
      connection: undefined,
      connecting: undefined,
      lastFailureMs: Number.NEGATIVE_INFINITY,
    }));
  }

  /** Connects every client up front, so connection setup is not part of the measurement. */
  static async open(options: TargetOptions): Promise<RespTarget> {
    const target = new RespTarget(options);
    try {
      await Promise.all(target.slots.map((_, index) => target.connectionOf(index)));
    } catch (error) {
      await target.close();
      throw error;
    }
    return target;
  }

  async execute(client: number, operation: BenchOperation): Promise<void> {
    const connection = await this.connectionOf(client);
    try {
      switch (operation.type) {
        case 'read':
          return expectBulk(await connection.send(['GET', operation.key]), 'GET');
        case 'update':
        case 'insert':
          return expectOk(await connection.send(['SET', operation.key, operation.value]), 'SET');
        case 'scan':
          return expectArray(await connection.send(['MGET', ...operation.keys]), operation.keys.length, 'MGET');
        case 'readModifyWrite':
          expectBulk(await connection.send(['GET', operation.key]), 'GET');
          return expectOk(await connection.send(['SET', operation.key, operation.value]), 'SET');
      }
    } catch (error) {
      this.forgetIfBroken(client, connection, error);
      throw error;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(
      this.slots.map(async (slot) => {
        const connection = slot.connection ?? (await slot.connecting?.catch(() => undefined));
        slot.connection = undefined;
        await connection?.close();
      }),
    );
  }

  private forgetIfBroken(client: number, connection: RespConnection, error: unknown): void {
    const code = (error as { code?: string }).code;
    if (code !== 'CLOSED' && code !== 'IO_ERROR' && code !== 'PROTOCOL_ERROR') return;
    const slot = this.slots[client];
    if (slot.connection !== connection) return;
    slot.connection = undefined;
    slot.lastFailureMs = performance.now();
    void connection.close();
  }

  private connectionOf(client: number): Promise<RespConnection> {
    const slot = this.slots[client];
    if (slot.connection) return Promise.resolve(slot.connection);
    if (this.closed) return Promise.reject(new PaxosStoreError('CLOSED', 'RESP target closed'));
    slot.connecting ??= (async () => {
      const waitMs = slot.lastFailureMs + RECONNECT_DELAY_MS - performance.now();
      if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
      try {
        slot.connection = await RespConnection.connect(slot.endpoint.host, slot.endpoint.port, this.options.connectTimeoutMs);
        return slot.connection;
      } catch (error) {
        slot.lastFailureMs = performance.now();
        throw error;
      } finally {
        slot.connecting = undefined;
      }
    })();
    return slot.connecting;
  }
}
