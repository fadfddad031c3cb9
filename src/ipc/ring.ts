/**
 * A bounded single-producer / single-consumer byte ring over a SharedArrayBuffer: the hot path
 * between the main thread and a shard worker (DESIGN.md §2). One thread owns the producer end,
 * one other thread owns the consumer end; neither ever takes a lock.
 *
 * Layout of the SharedArrayBuffer (all integers are 32-bit, native byte order):
 *
 *   byte 0          64              128               192              256
 *   +---------------+---------------+-----------------+----------------+----------------------+
 *   | head          | tail          | consumerAsleep  | producerWaiting| data: capacityBytes  |
 *   | (producer     | (consumer     | dataDoorbell    | spaceDoorbell  | (a power of two)     |
 *   |  writes)      |  writes)      |                 |                |                      |
 *   +---------------+---------------+-----------------+----------------+----------------------+
 *   Each group sits on its own 64-byte cache line, so the two threads do not false-share.
 *
 * `head` and `tail` are free-running uint32 byte counters (they wrap at 2^32); the byte offset in
 * the data area is `counter & (capacityBytes - 1)`, which stays consistent across the 2^32 wrap
 * because the capacity is a power of two. Used bytes = (head - tail) mod 2^32.
 *
 * A record in the data area, always 4-byte aligned and never split by the end of the area:
 *
 *   +----------------+-------------------------+---------+
 *   | length (int32) | payload (length bytes)  | pad 0-3 |
 *   +----------------+-------------------------+---------+
 *
 * When a record does not fit between the write offset and the end of the area, the producer
 * writes the skip marker (length = -1) there and the record starts again at offset 0; the
 * consumer, seeing the marker, jumps to the start. Payloads are limited to half the capacity
 * minus the length word (`messageBytesMax`), which guarantees that an empty ring can always take
 * any admissible message, whatever the wasted tail.
 *
 * Publication: the producer writes the record with plain stores, then `Atomics.store(head)`;
 * the consumer `Atomics.load(head)`s before reading records. JavaScript atomics are sequentially
 * consistent, so that pair acts as store-release / load-acquire. Symmetrically the consumer
 * frees space with `Atomics.store(tail)` after it is done with the bytes. A producer may defer
 * that store to a microtask (RingProducerOptions.publish), publishing a whole synchronous stretch
 * of records with one store and at most one doorbell.
 *
 * Doorbells: the consumer drains everything available, then announces it is going to sleep
 * (`consumerAsleep = 1`), re-checks `head`, and `Atomics.waitAsync`s on `dataDoorbell`. The
 * producer, after publishing, rings only if it can swap `consumerAsleep` from 1 to 0: one notify
 * per sleep, not one per message. Backpressure runs the same protocol in the other direction
 * (`producerWaiting` / `spaceDoorbell`). Either side may see the other's announcement late; the
 * re-check after announcing closes the lost-wake-up window.
 *
 * A pending `Atomics.waitAsync` does not keep a thread's event loop alive, so whoever sleeps on a
 * doorbell holds a referenced interval timer until it is woken or the ring end is closed.
 */

import { PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';

const HEAD = 0;
const TAIL = 16;
const CONSUMER_ASLEEP = 32;
const DATA_DOORBELL = 33;
const PRODUCER_WAITING = 48;
const SPACE_DOORBELL = 49;
const HEADER_BYTES = 256;
const LENGTH_BYTES = 4;
const SKIP_MARKER = -1;
const CAPACITY_BYTES_MIN = 1024;
const CAPACITY_BYTES_MAX = 1 << 30;
/**
 * `Atomics.waitAsync` (Node ≥ 16) is typed only from lib ES2024 on, newer than this project's
 * lib setting; this is its signature for Int32Array.
 */
type WaitAsync = (
  array: Int32Array,
  index: number,
  value: number,
) => { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
const waitAsync = (Atomics as unknown as { waitAsync: WaitAsync }).waitAsync;

/** Keep-alive period: long, because the timer only exists to hold a reference, never to fire usefully. */
const KEEP_ALIVE_INTERVAL_MS = 1 << 30;

/** Allocates the shared memory of one ring; hand it to both threads (e.g. through `workerData`). */
export function createRingBuffer(capacityBytes: number): SharedArrayBuffer {
  if (
    !Number.isInteger(capacityBytes) ||
    capacityBytes < CAPACITY_BYTES_MIN ||
    capacityBytes > CAPACITY_BYTES_MAX ||
    (capacityBytes & (capacityBytes - 1)) !== 0
  ) {
    throw new PaxosStoreError(
      'INVALID_ARGUMENT',
      `ring capacity must be a power of two in [${CAPACITY_BYTES_MIN}, ${CAPACITY_BYTES_MAX}] bytes, got ${capacityBytes}`,
    );
  }
  return new SharedArrayBuffer(HEADER_BYTES + capacityBytes);
}

/** Largest payload a ring of this capacity accepts (see the layout comment). */
export function ringMessageBytesMax(capacityBytes: number): number {
  return capacityBytes / 2 - LENGTH_BYTES;
}

function recordBytes(payloadBytes: number): number {
  return (LENGTH_BYTES + payloadBytes + 3) & ~3;
}

/** The state both ends share: views over the same SharedArrayBuffer. */
abstract class RingEnd {
  protected readonly header: Int32Array;
  protected readonly lengths: Int32Array;
  protected readonly data: Uint8Array;
  readonly capacityBytes: number;
  readonly messageBytesMax: number;
  protected closed = false;
  private keepAlive: NodeJS.Timeout | undefined;

  constructor(buffer: SharedArrayBuffer) {
    this.capacityBytes = buffer.byteLength - HEADER_BYTES;
    assert(
      this.capacityBytes >= CAPACITY_BYTES_MIN && (this.capacityBytes & (this.capacityBytes - 1)) === 0,
      'ring buffer was not made by createRingBuffer',
    );
    this.header = new Int32Array(buffer, 0, HEADER_BYTES / 4);
    this.lengths = new Int32Array(buffer, HEADER_BYTES, this.capacityBytes / 4);
    this.data = new Uint8Array(buffer, HEADER_BYTES, this.capacityBytes);
    this.messageBytesMax = ringMessageBytesMax(this.capacityBytes);
  }

  /** Bytes currently published and not yet consumed. */
  usedBytes(): number {
    return (Atomics.load(this.header, HEAD) - Atomics.load(this.header, TAIL)) >>> 0;
  }

  /**
   * Sleeps until `header[doorbell]` differs from `seen` (or this end closes), holding a
   * referenced timer meanwhile because the pending wait alone does not keep the thread alive.
   */
  protected async sleepOn(doorbell: number, seen: number): Promise<void> {
    const wait = waitAsync(this.header, doorbell, seen);
    if (!wait.async) return;
    this.keepAlive ??= setInterval(() => {}, KEEP_ALIVE_INTERVAL_MS);
    try {
      await wait.value;
    } finally {
      clearInterval(this.keepAlive);
      this.keepAlive = undefined;
    }
  }

  /** Wakes a sleeper on `doorbell` of this end (used by close so that no await hangs forever). */
  protected ring(doorbell: number): void {
    Atomics.add(this.header, doorbell, 1);
    Atomics.notify(this.header, doorbell);
  }
}

export interface RingProducerOptions {
  /**
   * 'write' (default): each tryWrite publishes its record at once. 'microtask': records written
   * in one synchronous stretch (a scheduler turn, one socket's requests) are published together
   * by a microtask, so the consumer wakes once for all of them instead of once per record it
   * happens to catch asleep; each wake-up is a cross-thread notification, the dearest part of a
   * hand-off on a loaded machine.
   */
  readonly publish?: 'write' | 'microtask';
}

/** The producer end: owned by exactly one thread. */
export class RingProducer extends RingEnd {
  /** End of the records written; the consumer sees them up to the published head only. */
  private head: number;
  private readonly deferPublish: boolean;
  private publishQueued = false;
  private readonly publishTask = (): void => {
    this.publishQueued = false;
    this.publish();
  };

  constructor(buffer: SharedArrayBuffer, options: RingProducerOptions = {}) {
    super(buffer);
    this.head = Atomics.load(this.header, HEAD) >>> 0;
    this.deferPublish = options.publish === 'microtask';
  }

  /**
   * Copies `payload` into the ring and publishes it (now, or in this stretch's microtask, see
   * RingProducerOptions); false when the ring lacks space right now (backpressure: call
   * `waitForSpace` and retry). Throws REQUEST_TOO_LARGE for a payload above `messageBytesMax`,
   * which no amount of waiting would let through.
   */
  tryWrite(payload: Uint8Array): boolean {
    this.checkWritable(payload.length);
    const record = recordBytes(payload.length);
    const offset = this.head & (this.capacityBytes - 1);
    const contiguousBytes = this.capacityBytes - offset;
    const skipBytes = contiguousBytes < record ? contiguousBytes : 0;
    const freeBytes = this.capacityBytes - ((this.head - (Atomics.load(this.header, TAIL) >>> 0)) >>> 0);
    if (skipBytes + record > freeBytes) return false;
    let start = offset;
    if (skipBytes > 0) {
      this.lengths[offset >>> 2] = SKIP_MARKER;
      start = 0;
    }
    this.lengths[start >>> 2] = payload.length;
    this.data.set(payload, start + LENGTH_BYTES);
    this.head = (this.head + skipBytes + record) >>> 0;
    if (!this.deferPublish) this.publish();
    else if (!this.publishQueued) {
      this.publishQueued = true;
      queueMicrotask(this.publishTask);
    }
    return true;
  }

  /** Makes every record written so far visible to the consumer, waking it if it sleeps. */
  publish(): void {
    if ((Atomics.load(this.header, HEAD) >>> 0) === this.head) return;
    Atomics.store(this.header, HEAD, this.head | 0);
    if (Atomics.compareExchange(this.header, CONSUMER_ASLEEP, 1, 0) === 1) this.ring(DATA_DOORBELL);
  }

  /** Resolves once the consumer has freed enough space for a payload of `payloadBytes` (or on close). */
  async waitForSpace(payloadBytes: number): Promise<void> {
    this.checkWritable(payloadBytes);
    const record = recordBytes(payloadBytes);
    // The consumer frees space only by reading what it can see.
    this.publish();
    while (!this.closed) {
      const seen = Atomics.load(this.header, SPACE_DOORBELL);
      Atomics.store(this.header, PRODUCER_WAITING, 1);
      if (this.hasSpace(record)) {
        Atomics.store(this.header, PRODUCER_WAITING, 0);
        return;
      }
      await this.sleepOn(SPACE_DOORBELL, seen);
    }
  }

  /** Stops waiting; a pending `waitForSpace` resolves and later writes throw CLOSED. */
  close(): void {
    if (this.closed) return;
    this.publish();
    this.closed = true;
    this.ring(SPACE_DOORBELL);
  }

  private hasSpace(record: number): boolean {
    const offset = this.head & (this.capacityBytes - 1);
    const contiguousBytes = this.capacityBytes - offset;
    const needed = record + (contiguousBytes < record ? contiguousBytes : 0);
    return this.capacityBytes - ((this.head - (Atomics.load(this.header, TAIL) >>> 0)) >>> 0) >= needed;
  }

  /** Throws CLOSED after close, REQUEST_TOO_LARGE for a payload no ring state could accept. */
  checkWritable(payloadBytes: number): void {
    if (this.closed) throw new PaxosStoreError('CLOSED', 'ring producer is closed');
    if (payloadBytes > this.messageBytesMax) {
      throw new PaxosStoreError(
        'REQUEST_TOO_LARGE',
        `ring message of ${payloadBytes} bytes exceeds the ring limit of ${this.messageBytesMax} bytes (half the ring capacity)`,
        { payloadBytes, messageBytesMax: this.messageBytesMax },
      );
    }
  }
}

export interface RingConsumerOptions {
  /**
   * Called once per message, in order. `payload` is a view into shared memory that the producer
   * reuses as soon as the drain returns: decode or copy it inside the call, never keep it.
   */
  readonly onMessage: (payload: Uint8Array) => void;
  /** Bytes consumed per drain before yielding to the event loop (so timers and I/O still run). */
  readonly drainBytesMax?: number;
}

/**
 * The consumer end: owned by exactly one thread. `start()` runs the drain/sleep loop until
 * `close()`; every wake-up drains all available messages (up to `drainBytesMax`) in one batch.
 */
export class RingConsumer extends RingEnd {
  private tail: number;
  private readonly onMessage: (payload: Uint8Array) => void;
  private readonly drainBytesMax: number;
  private loop: Promise<void> | undefined;

  constructor(buffer: SharedArrayBuffer, options: RingConsumerOptions) {
    super(buffer);
    this.tail = Atomics.load(this.header, TAIL) >>> 0;
    this.onMessage = options.onMessage;
    this.drainBytesMax = options.drainBytesMax ?? this.capacityBytes;
    if (!(this.drainBytesMax > 0)) throw new PaxosStoreError('INVALID_ARGUMENT', 'drainBytesMax must be positive');
  }

  start(): void {
    assert(this.loop === undefined, 'ring consumer started twice');
    this.loop = this.run();
  }

  /** Stops the loop after the current drain; resolves when it has stopped. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.ring(DATA_DOORBELL);
    }
    await this.loop;
  }

  /**
   * Processes every message published so far (bounded by `drainBytesMax`) and frees their space.
   * Returns the number of messages; exposed for callers that poll instead of running `start()`.
   */
  drain(): number {
    const head = Atomics.load(this.header, HEAD) >>> 0;
    let consumedBytes = 0;
    let messages = 0;
    try {
      while (this.tail !== head && consumedBytes < this.drainBytesMax) {
        const offset = this.tail & (this.capacityBytes - 1);
        const length = this.lengths[offset >>> 2];
        if (length === SKIP_MARKER) {
          const skip = this.capacityBytes - offset;
          this.tail = (this.tail + skip) >>> 0;
          consumedBytes += skip;
          continue;
        }
        assert(length >= 0 && length <= this.messageBytesMax, `ring record length ${length} is corrupt`);
        const record = recordBytes(length);
        // Advance before the callback: a throwing handler must not make us replay the message.
        this.tail = (this.tail + record) >>> 0;
        consumedBytes += record;
        messages++;
        this.onMessage(this.data.subarray(offset + LENGTH_BYTES, offset + LENGTH_BYTES + length));
      }
    } finally {
      if (consumedBytes > 0) this.release();
    }
    return messages;
  }

  private release(): void {
    Atomics.store(this.header, TAIL, this.tail | 0);
    if (Atomics.compareExchange(this.header, PRODUCER_WAITING, 1, 0) === 1) this.ring(SPACE_DOORBELL);
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      this.drain();
      if (this.closed) return;
      if ((Atomics.load(this.header, HEAD) >>> 0) !== this.tail) {
        // More arrived during the drain (or the drain hit its byte bound): yield a macrotask so
        // I/O and timers of this thread run, then drain again without sleeping.
        await new Promise<void>((resolve) => setImmediate(resolve));
        continue;
      }
      const seen = Atomics.load(this.header, DATA_DOORBELL);
      Atomics.store(this.header, CONSUMER_ASLEEP, 1);
      if ((Atomics.load(this.header, HEAD) >>> 0) !== this.tail) {
        Atomics.store(this.header, CONSUMER_ASLEEP, 0);
        continue;
      }
      await this.sleepOn(DATA_DOORBELL, seen);
    }
  }
}
