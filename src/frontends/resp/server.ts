/**
 * The Redis protocol front end on node:net: one RespConnection per socket, each a small pump
 *
 *   socket 'data' ─► RespParser ─► dispatchCommand ─► reply slots (in arrival order) ─► one write
 *        ▲              │ (buffered commands wait here       │ router calls complete in any order;
 *        └── pause / resume when in flight or unwritten       │ the head-of-line slots are encoded
 *            bytes exceed their limits ◄──────────────────────┘ together when they are ready
 *
 * Backpressure: a connection stops pulling commands out of its parser (and pauses the socket)
 * while `inFlightCommandsMax` commands await the router or more than `writeBufferBytesMax` reply
 * bytes wait in the socket; it resumes on completions and on 'drain'. Commands already read stay
 * buffered in the parser, so nothing is dropped or reordered; the parser's buffer is bounded by
 * one socket read plus one partial command.
 *
 * A protocol error gets its `-ERR Protocol error: …` reply after the replies of every command
 * before it, then the connection closes (like Redis); other connections are unaffected.
 *
 * close(): stop accepting, stop reading, let in-flight commands finish and their replies flush,
 * then end each socket; sockets still open after `closeTimeoutMs` are destroyed. Commands that were
 * read but never dispatched get no reply (they never reached the router).
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { PaxosStoreError } from '../../errors.js';
import type { Router } from '../../router/types.js';
import { dispatchCommand, errorReply } from './commands.js';
import { type Reply, ReplyEncoder } from './encoder.js';
import { RESP_PARSER_LIMITS_DEFAULT, RespParser, type RespParserLimits } from './parser.js';
import { type ServerFacts, Session } from './session.js';

export interface RespServerLimits extends RespParserLimits {
  readonly connectionsMax: number;
  /** Commands of one connection awaiting the router before it stops reading. */
  readonly inFlightCommandsMax: number;
  /** Unwritten reply bytes of one connection above which it stops reading. */
  readonly writeBufferBytesMax: number;
  /** Close a connection idle this long (nothing in flight); 0 = never, like Redis's `timeout 0`. */
  readonly idleTimeoutMs: number;
  /** Graceful close waits this long for in-flight commands before destroying sockets. */
  readonly closeTimeoutMs: number;
}

export const RESP_SERVER_LIMITS_DEFAULT: RespServerLimits = {
  ...RESP_PARSER_LIMITS_DEFAULT,
  connectionsMax: 10_000,
  inFlightCommandsMax: 1024,
  writeBufferBytesMax: 4 * 1024 * 1024,
  idleTimeoutMs: 0,
  closeTimeoutMs: 10_000,
};

export interface RespServerOptions {
  readonly router: Router;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** 0 = an ephemeral port (read it back from the result). */
  readonly port: number;
  readonly limits?: Partial<RespServerLimits>;
  /** Wall clock for request ids; default Date.now. */
  readonly clock?: () => number;
}

export interface RespServer {
  readonly port: number;
  readonly connectionCount: number;
  /** Stops accepting, finishes in-flight commands, closes every connection. */
  close(): Promise<void>;
}

/** TCP keepalive probe delay, as Redis's `tcp-keepalive 300`. */
const keepAliveDelayMs = 300_000;

interface Slot {
  reply: Reply | undefined;
  /** Close the connection once this reply is written (QUIT, protocol error, HTTP request). */
  closeAfter: boolean;
}

interface Counters {
  total_connections_received: number;
  rejected_connections: number;
  total_commands_processed: number;
  protocol_errors: number;
  backpressure_pauses: number;
}

/** One encoder for the whole process: encoding is synchronous and copies out what it returns. */
const encoder = new ReplyEncoder();

class RespConnection {
  private readonly parser: RespParser;
  private readonly slots: Slot[] = [];
  private head = 0;
  private inFlight = 0;
  private paused = false;
  private flushScheduled = false;
  /** open → draining (server closing: no new commands) → ended (FIN sent or socket gone). */
  private state: 'open' | 'draining' | 'ended' = 'open';
  private pumping = false;
  private inputEnded = false;

  constructor(
    private readonly socket: net.Socket,
    readonly session: Session,
    private readonly limits: RespServerLimits,
    private readonly counters: Counters,
  ) {
    this.parser = new RespParser(limits);
    socket.setNoDelay(true);
    socket.setKeepAlive(true, keepAliveDelayMs);
    if (limits.idleTimeoutMs > 0) {
      // `on`, not setTimeout's callback argument: that one is a `once` listener, and the timer is
      // re-armed below while commands are pending.
      socket.on('timeout', () => this.onIdle());
      socket.setTimeout(limits.idleTimeoutMs);
    }
    socket.on('data', (chunk: Buffer) => {
      if (this.state !== 'open') return;
      this.parser.append(chunk);
      this.pump();
    });
    socket.on('drain', () => this.pump());
    // The server is allowHalfOpen: a client that sends its commands and then shuts down its side
    // (`printf 'GET k\r\n' | nc`) still gets every reply before we close ours.
    socket.on('end', () => {
      this.inputEnded = true;
      this.pump();
    });
    // Errors (ECONNRESET, EPIPE) end this connection only; 'close' follows.
    socket.on('error', () => {});
    socket.on('close', () => {
      this.state = 'ended';
    });
  }

  get idle(): boolean {
    return this.inFlight === 0 && this.head === this.slots.length;
  }

  /** Graceful close: no more commands; end once in-flight replies are written. */
  drain(): void {
    if (this.state !== 'open') return;
    this.state = 'draining';
    this.pump();
  }

  destroy(): void {
    this.state = 'ended';
    this.socket.destroy();
  }

  /** Dispatches buffered commands while limits allow, writes ready replies, adjusts reading. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.state === 'open' && this.mayDispatch()) {
        let command: Buffer[] | undefined;
        try {
          command = this.parser.next();
        } catch (error) {
          this.counters.protocol_errors++;
          this.enqueue(errorReply(error), true);
          break;
        }
        if (command === undefined) {
          // Nothing more will arrive after the client's FIN: finish what is in flight, then end.
          if (this.inputEnded) this.state = 'draining';
          break;
        }
        this.dispatch(command);
      }
      this.flush();
      this.updateReading();
    } finally {
      this.pumping = false;
    }
  }

  private mayDispatch(): boolean {
    return this.inFlight < this.limits.inFlightCommandsMax && this.socket.writableLength <= this.limits.writeBufferBytesMax;
  }

  private dispatch(command: Buffer[]): void {
    this.counters.total_commands_processed++;
    const result = dispatchCommand(this.session, command);
    const closeAfter = this.session.closeRequested;
    if (!(result instanceof Promise)) {
      this.enqueue(result, closeAfter);
      return;
    }
    const slot = this.enqueue(undefined, closeAfter);
    this.inFlight++;
    result.then((value) => {
      slot.reply = value;
      this.inFlight--;
      this.scheduleFlush();
    });
  }

  private enqueue(value: Reply | undefined, closeAfter: boolean): Slot {
    const slot: Slot = { reply: value, closeAfter };
    this.slots.push(slot);
    // Nothing after a closing reply is ever dispatched: the connection ends there.
    if (closeAfter && this.state === 'open') this.state = 'draining';
    return slot;
  }

  /** Coalesces completions of one turn of the event loop into one write. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.pump();
    });
  }

  /** Writes the ready replies at the head of the queue, in order, as one write. */
  private flush(): void {
    if (this.state === 'ended') return;
    let closing = false;
    while (this.head < this.slots.length) {
      const slot = this.slots[this.head];
      if (slot.reply === undefined) break;
      encoder.write(slot.reply);
      this.head++;
      if (slot.closeAfter) {
        closing = true;
        break;
      }
    }
    if (this.head > 1024 && this.head * 2 > this.slots.length) {
      this.slots.splice(0, this.head);
      this.head = 0;
    }
    const chunks = encoder.finish();
    if (chunks.length === 1) {
      this.socket.write(chunks[0]);
    } else if (chunks.length > 1) {
      this.socket.cork();
      for (const chunk of chunks) this.socket.write(chunk);
      this.socket.uncork();
    }
    if (closing || (this.state === 'draining' && this.idle)) this.end();
  }

  private end(): void {
    this.state = 'ended';
    this.socket.end(() => this.socket.destroy());
  }

  private updateReading(): void {
    const shouldRead = this.state === 'open' && this.mayDispatch();
    if (shouldRead && this.paused) {
      this.paused = false;
      this.socket.resume();
    } else if (!shouldRead && !this.paused) {
      if (this.state === 'open') this.counters.backpressure_pauses++;
      this.paused = true;
      this.socket.pause();
    }
  }

  /** No socket activity for idleTimeoutMs: close if nothing is pending, else look again later. */
  private onIdle(): void {
    if (this.idle) this.destroy();
    else this.socket.setTimeout(this.limits.idleTimeoutMs);
  }
}

function validateLimits(limits: RespServerLimits): void {
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `RESP limit ${name} must be a non-negative integer, got ${value}`);
    }
  }
  if (limits.inFlightCommandsMax < 1 || limits.connectionsMax < 1 || limits.argumentsMax < 1) {
    throw new PaxosStoreError('INVALID_ARGUMENT', 'connectionsMax, inFlightCommandsMax and argumentsMax must be at least 1');
  }
}

export async function startRespServer(options: RespServerOptions): Promise<RespServer> {
  const limits: RespServerLimits = { ...RESP_SERVER_LIMITS_DEFAULT, ...options.limits };
  validateLimits(limits);
  const clock = options.clock ?? Date.now;
  const startedMs = clock();
  const connections = new Set<RespConnection>();
  const counters: Counters = {
    total_connections_received: 0,
    rejected_connections: 0,
    total_commands_processed: 0,
    protocol_errors: 0,
    backpressure_pauses: 0,
  };
  // A restarted server must never reuse a clientId (the router deduplicates retries by it).
  const clientIdPrefix = `r${options.router.info().replicaId}-${randomBytes(6).toString('hex')}`;
  let nextConnectionId = 1;
  let closing: Promise<void> | null = null;
  let port = options.port;

  const facts: ServerFacts = {
    get port() {
      return port;
    },
    startedMs,
    connectionsMax: limits.connectionsMax,
    bulkBytesMax: limits.bulkBytesMax,
    connectionCount: () => connections.size,
    counters: () => ({ ...counters, connected_clients: connections.size }),
    routerInfo: () => options.router.info(),
    clientLines: () => [...connections].map((connection) => connection.session.describe(clock())),
  };

  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    counters.total_connections_received++;
    if (closing !== null || connections.size >= limits.connectionsMax) {
      counters.rejected_connections++;
      socket.on('error', () => {});
      socket.end('-ERR max number of clients reached\r\n');
      return;
    }
    const id = nextConnectionId++;
    const remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    const session = new Session(id, `${clientIdPrefix}-${id}`, remoteAddress, facts, options.router, clock, clock());
    const connection = new RespConnection(socket, session, limits, counters);
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as net.AddressInfo).port;

  const close = (): Promise<void> => {
    closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const connection of connections) connection.drain();
      const deadline = Date.now() + limits.closeTimeoutMs;
      while (connections.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
      for (const connection of connections) connection.destroy();
      await stopped;
    })();
    return closing;
  };

  return {
    get port() {
      return port;
    },
    get connectionCount() {
      return connections.size;
    },
    close,
  };
}
