import { describe, expect, it } from 'vitest';
import { createRingBuffer, RingConsumer, RingProducer, ringMessageBytesMax } from '../../src/ipc/ring.js';
import { Random } from '../../src/util/random.js';

/** Polls until the expectation holds; generous, because the test machine may be heavily loaded. */
const eventually = <T>(read: () => T) => expect.poll(read, { timeout: 10_000, interval: 5 });

/** A message whose bytes encode its sequence number and length, so a reader can verify it alone. */
function message(random: Random, sequence: number, length: number): Uint8Array {
  const bytes = random.bytes(Math.max(length, 8));
  new DataView(bytes.buffer).setUint32(0, sequence);
  new DataView(bytes.buffer).setUint32(4, bytes.length);
  return bytes;
}

function pair(capacityBytes: number) {
  const buffer = createRingBuffer(capacityBytes);
  const received: Uint8Array[] = [];
  const producer = new RingProducer(buffer);
  const consumer = new RingConsumer(buffer, { onMessage: (payload) => received.push(payload.slice()) });
  return { producer, consumer, received };
}

describe('ring (one thread playing both ends)', () => {
  it('delivers messages in order and byte-exact across many wrap-arounds (seeded random sizes)', () => {
    const random = new Random(42);
    const { producer, consumer, received } = pair(4096);
    const sent: Uint8Array[] = [];
    let sequence = 0;
    let bytesWritten = 0;
    for (let round = 0; round < 3000; round++) {
      const length = random.range(0, producer.messageBytesMax);
      const bytes = message(random, sequence, length);
      if (producer.tryWrite(bytes)) {
        sent.push(bytes);
        sequence++;
        bytesWritten += bytes.length;
      }
      if (random.chance(0.4)) consumer.drain();
    }
    consumer.drain();
    expect(sequence).toBeGreaterThan(1000);
    // Over 100 passes through the 4 KiB data area: every record offset and skip case occurs.
    expect(bytesWritten).toBeGreaterThan(100 * 4096);
    expect(received.length).toBe(sent.length);
    const mismatches = sent.filter((bytes, index) => Buffer.compare(bytes, received[index]) !== 0);
    expect(mismatches.length).toBe(0);
  });

  it('survives the 2^32 wrap of its free-running counters', () => {
    const buffer = createRingBuffer(1024);
    // Start both counters just below 2^32, as if 4 GiB had already flowed through.
    const header = new Int32Array(buffer, 0, 64);
    header[0] = -100;
    header[16] = -100;
    const received: number[] = [];
    const producer = new RingProducer(buffer);
    const consumer = new RingConsumer(buffer, { onMessage: (payload) => received.push(payload[0]) });
    for (let index = 0; index < 50; index++) {
      expect(producer.tryWrite(new Uint8Array(30).fill(index))).toBe(true);
      consumer.drain();
    }
    expect(received).toEqual(Array.from({ length: 50 }, (_, index) => index));
  });

  it('reports a full ring with false, accepts again once the consumer drained, and loses nothing', () => {
    const { producer, consumer, received } = pair(1024);
    const payload = new Uint8Array(100);
    let accepted = 0;
    while (producer.tryWrite(payload.fill(accepted))) accepted++;
    // 1024 bytes of records of 104 bytes each: 9 fit, the 10th does not.
    expect(accepted).toBe(9);
    expect(producer.tryWrite(new Uint8Array(0))).toBe(true);
    expect(producer.tryWrite(payload)).toBe(false);
    expect(consumer.drain()).toBe(10);
    expect(producer.tryWrite(payload.fill(77))).toBe(true);
    consumer.drain();
    expect(received.map((bytes) => (bytes.length === 0 ? -1 : bytes[0]))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, -1, 77]);
  });

  it('rejects a message larger than half the ring with REQUEST_TOO_LARGE, even when empty', () => {
    const { producer } = pair(2048);
    expect(ringMessageBytesMax(2048)).toBe(1020);
    expect(producer.tryWrite(new Uint8Array(1020))).toBe(true);
    expect(() => producer.tryWrite(new Uint8Array(1021))).toThrow(/exceeds the ring limit of 1020 bytes/);
  });

  it('lets the largest admissible message through from any offset of an empty ring', () => {
    for (let offset = 0; offset < 2048; offset += 4) {
      const buffer = createRingBuffer(2048);
      const header = new Int32Array(buffer, 0, 64);
      header[0] = offset;
      header[16] = offset;
      const producer = new RingProducer(buffer);
      expect(producer.tryWrite(new Uint8Array(producer.messageBytesMax))).toBe(true);
    }
  });

  it('with publish: microtask, shows a stretch of writes to the consumer together once the stretch ends', async () => {
    const buffer = createRingBuffer(4096);
    const received: string[] = [];
    const producer = new RingProducer(buffer, { publish: 'microtask' });
    const consumer = new RingConsumer(buffer, { onMessage: (payload) => received.push(Buffer.from(payload).toString()) });
    expect(producer.tryWrite(Buffer.from('a'))).toBe(true);
    expect(producer.tryWrite(Buffer.from('b'))).toBe(true);
    expect(producer.usedBytes()).toBe(0);
    consumer.drain();
    expect(received).toEqual([]);
    await Promise.resolve();
    expect(producer.usedBytes()).toBeGreaterThan(0);
    consumer.drain();
    expect(received).toEqual(['a', 'b']);
    // Filling the ring: a producer about to wait for space publishes what it wrote first, else
    // the consumer could never free any.
    const big = new Uint8Array(producer.messageBytesMax);
    expect(producer.tryWrite(big)).toBe(true);
    expect(producer.tryWrite(big)).toBe(false);
    const waited = producer.waitForSpace(big.length);
    consumer.drain();
    await waited;
    expect(received).toHaveLength(3);
    producer.tryWrite(Buffer.from('c'));
    producer.close();
    consumer.drain();
    expect(received.at(-1)).toBe('c');
  });

  it('refuses capacities that are not powers of two', () => {
    expect(() => createRingBuffer(3000)).toThrow(/power of two/);
    expect(() => createRingBuffer(512)).toThrow(/power of two/);
  });

  it('wakes a sleeping consumer with the doorbell and a waiting producer when space frees', async () => {
    const buffer = createRingBuffer(1024);
    const received: number[] = [];
    const consumer = new RingConsumer(buffer, { onMessage: (payload) => received.push(payload[0]) });
    const producer = new RingProducer(buffer);
    consumer.start();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(producer.tryWrite(new Uint8Array([5]))).toBe(true);
    await eventually(() => received).toEqual([5]);
    // Fill the ring while the consumer is awake; the producer waits for space and resumes.
    let written = 0;
    for (let index = 0; index < 200; index++) {
      const payload = new Uint8Array(200).fill(index);
      while (!producer.tryWrite(payload)) await producer.waitForSpace(payload.length);
      written++;
    }
    await eventually(() => received.length).toBe(1 + written);
    expect(received.slice(1)).toEqual(Array.from({ length: 200 }, (_, index) => index));
    await consumer.close();
    producer.close();
    expect(() => producer.tryWrite(new Uint8Array(1))).toThrow(/closed/);
  });
});
