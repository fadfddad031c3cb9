import { describe, expect, it } from 'vitest';
import { encodeReplies, reply } from '../../src/frontends/resp/encoder.js';
import { RESP_PARSER_LIMITS_DEFAULT, RespParser } from '../../src/frontends/resp/parser.js';
import { Random } from '../../src/util/random.js';
import { encodeCommand } from './resp-test-client.js';

/** Feeds chunks and drains every complete command; returns commands as arrays of latin1 strings. */
function parseAll(parser: RespParser, chunks: readonly Buffer[]): string[][] {
  const out: string[][] = [];
  for (const chunk of chunks) {
    parser.append(chunk);
    for (let command = parser.next(); command !== undefined; command = parser.next()) {
      out.push(command.map((argument) => argument.toString('latin1')));
    }
  }
  return out;
}

function splitRandomly(random: Random, bytes: Buffer, piecesMax: number): Buffer[] {
  const cuts = new Set<number>();
  const count = random.int(piecesMax);
  for (let i = 0; i < count; i++) cuts.add(random.int(bytes.length));
  const sorted = [...cuts].sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let start = 0;
  for (const cut of [...sorted, bytes.length]) {
    chunks.push(bytes.subarray(start, cut));
    start = cut;
  }
  return chunks;
}

const expectProtocolError = (parser: RespParser, pattern: RegExp) => {
  expect(() => parser.next()).toThrow(pattern);
  // The stream cannot be resynchronised: the error sticks.
  expect(() => parser.next()).toThrow(pattern);
};

describe('RespParser', () => {
  it('parses pipelined multibulk commands from one chunk, returning views of the chunk', () => {
    const chunk = Buffer.concat([encodeCommand('SET', 'k', 'v'), encodeCommand('GET', 'k'), encodeCommand('PING')]);
    const parser = new RespParser();
    parser.append(chunk);
    const first = parser.next()!;
    expect(first.map(String)).toEqual(['SET', 'k', 'v']);
    expect(first[2].buffer).toBe(chunk.buffer); // zero copy
    expect(parser.next()!.map(String)).toEqual(['GET', 'k']);
    expect(parser.next()!.map(String)).toEqual(['PING']);
    expect(parser.next()).toBeUndefined();
    expect(parser.bufferedBytes).toBe(0);
  });

  it('is binary safe: CR, LF, NUL and every byte value inside bulks', () => {
    const value = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const parser = new RespParser();
    parser.append(encodeCommand('SET', '\r\n\0key', value));
    const command = parser.next()!;
    expect(command[1]).toEqual(Buffer.from('\r\n\0key'));
    expect(command[2]).toEqual(value);
  });

  it('parses inline commands with quotes and escapes, skipping blank lines and empty arrays', () => {
    const parser = new RespParser();
    const input = 'PING\r\n\r\n*0\r\n  set  k "a b\\n\\x41"\nget \'it\\\'s\'\r\n';
    expect(parseAll(parser, [Buffer.from(input)])).toEqual([['PING'], ['set', 'k', 'a b\nA'], ['get', "it's"]]);
  });

  it('reassembles any command split at every byte boundary (seeded random splits of a mixed stream)', () => {
    const random = new Random(20261121);
    for (let round = 0; round < 100; round++) {
      const commands: string[][] = [];
      const parts: Buffer[] = [];
      for (let i = 0; i < 1 + random.int(20); i++) {
        const sizes = [0, 1, 5, 100, 20_000, 70_000];
        const value = Buffer.from(random.bytes(random.pick(sizes)));
        if (random.chance(0.2)) {
          commands.push(['PING', 'x']);
          parts.push(Buffer.from('PING x\r\n'));
        } else {
          commands.push(['SET', `key${i}`, value.toString('latin1')]);
          parts.push(encodeCommand('SET', `key${i}`, value));
        }
      }
      const stream = Buffer.concat(parts);
      const parser = new RespParser();
      expect(parseAll(parser, splitRandomly(random, stream, 40)), `round ${round}`).toEqual(commands);
      expect(parser.bufferedBytes).toBe(0);
    }
  });

  it('parses a command fed one byte at a time, and a large bulk in small pieces', () => {
    const value = Buffer.alloc(100_000, 7);
    const stream = Buffer.concat([encodeCommand('SET', 'k', value), encodeCommand('GET', 'k')]);
    const parser = new RespParser();
    const bytewise = parseAll(new RespParser(), [...stream.subarray(0, 300)].map((byte) => Buffer.from([byte])));
    expect(bytewise).toEqual([]);
    const commands = parseAll(parser, splitRandomly(new Random(1), stream, 50));
    expect(commands.length).toBe(2);
    expect(Buffer.from(commands[0][2], 'latin1').equals(value)).toBe(true);
  });

  it('rejects malformed framing with Redis-style protocol errors', () => {
    const cases: [string, RegExp][] = [
      ['*2\r\n$3\r\nGET\r\n:1\r\n', /Protocol error: expected '\$', got ':'/],
      ['*1\r\n$x\r\n', /invalid bulk length/],
      ['*1\r\n$-1\r\n', /invalid bulk length/],
      ['*abc\r\n', /invalid multibulk count/],
      ['*1\r\n$3\r\nGETXX', /expected CRLF after bulk/],
      [`*${'9'.repeat(40)}\r\n`, /too big multibulk count string/],
      ['SET "unterminated\r\n', /unbalanced quotes/],
      ['SET "a"b\r\n', /unbalanced quotes/],
    ];
    for (const [input, pattern] of cases) {
      const parser = new RespParser();
      parser.append(Buffer.from(input));
      expectProtocolError(parser, pattern);
    }
  });

  it('enforces the argument count, bulk size, inline length and command size limits', () => {
    const limits = { ...RESP_PARSER_LIMITS_DEFAULT, argumentsMax: 3, bulkBytesMax: 10, inlineBytesMax: 20, commandBytesMax: 15 };
    const feed = (input: string) => {
      const parser = new RespParser(limits);
      parser.append(Buffer.from(input));
      return parser;
    };
    expect(feed('*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n').next()!.length).toBe(3);
    expectProtocolError(feed('*4\r\n'), /invalid multibulk length/);
    expectProtocolError(feed('*1\r\n$11\r\n'), /invalid bulk length/);
    expectProtocolError(feed('*2\r\n$10\r\naaaaaaaaaa\r\n$10\r\n'), /command too large/);
    expectProtocolError(feed(`PING ${'x'.repeat(30)}`), /too big inline request/);
    expect(feed(`PING ${'x'.repeat(10)}`).next()).toBeUndefined(); // still waiting for the newline
  });

  it('reports a large bulk with a bad terminator even when it arrived in pieces', () => {
    const parser = new RespParser();
    const body = Buffer.alloc(50_000, 1);
    parser.append(Buffer.from('*1\r\n$50000\r\n'));
    parser.append(body.subarray(0, 100));
    expect(parser.next()).toBeUndefined();
    parser.append(Buffer.concat([body.subarray(100), Buffer.from('XX')]));
    expectProtocolError(parser, /expected CRLF after bulk/);
  });
});

describe('ReplyEncoder', () => {
  it('encodes every reply type, including nulls and large by-reference bulks', () => {
    const large = Buffer.alloc(40_000, 0x61);
    const encoded = encodeReplies([
      reply.ok,
      reply.error('ERR bad\r\nthing'),
      reply.integer(-42),
      reply.integer(9223372036854775807n),
      reply.bulk('héllo'),
      reply.nullBulk,
      reply.array([reply.bulk('a'), reply.array(null), reply.array([])]),
      reply.bulk(large),
    ]);
    const expected = Buffer.concat([
      Buffer.from('+OK\r\n-ERR bad  thing\r\n:-42\r\n:9223372036854775807\r\n$6\r\nhéllo\r\n$-1\r\n*3\r\n$1\r\na\r\n*-1\r\n*0\r\n'),
      Buffer.from('$40000\r\n'),
      large,
      Buffer.from('\r\n'),
    ]);
    expect(encoded.equals(expected)).toBe(true);
  });
});
