/**
 * The WebSocket front end on `/v1/ws` (protocol in ws-protocol.ts).
 *
 * Per connection:
 * - at most `wsInFlightMax` requests between arrival and reply; one more is answered OVERLOADED
 *   at once (a well-behaved client pipelines below the limit);
 * - while the connection's unsent replies exceed `wsSendHighWaterBytes`, newly arrived requests
 *   are parked (still counted in flight) and started when uWS reports the buffer drained, so a
 *   slow reader stops generating work instead of growing the send buffer;
 * - a reply that would push the unsent bytes past `wsSendBufferBytesMax` (a client that does not
 *   read at all) closes the connection with 1008 rather than dropping the reply silently;
 * - undecodable msgpack, or a frame without a usable id, closes it with 1007 and a reason; a
 *   decodable but invalid request gets an error reply with its id;
 * - messages above `wsFrameBytesMax` are refused by uWS itself, which closes the connection.
 * Nothing on one connection affects another.
 */
import type { KeyOperation, KeyResult, RequestId } from '../../api/operations.js';
import { PaxosStoreError } from '../../errors.js';
import type { Counter, MetricFamily, MetricsRegistry } from '../../metrics/registry.js';
import type { RequestMetrics } from '../../metrics/request-metrics.js';
import type { Router } from '../../router/types.js';
import type { UwsWebSocket, WebSocketBehavior } from '../uws.js';
import { executeMany, type RequestIdSource } from './execute.js';
import type { HttpLimits } from './limits.js';
import {
  type ClientFrame,
  decodeMsgpack,
  encodeFrame,
  parseClientFrame,
  type ServerFrame,
  toWireError,
  type WireItem,
} from './ws-protocol.js';
import { decodeClientFrameFast, encodeServerFrameFast } from './ws-wire.js';

export interface WsContext {
  readonly router: Router;
  readonly limits: HttpLimits;
  readonly metrics: RequestMetrics;
  readonly requestIds: RequestIdSource;
}

/** State of one connection, kept as uWS user data. */
export interface WsConnection {
  /** Set at open; only touched while `closed` is false (a closed uWS socket throws on any use). */
  socket: UwsWebSocket<WsConnection> | undefined;
  inFlight: number;
  closed: boolean;
  /** uWS called a message or drain handler of this connection in the current event-loop turn (see send()). */
  calledBackThisTurn: boolean;
  /** Queued for a flush (in `microtaskFlushes` or `turnFlushes`). */
  flushQueued: boolean;
  /** Requests waiting for the send buffer to drain below the high-water mark. */
  parked: ClientFrame[];
  /** Encoded replies waiting for the end of this event-loop turn, to leave in one corked write. */
  outbox: Uint8Array[];
  outboxBytes: number;
  /** Moving average of this connection's reply sizes, to project what started requests will add. */
  replyBytesAverage: number;
}

/** uWS status of send(): the message was dropped because maxBackpressure would be exceeded. */
const SEND_DROPPED = 2;
const CLOSE_INVALID_PAYLOAD = 1007;
const CLOSE_POLICY_VIOLATION = 1008;
const CLOSE_INTERNAL_ERROR = 1011;

type ProtocolProblem = 'malformed_msgpack' | 'missing_id' | 'invalid_request' | 'send_buffer_full';

export class WsFrontend {
  /** Open sockets, to close them on shutdown. */
  readonly sockets = new Set<UwsWebSocket<WsConnection>>();
  private readonly problems: MetricFamily<Counter>;
  /** Connections with replies to flush in a microtask (see send()). */
  private readonly microtaskFlushes: WsConnection[] = [];
  /** Connections with replies to flush at the end of the turn, when uWS is done dispatching. */
  private readonly turnFlushes: WsConnection[] = [];
  /** Connections marked calledBackThisTurn, unmarked at the end of the turn. */
  private readonly calledBackThisTurn: WsConnection[] = [];
  private readonly flushMicrotaskQueue = (): void => this.flushAll(this.microtaskFlushes);
  private readonly endTurn = (): void => {
    for (const connection of this.calledBackThisTurn.splice(0)) connection.calledBackThisTurn = false;
    this.flushAll(this.turnFlushes);
  };

  constructor(
    private readonly context: WsContext,
    registry: MetricsRegistry,
  ) {
    this.problems = registry.counter({
      name: 'paxosstore_ws_protocol_errors_total',
      help: 'WebSocket protocol problems, by kind (the first three close the connection; invalid_request gets an error reply).',
      labelNames: ['kind'],
    });
  }

  private countProblem(kind: ProtocolProblem): void {
    this.problems.with({ kind }).inc();
  }

  /** Sum of in-flight requests over all connections (for /v1/status and metrics). */
  inFlight(): number {
    let total = 0;
    for (const socket of this.sockets) total += socket.getUserData().inFlight;
    return total;
  }

  behavior(compressionDisabled: number): WebSocketBehavior<WsConnection> {
    const { limits } = this.context;
    return {
      compression: compressionDisabled,
      maxPayloadLength: limits.wsFrameBytesMax,
      maxBackpressure: limits.wsSendBufferBytesMax,
      idleTimeout: limits.wsIdleTimeoutSeconds,
      sendPingsAutomatically: true,
      upgrade: (res, req, context) => {
        // Copy the handshake headers now: `req` is gone once this handler returns.
        res.upgrade<WsConnection>(
          {
            socket: undefined,
            inFlight: 0,
            closed: false,
            calledBackThisTurn: false,
            flushQueued: false,
            parked: [],
            outbox: [],
            outboxBytes: 0,
            replyBytesAverage: 1024,
          },
          req.getHeader('sec-websocket-key'),
          req.getHeader('sec-websocket-protocol'),
          req.getHeader('sec-websocket-extensions'),
          context,
        );
      },
      open: (socket) => {
        socket.getUserData().socket = socket;
        this.sockets.add(socket);
      },
      message: (socket, message) => {
        try {
          this.onMessage(socket, message);
        } catch (error) {
          // A bug, not bad input (that is handled inside): contain it to this connection.
          socket.end(CLOSE_INTERNAL_ERROR, closeReason(error));
        }
      },
      drain: (socket) => {
        this.markCalledBack(socket.getUserData());
        this.onDrain(socket);
      },
      close: (socket) => {
        const connection = socket.getUserData();
        connection.closed = true;
        connection.socket = undefined;
        connection.parked.length = 0;
        this.sockets.delete(socket);
      },
    };
  }

  private onMessage(socket: UwsWebSocket<WsConnection>, message: ArrayBuffer): void {
    // Decoded synchronously: `message` is neutered when this handler returns (both decoders copy
    // the binaries they keep). Most requests take the hand-written path; the rest, and every
    // malformed frame, the generic decoder and parser, which say what is wrong.
    const connection = socket.getUserData();
    this.markCalledBack(connection);
    const bytes = new Uint8Array(message);
    const frame = decodeClientFrameFast(bytes) ?? this.decodeGeneric(socket, bytes);
    if (frame === undefined) return;
    if (connection.inFlight >= this.context.limits.wsInFlightMax) {
      const error = new PaxosStoreError('OVERLOADED', `more than ${this.context.limits.wsInFlightMax} requests in flight`);
      this.context.metrics.record('ws', frame.op, 'OVERLOADED', 0);
      this.send(connection, { id: frame.id, ok: false, error: toWireError(error) });
      return;
    }
    connection.inFlight += 1;
    if (connection.parked.length > 0 || projectedUnsentBytes(socket, connection) > this.context.limits.wsSendHighWaterBytes) {
      connection.parked.push(frame);
    } else {
      this.start(connection, frame);
    }
  }

  private markCalledBack(connection: WsConnection): void {
    if (connection.calledBackThisTurn) return;
    connection.calledBackThisTurn = true;
    this.calledBackThisTurn.push(connection);
    if (this.calledBackThisTurn.length === 1) setImmediate(this.endTurn);
  }

  /** The frame, or undefined after answering a bad one (an error reply, or closing the connection). */
  private decodeGeneric(socket: UwsWebSocket<WsConnection>, bytes: Uint8Array): ClientFrame | undefined {
    let decoded: unknown;
    try {
      decoded = decodeMsgpack(bytes);
    } catch (error) {
      this.countProblem('malformed_msgpack');
      socket.end(CLOSE_INVALID_PAYLOAD, closeReason(error));
      return undefined;
    }
    const parsed = parseClientFrame(decoded);
    if (parsed.ok) return parsed.frame;
    if (parsed.id === null) {
      this.countProblem('missing_id');
      socket.end(CLOSE_INVALID_PAYLOAD, closeReason(parsed.error));
    } else {
      this.countProblem('invalid_request');
      this.send(socket.getUserData(), { id: parsed.id, ok: false, error: toWireError(parsed.error) });
    }
    return undefined;
  }

  private onDrain(socket: UwsWebSocket<WsConnection>): void {
    const connection = socket.getUserData();
    while (
      !connection.closed &&
      connection.parked.length > 0 &&
      projectedUnsentBytes(socket, connection) <= this.context.limits.wsSendHighWaterBytes
    ) {
      this.start(connection, connection.parked.shift()!);
    }
  }

  private start(connection: WsConnection, frame: ClientFrame): void {
    const startedMs = performance.now();
    let pending: Promise<Outcome>;
    try {
      pending = executeFrame(this.context, frame);
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (outcome) => this.complete(connection, frame.op, startedMs, replyOf(frame, outcome)),
      (error: unknown) => this.complete(connection, frame.op, startedMs, { id: frame.id, ok: false, error: toWireError(error) }),
    );
  }

  private complete(connection: WsConnection, op: ClientFrame['op'], startedMs: number, reply: ServerFrame): void {
    connection.inFlight -= 1;
    this.context.metrics.record('ws', op, reply.ok ? 'ok' : reply.error.code, (performance.now() - startedMs) * 1000);
    this.send(connection, reply);
  }

  /**
   * Queues a reply; replies that complete together are written together, one cork (one syscall)
   * per connection, by a single microtask queued behind them: router completions that arrive
   * together (one drain of a reply ring) settle in the same microtask checkpoint, so the flush
   * runs after all of them, and the replies leave at once instead of waiting for the end of the
   * event-loop turn (which, with the RESP front end busy on the same thread, cost the WebSocket
   * path ~1.5 ms of p50 and ~17% of throughput).
   *
   * Except for a connection whose message or drain handler uWS called in this turn: its flush
   * waits for the end of the turn. Microtasks run inside those handlers (between the messages of
   * one read, and before uWS finishes a drain), and a send there that leaves backpressure was
   * seen to stall the connection for good (uWS.js 20.30): mid-read, uWS stopped dispatching the
   * rest of the read; mid-drain, it never reported the next drain, so parked requests never
   * started. ws.test.ts's paused-reader test hangs without either guard.
   */
  private send(connection: WsConnection, reply: ServerFrame): void {
    if (connection.closed) return;
    const bytes = encodeServerFrameFast(reply) ?? encodeFrame(reply);
    connection.outbox.push(bytes);
    connection.outboxBytes += bytes.length;
    connection.replyBytesAverage += (bytes.length - connection.replyBytesAverage) / 8;
    if (connection.flushQueued) return;
    connection.flushQueued = true;
    if (connection.calledBackThisTurn) {
      // endTurn is already scheduled: it was when the connection got marked.
      this.turnFlushes.push(connection);
    } else {
      this.microtaskFlushes.push(connection);
      if (this.microtaskFlushes.length === 1) queueMicrotask(this.flushMicrotaskQueue);
    }
  }

  private flushAll(queue: WsConnection[]): void {
    // A flush may start parked requests; their replies queue for a later flush.
    for (const connection of queue.splice(0)) this.flush(connection);
  }

  private flush(connection: WsConnection): void {
    connection.flushQueued = false;
    const replies = connection.outbox;
    connection.outbox = [];
    connection.outboxBytes = 0;
    const socket = connection.socket;
    if (connection.closed || socket === undefined) return;
    let dropped = false;
    socket.cork(() => {
      for (const bytes of replies) {
        if (socket.send(bytes, true) === SEND_DROPPED) {
          dropped = true;
          break;
        }
      }
    });
    if (dropped) {
      this.countProblem('send_buffer_full');
      socket.end(CLOSE_POLICY_VIOLATION, 'send buffer limit exceeded: the client does not read its replies');
      return;
    }
    // Requests parked because of this outbox may start now if uWS took it all without backpressure
    // (then no drain event would come to start them).
    this.onDrain(socket);
  }

  /** Ends every connection (1001 going away); their in-flight replies are dropped. */
  closeAll(): void {
    for (const socket of [...this.sockets]) socket.end(1001, 'server shutting down');
  }
}

/**
 * Reply bytes not yet on the wire — in uWS's send buffer, in this turn's outbox — plus an estimate
 * for the requests already executing, whose replies are still to come. Without that estimate a
 * drain would start every parked request at once (their replies appear only later).
 */
function projectedUnsentBytes(socket: UwsWebSocket<WsConnection>, connection: WsConnection): number {
  const executing = connection.inFlight - connection.parked.length;
  return socket.getBufferedAmount() + connection.outboxBytes + executing * connection.replyBytesAverage;
}

/** What a request yields: one key's result, a multi-key request's items, or nothing (ping). */
type Outcome = KeyResult | WireItem[] | undefined;

/** Runs one request against the router; a bad request or a router failure rejects (or throws). */
function executeFrame(context: WsContext, frame: ClientFrame): Promise<Outcome> {
  checkFrameLimits(frame, context.limits);
  switch (frame.op) {
    case 'ping':
      return Promise.resolve(undefined);
    case 'mget': {
      const calls = frame.keys.map((key) => ({
        key,
        operation: { kind: 'get', consistency: frame.consistency ?? 'linearizable' } as const,
      }));
      return executeMany(context.router, calls, context.requestIds.next());
    }
    case 'mset': {
      const calls = frame.entries.map(([key, value]) => ({ key, operation: { kind: 'set', value } as const }));
      const requestId = frame.requestId ?? context.requestIds.next(Math.max(1, calls.length));
      return executeMany(context.router, calls, requestId);
    }
    default: {
      const requestId: RequestId = frame.requestId ?? context.requestIds.next();
      return context.router.execute(frame.key, keyOperation(frame), requestId);
    }
  }
}

function replyOf(frame: ClientFrame, outcome: Outcome): ServerFrame {
  if (outcome === undefined) return { id: frame.id, ok: true };
  if (Array.isArray(outcome)) return { id: frame.id, ok: true, results: outcome };
  return { id: frame.id, ok: true, result: outcome as KeyResult };
}

function keyOperation(frame: Extract<ClientFrame, { key: Uint8Array }>): KeyOperation {
  switch (frame.op) {
    case 'get':
      return { kind: 'get', consistency: frame.consistency ?? 'linearizable' };
    case 'set': {
      const { value, ifVersion, onlyIfAbsent, onlyIfPresent } = frame;
      return { kind: 'set', value, ifVersion, onlyIfAbsent, onlyIfPresent };
    }
    case 'delete':
      return frame.ifVersion === undefined ? { kind: 'delete' } : { kind: 'delete', ifVersion: frame.ifVersion };
    case 'incr':
      return { kind: 'incr', delta: frame.delta };
    case 'append':
      return { kind: 'append', value: frame.value };
  }
}

function checkFrameLimits(frame: ClientFrame, limits: HttpLimits): void {
  switch (frame.op) {
    case 'ping':
      return;
    case 'mget':
      checkItemCount(frame.keys.length, frame.op, limits);
      for (const key of frame.keys) checkKey(key, limits);
      return;
    case 'mset':
      checkItemCount(frame.entries.length, frame.op, limits);
      for (const [key] of frame.entries) checkKey(key, limits);
      for (const [, value] of frame.entries) checkValue(value, limits);
      return;
    case 'set':
    case 'append':
      checkKey(frame.key, limits);
      checkValue(frame.value, limits);
      return;
    default:
      checkKey(frame.key, limits);
  }
}

function checkItemCount(count: number, op: string, limits: HttpLimits): void {
  if (count > limits.batchItemsMax) throw new PaxosStoreError('REQUEST_TOO_LARGE', `at most ${limits.batchItemsMax} keys per ${op}`);
}

function checkKey(key: Uint8Array, limits: HttpLimits): void {
  if (key.length === 0) throw new PaxosStoreError('INVALID_ARGUMENT', 'empty key');
  if (key.length > limits.keyBytesMax) {
    throw new PaxosStoreError('KEY_TOO_LARGE', `key is ${key.length} bytes; the limit is ${limits.keyBytesMax}`);
  }
}

function checkValue(value: Uint8Array, limits: HttpLimits): void {
  if (value.length > limits.valueBytesMax) {
    throw new PaxosStoreError('VALUE_TOO_LARGE', `value is ${value.length} bytes; the limit is ${limits.valueBytesMax}`);
  }
}

/** A close reason fits in a control frame (123 bytes). */
function closeReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return Buffer.from(text).subarray(0, 120).toString('utf8').replace(/\uFFFD+$/, '');
}
