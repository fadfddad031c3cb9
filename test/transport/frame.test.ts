import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { PaxosStoreError } from '../../src/errors.js';
import { encodeFrame, encodeMessageFrame, FLAG_LZ4, FRAME_HEADER_BYTES, FrameDecoder } from '../../src/transport/frame.js';
import { computeProof, decodeHandshake, encodeHandshake, identityMismatch, newNonce, proofMatches } from '../../src/transport/handshake.js';
import { Random } from '../../src/util/random.js';

const packr = new Packr({ useRecords: false, useBigIntExtension: true });

function frameOf(messages: unknown[], compressionThresholdBytes = 1 << 30) {
  const encoded = messages.map((message) => packr.pack(message));
  return encodeMessageFrame(
    encoded,
    encoded.reduce((sum, bytes) => sum + bytes.length, 0),
    compressionThresholdBytes,
  );
}

function decodeAll(decoder: FrameDecoder): unknown[][] {
  const out: unknown[][] = [];
  for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) out.push(packr.unpack(frame.payload));
  return out;
}

describe('peer frames', () => {
  it('decodes frames split at every possible chunk boundary and coalesced in one chunk', () => {
    const random = new Random(11);
    const batches = [
      [{ ballot: [1, 2], value: Buffer.from('x') }],
      Array.from({ length: 20 }, (_, index) => ({ index, big: 2n ** 64n + BigInt(index) })),
      Array.from({ length: 70_000 }, (_, index) => index % 3),
    ];
    const wire = Buffer.concat(batches.map((batch) => frameOf(batch).frame));
    for (let trial = 0; trial < 100; trial++) {
      const decoder = new FrameDecoder(1 << 20);
      const decoded: unknown[][] = [];
      for (let offset = 0; offset < wire.length; ) {
        const length = random.range(1, trial < 50 ? 16 : 4096);
        decoder.push(wire.subarray(offset, offset + length));
        decoded.push(...decodeAll(decoder));
        offset += length;
      }
      expect(decoded.length).toBe(3);
      if (trial === 0) expect(decoded).toEqual(batches);
    }
    const whole = new FrameDecoder(1 << 20);
    whole.push(wire);
    expect(decodeAll(whole)).toEqual(batches);
  });

  it('compresses above the threshold only, and the lz4 path round-trips', () => {
    const messages = Array.from({ length: 100 }, (_, index) => ({ kind: 'accept', key: `user:${index}`, value: 'v'.repeat(200) }));
    const plain = frameOf(messages);
    const compressed = frameOf(messages, 1024);
    expect(plain.compressed).toBe(false);
    expect(compressed.compressed).toBe(true);
    expect(compressed.frame[3] & FLAG_LZ4).toBe(FLAG_LZ4);
    expect(compressed.frame.length).toBeLessThan(plain.frame.length / 4);
    const decoder = new FrameDecoder(1 << 20);
    decoder.push(compressed.frame);
    expect(decodeAll(decoder)).toEqual([messages]);
    // Incompressible random bytes stay uncompressed even above the threshold.
    expect(frameOf([new Random(1).bytes(4096)], 1024).compressed).toBe(false);
  });

  it('rejects bad magic, unknown flags, oversize, a flipped bit, and lz4 bombs with typed errors', () => {
    const { frame } = frameOf([1, 2, 3]);
    const decode = (bytes: Buffer, frameBytesMax = 1 << 20) => {
      const decoder = new FrameDecoder(frameBytesMax);
      decoder.push(bytes);
      return decoder.next();
    };
    expect(() => decode(Buffer.from('GET / HTTP/1.1\r\n\r\n'))).toThrow(/bad frame magic/);
    const flagged = Buffer.from(frame);
    flagged[3] = 0x80;
    expect(() => decode(flagged)).toThrow(/unknown frame flags/);
    expect(() => decode(frame, 2)).toThrow(/exceeds frameBytesMax 2/);
    for (let bit = 0; bit < frame.length * 8; bit++) {
      const flipped = Buffer.from(frame);
      flipped[bit >> 3] ^= 1 << (bit & 7);
      let outcome: unknown;
      try {
        outcome = decode(flipped);
      } catch (error) {
        outcome = error;
      }
      // Every single-bit error is caught: typed error, or (length grew) still waiting for bytes.
      expect(outcome === undefined || outcome instanceof PaxosStoreError).toBe(true);
    }
    const bomb = Buffer.alloc(16);
    bomb.writeUInt32LE(0x7fffffff, 0);
    expect(() => decode(encodeFrame(bomb, FLAG_LZ4))).toThrow(/expands to 2147483647 bytes/);
    expect(() => decode(encodeFrame(Buffer.from([5, 0, 0, 0, 0xff]), FLAG_LZ4))).toThrow(PaxosStoreError);
    expect(frame.length).toBe(FRAME_HEADER_BYTES + 4);
  });
});

describe('handshake', () => {
  const identity = { clusterId: 'c1', replicaId: 1, shardIndex: 0, shardCount: 2 };
  it('proofs depend on the secret, the role and both nonces', () => {
    const transcript = { connector: identity, acceptorReplicaId: 2, connectorNonce: newNonce(), acceptorNonce: newNonce() };
    const secret = Buffer.from('s3cret');
    const proof = computeProof(secret, 'connector', transcript);
    expect(proofMatches(proof, computeProof(secret, 'connector', transcript))).toBe(true);
    expect(proofMatches(proof, computeProof(Buffer.from('other'), 'connector', transcript))).toBe(false);
    expect(proofMatches(proof, computeProof(secret, 'acceptor', transcript))).toBe(false);
    expect(proofMatches(proof, computeProof(secret, 'connector', { ...transcript, acceptorNonce: newNonce() }))).toBe(false);
  });
  it('round-trips handshake messages and refuses malformed ones', () => {
    const hello = { kind: 'hello', protocol: 1, identity, nonce: newNonce() } as const;
    expect(decodeHandshake(encodeHandshake(hello))).toEqual({ ...hello, nonce: Buffer.from(hello.nonce) });
    expect(() => decodeHandshake(packr.pack({ kind: 'hello', protocol: 1, identity, nonce: Buffer.alloc(3) }))).toThrow(/nonce/);
    expect(() => decodeHandshake(packr.pack({ kind: 'nope' }))).toThrow(/unknown kind/);
    expect(identityMismatch(identity, { ...identity, shardIndex: 1 })).toMatch(/shard index 1 is not 0/);
    expect(identityMismatch(identity, { ...identity, replicaId: 3 })).toBeUndefined();
  });
});
