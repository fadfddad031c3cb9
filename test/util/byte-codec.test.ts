import { describe, expect, it } from 'vitest';
import { ByteReader, ByteWriter } from '../../src/util/byte-codec.js';

function roundTrip(value: string): { bytes: Uint8Array; decoded: string } {
  const writer = new ByteWriter();
  writer.reset(0);
  writer.u8(0xaa);
  writer.string(value);
  writer.u8(0xbb);
  const bytes = writer.finish();
  const reader = new ByteReader(bytes, 'PROTOCOL_ERROR', 'test');
  expect(reader.u8()).toBe(0xaa);
  const decoded = reader.string();
  expect(reader.u8()).toBe(0xbb);
  expect(reader.done).toBe(true);
  return { bytes, decoded };
}

describe('ByteWriter.string', () => {
  const cases = [
    '',
    'r1-c42',
    'a'.repeat(127),
    'a'.repeat(128),
    'a'.repeat(300),
    'é',
    'client-é',
    `${'a'.repeat(126)}é`,
    `${'a'.repeat(100)}€${'b'.repeat(30)}`,
    '𝄞 clef',
    '\u007f\u0080',
  ];
  for (const value of cases) {
    it(`writes ${JSON.stringify(value.length > 20 ? `${value.slice(0, 8)}…(${value.length})` : value)} as varuint UTF-8 length then UTF-8`, () => {
      const { bytes, decoded } = roundTrip(value);
      expect(decoded).toBe(value);
      const utf8 = Buffer.from(value, 'utf8');
      // 0xaa, varuint length (1 or 2 bytes), the UTF-8 bytes, 0xbb
      const prefix = utf8.length < 0x80 ? [utf8.length] : [(utf8.length & 0x7f) | 0x80, utf8.length >>> 7];
      expect([...bytes]).toEqual([0xaa, ...prefix, ...utf8, 0xbb]);
    });
  }

  it('grows the buffer for long strings on either path', () => {
    const writer = new ByteWriter();
    writer.reset(4090);
    writer.string('x'.repeat(100));
    writer.string('ü'.repeat(3000));
    const bytes = writer.view(4090);
    const reader = new ByteReader(bytes, 'PROTOCOL_ERROR', 'test');
    expect(reader.string()).toBe('x'.repeat(100));
    expect(reader.string()).toBe('ü'.repeat(3000));
  });
});
