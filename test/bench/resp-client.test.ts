import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeCommand, RespConnection, type RespReply, RespReplyParser } from '../../src/bench/targets/resp-client.js';
import { errorFromReply, RespTarget } from '../../src/bench/targets/resp.js';
import { type RunningRedis, startRedis } from './redis-server.js';

const sample = Buffer.from('+OK\r\n-ERR bad thing\r\n:-42\r\n$5\r\nhe\r\nl\r\n$-1\r\n*3\r\n$1\r\na\r\n*1\r\n:7\r\n$0\r\n\r\n*-1\r\n*0\r\n');
const expected: RespReply[] = [
  { kind: 'simple', value: 'OK' },
  { kind: 'error', message: 'ERR bad thing' },
  { kind: 'integer', value: -42 },
  { kind: 'bulk', value: Buffer.from('he\r\nl') },
  { kind: 'bulk', value: null },
  { kind: 'array', items: [{ kind: 'bulk', value: Buffer.from('a') }, { kind: 'array', items: [{ kind: 'integer', value: 7 }] }, { kind: 'bulk', value: Buffer.alloc(0) }] },
  { kind: 'array', items: null },
  { kind: 'array', items: [] },
];

describe('RESP2 codec', () => {
  it('encodes a command as an array of bulk strings, binary-safe', () => {
    expect(encodeCommand(['SET', 'k', new Uint8Array([0, 13, 10, 255])]).toString('latin1')).toBe('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n\x00\r\n\xff\r\n');
    expect(encodeCommand(['GET', 'ключ']).toString('utf8')).toBe('*2\r\n$3\r\nGET\r\n$8\r\nключ\r\n');
  });

  it('parses every reply type, whole or split at every byte', () => {
    expect(new RespReplyParser().feed(sample)).toEqual(expected);
    for (let split = 1; split < sample.length; split++) {
      const parser = new RespReplyParser();
      const replies = [...parser.feed(sample.subarray(0, split)), ...parser.feed(sample.subarray(split))];
      expect(replies).toEqual(expected);
      expect(parser.bufferedBytes).toBe(0);
    }
    const byteByByte = new RespReplyParser();
    const replies: RespReply[] = [];
    for (let i = 0; i < sample.length; i++) replies.push(...byteByByte.feed(sample.subarray(i, i + 1)));
    expect(replies).toEqual(expected);
  });

  it('rejects malformed replies with PROTOCOL_ERROR', () => {
    for (const bad of ['?what\r\n', ':12x\r\n', '$5\r\nhelloXY', '$-2\r\n', `*${2 ** 30}\r\n`, `$${2 ** 40}\r\n`, `${'*1\r\n'.repeat(40)}:1\r\n`]) {
      expect(() => new RespReplyParser().feed(Buffer.from(bad)), bad).toThrow(expect.objectContaining({ code: 'PROTOCOL_ERROR' }));
    }
    expect(() => new RespReplyParser().feed(Buffer.from(`+${'x'.repeat(70_000)}`))).toThrow(/line longer/);
  });

  it('maps error replies onto the catalogue when the prefix is one of its codes', () => {
    expect(errorFromReply('CONTENTION retry later').code).toBe('CONTENTION');
    expect(errorFromReply('ERR unknown command').code).toBe('INTERNAL');
    expect(errorFromReply('ERR unknown command').message).toContain('-ERR unknown command');
  });
});

describe('RESP connection against redis-server', () => {
  let redis: RunningRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('pipelines thousands of commands and matches replies in order', async () => {
    const connection = await RespConnection.connect('127.0.0.1', redis.port);
    await connection.send(['DEL', 'counter']);
    const replies = await Promise.all(Array.from({ length: 5000 }, () => connection.send(['INCR', 'counter'])));
    expect(replies.map((reply) => (reply.kind === 'integer' ? reply.value : -1))).toEqual(Array.from({ length: 5000 }, (_, i) => i + 1));
    const big = Buffer.alloc(300_000, 7);
    expect(await connection.send(['SET', 'big', big])).toEqual({ kind: 'simple', value: 'OK' });
    expect(await connection.send(['GET', 'big'])).toEqual({ kind: 'bulk', value: big });
    expect((await connection.send(['NOSUCHCOMMAND'])).kind).toBe('error');
    await connection.close();
    await expect(connection.send(['PING'])).rejects.toMatchObject({ code: 'CLOSED' });
  });

  it('surfaces error replies and refused connections as typed errors', async () => {
    const target = await RespTarget.open({ endpoints: [{ host: '127.0.0.1', port: redis.port }], clients: 1, pipeline: 1, connectTimeoutMs: 1000, operationTimeoutMs: 1000 });
    const connection = await RespConnection.connect('127.0.0.1', redis.port);
    await connection.send(['RPUSH', 'a-list', 'x']);
    await connection.close();
    // GET on a list: redis answers -WRONGTYPE, which the target reports as an error.
    await expect(target.execute(0, { type: 'read', key: 'a-list' })).rejects.toMatchObject({ code: 'INTERNAL' });
    await target.close();
    await expect(RespTarget.open({ endpoints: [{ host: '127.0.0.1', port: 1 }], clients: 1, pipeline: 1, connectTimeoutMs: 1000, operationTimeoutMs: 1000 })).rejects.toMatchObject({ code: 'IO_ERROR' });
  });
});
