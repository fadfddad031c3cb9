import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type RespServer, startRespServer } from '../../src/frontends/resp/server.js';
import { Random } from '../../src/util/random.js';
import { MemoryRouter } from '../helpers/memory-router.js';
import { RawClient, text } from './resp-test-client.js';

// Every command over a real socket against the in-memory router, whose calls take a random
// 0–2 ms so they complete out of order (as across shards); replies must still come back in order.

let router: MemoryRouter;
let server: RespServer;
let client: RawClient;

beforeAll(async () => {
  router = new MemoryRouter({ random: new Random(4), delayMsMax: 2, replicaId: 3, replicaCount: 3, shardCount: 2 });
  server = await startRespServer({ router, port: 0 });
});
afterAll(() => server.close());

const connect = async () => {
  client = await RawClient.connect(server.port);
  return client;
};
afterEach(() => client?.close());

const run = async (...words: string[]) => text(await client.command(...words));

describe('RESP commands', () => {
  it('GET, SET with NX / XX / GET, GETSET', async () => {
    await connect();
    expect(await run('GET', 'c1')).toBe(null);
    expect(await run('SET', 'c1', 'a')).toBe('OK');
    expect(await run('GET', 'c1')).toBe('a');
    expect(await run('SET', 'c1', 'b', 'NX')).toBe(null);
    expect(await run('SET', 'c1', 'b', 'xx')).toBe('OK');
    expect(await run('SET', 'c1-missing', 'b', 'XX')).toBe(null);
    expect(await run('SET', 'c1', 'c', 'GET')).toBe('b');
    expect(await run('SET', 'c1', 'd', 'NX', 'GET')).toBe('c');
    expect(await run('GETSET', 'c1', 'e')).toBe('c');
    expect(await run('GET', 'c1')).toBe('e');
    expect(await run('SET', 'c1', 'x', 'NX', 'XX')).toBe('(error) ERR syntax error');
    expect(await run('SET', 'c1', 'x', 'BOGUS')).toBe('(error) ERR syntax error');
    for (const option of ['EX', 'PX', 'EXAT', 'PXAT', 'KEEPTTL']) {
      expect(await run('SET', 'c1', 'x', option, '10')).toMatch(/^\(error\) ERR TTL is not supported yet/);
    }
    expect(await run('GET', 'c1')).toBe('e');
  });

  it('DEL and EXISTS over several keys (sum of applied; duplicates count as in Redis)', async () => {
    await connect();
    await run('SET', 'c2a', '1');
    await run('SET', 'c2b', '2');
    expect(await run('EXISTS', 'c2a', 'c2b', 'c2c', 'c2a')).toBe(3);
    expect(await run('DEL', 'c2a', 'c2b', 'c2c', 'c2a')).toBe(2);
    expect(await run('EXISTS', 'c2a', 'c2b')).toBe(0);
  });

  it('MGET and MSET', async () => {
    await connect();
    expect(await run('MSET', 'c3a', '1', 'c3b', '2')).toBe('OK');
    expect(await run('MGET', 'c3a', 'c3missing', 'c3b')).toEqual(['1', null, '2']);
    expect(await run('MSET', 'c3a', '1', 'c3b')).toBe("(error) ERR wrong number of arguments for 'mset' command");
  });

  it('INCR, INCRBY, DECR, DECRBY, including non-integers and overflow', async () => {
    await connect();
    expect(await run('INCR', 'c4')).toBe(1);
    expect(await run('INCRBY', 'c4', '41')).toBe(42);
    expect(await run('DECR', 'c4')).toBe(41);
    expect(await run('DECRBY', 'c4', '50')).toBe(-9);
    expect(await run('INCRBY', 'c4', 'x')).toBe('(error) ERR value is not an integer or out of range');
    await run('SET', 'c4s', 'hello');
    expect(await run('INCR', 'c4s')).toBe('(error) ERR value is not an integer or out of range');
    await run('SET', 'c4max', '9223372036854775807');
    expect(await run('INCR', 'c4max')).toBe('(error) ERR value is not an integer or out of range');
    expect(await run('DECRBY', 'c4', '-9223372036854775808')).toBe('(error) ERR decrement would overflow');
    expect(text(await client.command('INCRBY', 'c4big', '9223372036854775807'))).toBe(9223372036854775807n);
  });

  it('APPEND returns the new length', async () => {
    await connect();
    expect(await run('APPEND', 'c5', 'ab')).toBe(2);
    expect(await run('APPEND', 'c5', 'cde')).toBe(5);
    expect(await run('GET', 'c5')).toBe('abcde');
  });

  it('PAXOS.GET / SET / CAS / DEL: versioned compare-and-set', async () => {
    await connect();
    expect(await run('PAXOS.GET', 'c6')).toEqual([null, 0]);
    expect(await run('PAXOS.CAS', 'c6', '0', 'first')).toBe(1);
    expect(await run('PAXOS.CAS', 'c6', '0', 'again')).toBe(null);
    expect(await run('PAXOS.GET', 'c6')).toEqual(['first', 1]);
    expect(await run('PAXOS.SET', 'c6', 'second')).toBe(2);
    expect(await run('PAXOS.DEL', 'c6', '1')).toBe(null);
    expect(await run('PAXOS.DEL', 'c6', '2')).toBe(3);
    expect(await run('PAXOS.GET', 'c6')).toEqual([null, 3]);
    expect(await run('PAXOS.CAS', 'c6', '-1', 'x')).toBe('(error) ERR version is not a non-negative integer');
  });

  it('PING, ECHO, SELECT, DBSIZE, HELLO, QUIT', async () => {
    await connect();
    expect(await run('PING')).toBe('PONG');
    expect(await run('ping', 'hi')).toBe('hi');
    expect(await run('PING', 'a', 'b')).toBe("(error) ERR wrong number of arguments for 'ping' command");
    expect(await run('ECHO', 'x y')).toBe('x y');
    expect(await run('SELECT', '0')).toBe('OK');
    expect(await run('SELECT', '1')).toBe('(error) ERR DB index is out of range');
    expect(await run('DBSIZE')).toMatch(/^\(error\) ERR DBSIZE is not supported/);
    const hello = (await run('HELLO', '2', 'SETNAME', 'me')) as unknown[];
    expect(hello.slice(0, 6)).toEqual(['server', 'paxosstore', 'version', '7.0.0', 'proto', 2]);
    expect(await run('CLIENT', 'GETNAME')).toBe('me');
    expect(await run('HELLO', '3')).toMatch(/^\(error\) NOPROTO/);
    expect(await run('QUIT')).toBe('OK');
    await client.waitClosed();
  });

  it('CLIENT subcommands, including the read mode switch', async () => {
    await connect();
    const id = await run('CLIENT', 'ID');
    expect(typeof id).toBe('number');
    expect(await run('CLIENT', 'SETNAME', 'worker-1')).toBe('OK');
    expect(await run('CLIENT', 'SETNAME', 'two words')).toMatch(/cannot contain spaces/);
    expect(await run('CLIENT', 'SETINFO', 'lib-name', 'tests')).toBe('OK');
    expect(await run('CLIENT', 'INFO')).toMatch(new RegExp(`^id=${id} .*name=worker-1 .*readmode=linearizable lib-name=tests`));
    expect(await run('CLIENT', 'LIST')).toContain(`id=${id} `);
    expect(await run('CLIENT', 'READMODE')).toBe('linearizable');
    expect(await run('CLIENT', 'READMODE', 'local')).toBe('OK');
    expect(await run('CLIENT', 'READMODE')).toBe('local');
    expect(await run('CLIENT', 'READMODE', 'stale')).toMatch(/read mode must be/);
    expect(await run('CLIENT', 'BOGUS')).toBe("(error) ERR unknown subcommand 'BOGUS'. Try CLIENT HELP.");
    expect(await run('CLIENT')).toBe("(error) ERR wrong number of arguments for 'client' command");
    expect(await run('CLIENT', 'SETNAME')).toBe("(error) ERR wrong number of arguments for 'client|setname' command");
  });

  it('passes the read mode and well-formed request ids to the router', async () => {
    await connect();
    const seen: { consistency?: string; clientId: string; sequence: number; timestampMs: number }[] = [];
    const original = router.execute.bind(router);
    router.execute = (key, operation, requestId) => {
      seen.push({ consistency: operation.kind === 'get' ? operation.consistency : undefined, ...requestId });
      return original(key, operation, requestId);
    };
    try {
      await run('GET', 'c7');
      await run('CLIENT', 'READMODE', 'local');
      await run('MGET', 'c7', 'c7b');
    } finally {
      router.execute = original;
    }
    expect(seen.map((call) => call.consistency)).toEqual(['linearizable', 'local', 'local']);
    expect(new Set(seen.map((call) => call.clientId)).size).toBe(1);
    expect(seen[0].clientId).toMatch(/^r3-[0-9a-f]{12}-\d+$/);
    expect(seen.map((call) => call.sequence)).toEqual([1, 2, 3]);
    expect(Math.abs(seen[0].timestampMs - Date.now())).toBeLessThan(5000);
  });

  it('INFO sections, CONFIG GET, COMMAND COUNT / INFO / DOCS / LIST', async () => {
    await connect();
    const info = (await run('INFO')) as string;
    expect(info).toMatch(/# Server\r\nredis_version:7\.0\.0\r\n/);
    expect(info).toMatch(/paxos_replica_id:3\r\npaxos_replica_count:3\r\npaxos_shard_count:2/);
    expect(info).toMatch(/loading:0/);
    expect(info).toMatch(/router_requests:\d+/);
    expect(info).toMatch(/total_commands_processed:\d+/);
    const replication = (await run('INFO', 'replication')) as string;
    expect(replication.startsWith('# Replication\r\n')).toBe(true);
    expect(replication).not.toContain('# Server');
    expect(await run('CONFIG', 'GET', 'append*')).toEqual(['appendonly', 'yes', 'appendfsync', 'always']);
    expect(await run('CONFIG', 'SET', 'save', '')).toMatch(/CONFIG SET is not supported/);
    const count = (await run('COMMAND', 'COUNT')) as number;
    expect(count).toBeGreaterThan(20);
    expect(((await run('COMMAND')) as unknown[]).length).toBe(count);
    expect(((await run('COMMAND', 'LIST')) as unknown[]).length).toBe(count);
    const [getInfo, missing] = (await run('COMMAND', 'INFO', 'get', 'nosuch')) as unknown[][];
    expect(getInfo.slice(0, 6)).toEqual(['get', 2, ['readonly', 'fast'], 1, 1, 1]);
    expect(missing).toBe(null);
    const docs = (await run('COMMAND', 'DOCS', 'set')) as unknown[];
    expect(docs[0]).toBe('set');
    expect((docs[1] as unknown[]).slice(0, 6)).toEqual(['summary', expect.stringContaining('Sets'), 'since', '1.0.0', 'group', 'string']);
  });

  it('unknown commands and wrong arity get Redis-style errors and the connection stays usable', async () => {
    await connect();
    expect(await run('FLUSHALL', 'now', 'please')).toBe("(error) ERR unknown command 'FLUSHALL', with args beginning with: 'now' 'please' ");
    expect(await run('GET')).toBe("(error) ERR wrong number of arguments for 'get' command");
    expect(await run('GET', 'a', 'b')).toBe("(error) ERR wrong number of arguments for 'get' command");
    expect(await run('PING')).toBe('PONG');
  });

  it('maps router errors to stable prefixes', async () => {
    await connect();
    const cases: [Parameters<MemoryRouter['injectFailures']>[0], string][] = [
      ['CONTENTION', 'CONTENTION'],
      ['NO_QUORUM', 'NOQUORUM'],
      ['TIMEOUT', 'TIMEOUT'],
      ['OVERLOADED', 'OVERLOADED'],
      ['CLOSED', 'CLOSED'],
      ['IO_ERROR', 'ERR'],
    ];
    for (const [code, prefix] of cases) {
      router.injectFailures(code);
      expect(await run('SET', 'c8', 'v')).toBe(`(error) ${prefix} injected ${code}`);
    }
    expect(await run('SET', 'k'.repeat(64 * 1024 + 1), 'v')).toMatch(/^\(error\) ERR key is 65537 bytes; the limit is 65536/);
  });

  it('keeps per-key order inside a pipeline even though router calls complete out of order', async () => {
    await connect();
    const commands: string[] = [];
    const expected: unknown[] = [];
    for (let i = 0; i < 200; i++) {
      const key = `c9-${i % 7}`;
      commands.push(`SET ${key} ${i}\r\nGET ${key}\r\nINCR counter-c9\r\n`);
      expected.push('OK', String(i), i + 1);
    }
    client.write(commands.join(''));
    expect((await client.read(600)).map(text)).toEqual(expected);
  });
});
