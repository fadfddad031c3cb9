/**
 * The channel between the main thread and one shard worker: a request ring (main → worker) and
 * a reply ring (worker → main), each a single-producer/single-consumer ring (./ring.ts), carrying
 * the typed frames of ./ring-frame.ts.
 *
 *   main thread                                          shard worker k
 *   ShardClientChannel ──request ring (requests, ping, shutdown)──► ShardWorkerChannel
 *                      ◄──reply ring (replies, failures, pong, closed)──
 *
 * Create the two SharedArrayBuffers on the main thread with `createChannelBuffers`, pass them to
 * the worker in `workerData`, and build one end on each side. A frame that does not fit in the
 * ring right now waits, in order, in a local overflow queue that a pump drains as the other side
 * frees space; the client bounds that queue by bounding requests in flight (`inFlightMax`,
 * beyond which `execute` fails fast with OVERLOADED), and the worker sends at most one answer per
 * request it received, so its queue is bounded by the same number.
 *
 * Both ends hold their thread alive while open (a sleeping ring consumer keeps a referenced
 * timer); close them (`shutdown()` on the client, which the worker answers) to let threads exit.
 */

import type { KeyOperation, RequestId } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';
import { createRingBuffer, RingConsumer, RingProducer } from './ring.js';
import { type RequestFrame, type RingFrame, RingFrameCodec, type RingResult } from './ring-frame.js';

export const CHANNEL_RING_BYTES_DEFAULT = 4 * 1024 * 1024;
export const CHANNEL_IN_FLIGHT_MAX_DEFAULT = 65_536;
const FRAME_ID_LIMIT = 2 ** 31;
/**
 * Bytes of frames handled per drain before the consumer yields a macrotask: about a thousand
 * small requests, enough to amortise wake-ups, small enough that a worker's peer sockets and
 * timers are not starved while a full ring is being drained (no sleep happens in between).
 */
const CHANNEL_DRAIN_BYTES_MAX = 64 * 1024;

export interface ChannelBuffers {
  readonly requestRing: SharedArrayBuffer;
  readonly replyRing: SharedArrayBuffer;
}

export function createChannelBuffers(options: { requestRingBytes?: number; replyRingBytes?: number } = {}): ChannelBuffers {
  return {
    requestRing: createRingBuffer(options.requestRingBytes ?? CHANNEL_RING_BYTES_DEFAULT),
    replyRing: createRingBuffer(options.replyRingBytes ?? CHANNEL_RING_BYTES_DEFAULT),
  };
}

/** What both ends share: encode-and-send with an ordered overflow queue, and decode-and-dispatch. */
abstract class ChannelEnd {
  private readonly codec = new RingFrameCodec();
  private readonly producer: RingProducer;
  private readonly consumer: RingConsumer;
  /** Encoded frames (private copies) waiting for ring space, oldest first. */
  private overflow: Uint8Array[] = [];
  private overflowHead = 0;
  private pump: Promise<void> | undefined;
  protected closed = false;

  constructor(inbound: SharedArrayBuffer, outbound: SharedArrayBuffer) {
    this.producer = new RingProducer(outbound, { publish: 'microtask' });
    this.consumer = new RingConsumer(inbound, {
      onMessage: (bytes) => this.onFrame(this.codec.decode(bytes)),
      drainBytesMax: CHANNEL_DRAIN_BYTES_MAX,
    });
  }

  /** Subclasses call this last in their constructor: the first drain may dispatch frames at once. */
  protected startReceiving(): void {
    this.consumer.start();
  }

  protected abstract onFrame(frame: RingFrame): void;

  /** Frames waiting in the local overflow queue because the outbound ring was full. */
  get overflowFrames(): number {
    return this.overflow.length - this.overflowHead;
  }

  protected send(frame: RingFrame): void {
    if (this.closed) throw new PaxosStoreError('CLOSED', 'shard channel is closed');
    const bytes = this.codec.encode(frame);
    this.producer.checkWritable(bytes.length);
    if (this.overflowFrames === 0 && this.producer.tryWrite(bytes)) return;
    // A copy: `bytes` lives in the codec's scratch buffer, which the next encode reuses.
    this.overflow.push(Uint8Array.from(bytes));
    this.pump ??= this.drainOverflow();
  }

  /** Resolves when every frame sent so far is in the ring (the overflow queue is empty). */
  protected async flushed(): Promise<void> {
    while (this.pump !== undefined) await this.pump;
  }

  private async drainOverflow(): Promise<void> {
    // Start asynchronously, so that `send` has recorded this pump before the loop can end and
    // clear it: the other thread frees space concurrently, so the loop may never need to wait.
    await undefined;
    while (this.overflowFrames > 0 && !this.closed) {
      const next = this.overflow[this.overflowHead];
      if (!this.producer.tryWrite(next)) {
        await this.producer.waitForSpace(next.length);
        continue;
      }
      this.overflowHead++;
      if (this.overflowHead === this.overflow.length) {
        this.overflow = [];
        this.overflowHead = 0;
      }
    }
    this.pump = undefined;
  }

  protected async closeEnds(): Promise<void> {
    this.closed = true;
    this.producer.close();
    await this.consumer.close();
  }
}

/** The frame type that answers each kind of call. */
type Answer = 'reply' | 'pong' | 'stats';
const CALL_NAMES: Readonly<Record<Answer, string>> = { reply: 'a request', pong: 'a ping', stats: 'stats' };

/** A call awaiting its answer: one object per call, no closures (requests are the hot path). */
class PendingCall {
  constructor(
    private readonly answer: Answer,
    private readonly resolve: (value: never) => void,
    readonly reject: (error: PaxosStoreError) => void,
  ) {}

  settle(frame: RingFrame): void {
    if (frame.type === this.answer) {
      const value = frame.type === 'reply' ? frame.result : frame.type === 'stats' ? frame.counters : undefined;
      (this.resolve as (value: unknown) => void)(value);
    } else if (frame.type === 'failure' && this.answer === 'reply') {
      this.reject(frame.error);
    } else {
      this.reject(new PaxosStoreError('PROTOCOL_ERROR', `a ${frame.type} frame answered ${CALL_NAMES[this.answer]}`));
    }
  }
}

export interface ShardClientOptions {
  /** Requests (and pings/stats) awaiting an answer; beyond it `execute` rejects with OVERLOADED. */
  readonly inFlightMax?: number;
}

/** The main-thread end: turns `execute` calls into request frames and matches the replies. */
export class ShardClientChannel extends ChannelEnd {
  private readonly pending = new Map<number, PendingCall>();
  private readonly inFlightMax: number;
  private nextId = 0;
  private shutdownPromise: Promise<void> | undefined;
  private shutdownConfirmed: (() => void) | undefined;

  constructor(buffers: ChannelBuffers, options: ShardClientOptions = {}) {
    super(buffers.replyRing, buffers.requestRing);
    this.inFlightMax = options.inFlightMax ?? CHANNEL_IN_FLIGHT_MAX_DEFAULT;
    if (!Number.isInteger(this.inFlightMax) || this.inFlightMax < 1) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `inFlightMax must be a positive integer, got ${this.inFlightMax}`);
    }
    this.startReceiving();
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /**
   * Runs one operation on the worker; rejects only with a PaxosStoreError. With `logGroup` it runs
   * on that Delos log group's KV applicator instead (the result then carries `logPosition`).
   */
  execute(key: Uint8Array, operation: KeyOperation, requestId: RequestId, logGroup?: string): Promise<RingResult> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.takeFrameId();
    const frame: RingFrame =
      logGroup === undefined ? { type: 'request', id, key, operation, requestId } : { type: 'request', id, key, operation, requestId, logGroup };
    return this.call(id, frame, 'reply');
  }

  /** Round trip through the worker's ring loop (liveness probe, latency measurement). */
  ping(): Promise<void> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.takeFrameId();
    return this.call(id, { type: 'ping', id }, 'pong');
  }

  /** The worker's counters (for INFO / status pages). */
  stats(): Promise<Readonly<Record<string, number>>> {
    const refusal = this.refusal();
    if (refusal !== null) return Promise.reject(refusal);
    const id = this.takeFrameId();
    return this.call(id, { type: 'statsRequest', id }, 'stats');
  }

  /**
   * Graceful stop: tells the worker that no request follows, waits until it has answered every
   * request in flight and confirmed with `closed`, then closes this end. Calls made once the
   * shutdown has begun reject with CLOSED; calling it again returns the same promise.
   */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.closed ? Promise.resolve() : this.runShutdown();
    return this.shutdownPromise;
  }

  private async runShutdown(): Promise<void> {
    const confirmed = new Promise<void>((resolve) => {
      this.shutdownConfirmed = resolve;
    });
    this.send({ type: 'shutdown' });
    await confirmed;
    await this.close();
  }

  /** Immediate stop: pending calls reject with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.closeEnds();
    const error = new PaxosStoreError('CLOSED', 'shard channel closed');
    for (const pending of this.pending.values()) pending.reject(error);
    this.pending.clear();
  }

  protected onFrame(frame: RingFrame): void {
    if (frame.type === 'closed') {
      this.shutdownConfirmed?.();
      return;
    }
    if (frame.type !== 'reply' && frame.type !== 'failure' && frame.type !== 'pong' && frame.type !== 'stats') {
      throw new PaxosStoreError('PROTOCOL_ERROR', `shard worker sent a ${frame.type} frame`);
    }
    const pending = this.pending.get(frame.id);
    assert(pending !== undefined, `answer for unknown frame id ${frame.id}`);
    this.pending.delete(frame.id);
    pending.settle(frame);
  }

  private refusal(): PaxosStoreError | null {
    if (this.closed || this.shutdownPromise !== undefined) return new PaxosStoreError('CLOSED', 'shard channel is closed');
    if (this.pending.size >= this.inFlightMax) {
      return new PaxosStoreError('OVERLOADED', `shard has ${this.pending.size} requests in flight (inFlightMax)`);
    }
    return null;
  }

  private takeFrameId(): number {
    const id = this.nextId;
    this.nextId = (this.nextId + 1) % FRAME_ID_LIMIT;
    assert(!this.pending.has(id), `frame id ${id} still in flight after wrapping`);
    return id;
  }

  private call<T>(id: number, frame: RingFrame, answer: Answer): Promise<T> {
    try {
      this.send(frame);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, new PendingCall(answer, resolve as (value: never) => void, reject));
    });
  }
}

/** How a request ended; an error that is not a PaxosStoreError is reported as INTERNAL. */
export type RequestOutcome = { readonly ok: true; readonly value: RingResult } | { readonly ok: false; readonly error: unknown };

export interface ShardWorkerHandlers {
  /**
   * Executes one request and calls `reply` once, now or later (further calls are ignored; a
   * throw from the handler is the request's failure). A callback, not a Promise: the hot path
   * allocates no promise chain per request.
   */
  readonly onRequest: (request: RequestFrame, reply: (outcome: RequestOutcome) => void) => void;
  /** Runs after the last in-flight request was answered, before `closed` is sent (flush, close storage). */
  readonly onShutdown?: () => Promise<void> | void;
  readonly stats?: () => Readonly<Record<string, number>>;
}

/** The worker end: dispatches request frames to the handler and writes the answers back. */
export class ShardWorkerChannel extends ChannelEnd {
  private inFlightCount = 0;
  private drained: (() => void) | undefined;
  private readonly handlers: ShardWorkerHandlers;
  /** Resolves once a shutdown requested by the main thread has completed and this end is closed. */
  readonly done: Promise<void>;
  private finish!: () => void;

  constructor(buffers: ChannelBuffers, handlers: ShardWorkerHandlers) {
    super(buffers.requestRing, buffers.replyRing);
    this.handlers = handlers;
    this.done = new Promise<void>((resolve) => {
      this.finish = resolve;
    });
    this.startReceiving();
  }

  get inFlight(): number {
    return this.inFlightCount;
  }

  protected onFrame(frame: RingFrame): void {
    switch (frame.type) {
      case 'request':
        this.startRequest(frame);
        return;
      case 'ping':
        this.send({ type: 'pong', id: frame.id });
        return;
      case 'statsRequest':
        this.send({ type: 'stats', id: frame.id, counters: this.handlers.stats?.() ?? {} });
        return;
      case 'shutdown':
        void this.shutdown();
        return;
      default:
        throw new PaxosStoreError('PROTOCOL_ERROR', `main thread sent a ${frame.type} frame`);
    }
  }

  private startRequest(request: RequestFrame): void {
    this.inFlightCount++;
    const id = request.id;
    let replied = false;
    const reply = (outcome: RequestOutcome): void => {
      if (replied) return;
      replied = true;
      this.answer(outcome.ok ? { type: 'reply', id, result: outcome.value } : { type: 'failure', id, error: asPaxosStoreError(outcome.error) });
    };
    try {
      this.handlers.onRequest(request, reply);
    } catch (error) {
      reply({ ok: false, error });
    }
  }

  private answer(frame: RingFrame): void {
    this.inFlightCount--;
    if (!this.closed) this.send(frame);
    if (this.inFlightCount === 0) this.drained?.();
  }

  private async shutdown(): Promise<void> {
    if (this.inFlightCount > 0) {
      await new Promise<void>((resolve) => {
        this.drained = resolve;
      });
    }
    await this.handlers.onShutdown?.();
    this.send({ type: 'closed' });
    await this.flushed();
    await this.closeEnds();
    this.finish();
  }
}

function asPaxosStoreError(error: unknown): PaxosStoreError {
  if (error instanceof PaxosStoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new PaxosStoreError('INTERNAL', message, undefined, { cause: error });
}
