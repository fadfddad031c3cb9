/**
 * The Redis command table and its dispatcher. Each entry carries what COMMAND INFO and COMMAND DOCS
 * report (arity in Redis's convention, flags, key positions, group, summary, argument syntax) next
 * to its handler, so the table is the single source for both behaviour and introspection.
 *
 * Arity (Redis convention, counting the command name): N means exactly N words, -N at least N.
 *
 * Handlers return a Reply, or a promise of one when they call the router; they throw (or reject
 * with) a PaxosStoreError for bad input or a failed operation, and `dispatchCommand` maps it to a
 * RESP error with a stable prefix (errorReply). Multi-key commands (DEL, EXISTS, MGET, MSET) are
 * composed of single-key router calls and are not atomic across keys.
 */
import { type KeyOperation, type KeyResult, parseInteger } from '../../api/operations.js';
import { PaxosStoreError } from '../../errors.js';
import { assert } from '../../util/assert.js';
import { type Reply, reply } from './encoder.js';
import type { Session } from './session.js';

/** The Redis version whose command semantics we follow; reported as redis_version for clients that gate features on it. */
export const REDIS_COMPATIBLE_VERSION = '7.0.0';
export const SERVER_NAME = 'paxosstore';
export const SERVER_VERSION = '0.1.0';

type Handler = (session: Session, args: readonly Buffer[]) => Reply | Promise<Reply>;

export interface CommandSpec {
  /** Lowercase; subcommands are `parent|sub` as in Redis 7. */
  readonly name: string;
  readonly arity: number;
  readonly flags: readonly string[];
  /** First key position, last key position (-1 = last argument), step; 0,0,0 for no keys. */
  readonly keys: readonly [number, number, number];
  readonly group: string;
  readonly summary: string;
  readonly since: string;
  /** Argument syntax for COMMAND DOCS: words; `[x]` optional, `A|B` one of, UPPER tokens, `x...` repeated. */
  readonly syntax: string;
  readonly handler: Handler;
  readonly subcommands?: ReadonlyMap<string, CommandSpec>;
}

// ---------------------------------------------------------------------------------------------
// Errors

/** RESP error prefix per error code: clients match on the first word, so these never change. */
const ERROR_PREFIXES: Partial<Record<PaxosStoreError['code'], string>> = {
  CONTENTION: 'CONTENTION',
  NO_QUORUM: 'NOQUORUM',
  TIMEOUT: 'TIMEOUT',
  OVERLOADED: 'OVERLOADED',
  CLOSED: 'CLOSED',
  WRONG_TYPE: 'WRONGTYPE',
};

export function errorReply(error: unknown): Reply {
  if (error instanceof PaxosStoreError) {
    return reply.error(`${ERROR_PREFIXES[error.code] ?? 'ERR'} ${error.message}`);
  }
  // The router promises PaxosStoreError only; anything else is a bug, reported rather than hidden.
  const message = error instanceof Error ? error.message : String(error);
  return reply.error(`ERR internal error: ${message}`);
}

function invalid(message: string): PaxosStoreError {
  return new PaxosStoreError('INVALID_ARGUMENT', message);
}

const notAnInteger = () => invalid('value is not an integer or out of range');
const syntaxError = () => invalid('syntax error');

// ---------------------------------------------------------------------------------------------
// Dispatch

const HTTP_METHOD_NAMES = new Set(['post', 'host:', 'get/', 'put', 'head', 'options']);

/** Runs one command; never throws (errors become error replies). */
export function dispatchCommand(session: Session, args: readonly Buffer[]): Reply | Promise<Reply> {
  assert(args.length > 0, 'the parser never yields an empty command');
  const name = args[0].toString('latin1').toLowerCase();
  session.commandsProcessed++;
  session.lastCommand = name;
  const spec = COMMANDS.get(name);
  if (spec === undefined) {
    if (HTTP_METHOD_NAMES.has(name) || (name === 'get' && args.length > 2)) return httpRefused(session);
    return reply.error(unknownCommandMessage(args));
  }
  return runSpec(spec, session, args, 0);
}

/** An HTTP request on the RESP port: say so and close, as Redis does for `POST` and `Host:`. */
function httpRefused(session: Session): Reply {
  session.closeRequested = true;
  return reply.error('ERR this port speaks RESP (the Redis protocol), not HTTP; closing');
}

function runSpec(spec: CommandSpec, session: Session, args: readonly Buffer[], depth: number): Reply | Promise<Reply> {
  if (spec.subcommands !== undefined && args.length > depth + 1) {
    const sub = spec.subcommands.get(`${spec.name}|${args[depth + 1].toString('latin1').toLowerCase()}`);
    if (sub === undefined) {
      return reply.error(`ERR unknown subcommand '${truncate(args[depth + 1])}'. Try ${spec.name.toUpperCase()} HELP.`);
    }
    return runSpec(sub, session, args, depth + 1);
  }
  if (!arityMatches(spec.arity, args.length)) {
    return reply.error(`ERR wrong number of arguments for '${spec.name}' command`);
  }
  try {
    const result = spec.handler(session, args);
    return result instanceof Promise ? result.catch(errorReply) : result;
  } catch (error) {
    return errorReply(error);
  }
}

function arityMatches(arity: number, count: number): boolean {
  return arity >= 0 ? count === arity : count >= -arity;
}

function truncate(argument: Buffer): string {
  return argument.subarray(0, 128).toString('utf8');
}

function unknownCommandMessage(args: readonly Buffer[]): string {
  let message = `ERR unknown command '${truncate(args[0])}', with args beginning with: `;
  for (let i = 1; i < args.length && message.length < 512; i++) message += `'${truncate(args[i])}' `;
  return message;
}

// ---------------------------------------------------------------------------------------------
// Key-value commands

const read = (session: Session, key: Buffer): Promise<KeyResult> =>
  session.execute(key, { kind: 'get', consistency: session.readMode });

function keysOf(args: readonly Buffer[]): Buffer[] {
  return args.slice(1);
}

async function countApplied(session: Session, keys: readonly Buffer[], operation: KeyOperation): Promise<Reply> {
  const results = await Promise.all(keys.map((key) => session.execute(key, operation)));
  return reply.integer(results.filter((result) => result.applied).length);
}

interface SetOptions {
  onlyIfAbsent: boolean;
  onlyIfPresent: boolean;
  returnPrevious: boolean;
}

const TTL_OPTIONS = new Set(['ex', 'px', 'exat', 'pxat', 'keepttl']);

function parseSetOptions(args: readonly Buffer[]): SetOptions {
  const options: SetOptions = { onlyIfAbsent: false, onlyIfPresent: false, returnPrevious: false };
  for (const argument of args) {
    const option = argument.toString('latin1').toLowerCase();
    if (option === 'nx') options.onlyIfAbsent = true;
    else if (option === 'xx') options.onlyIfPresent = true;
    else if (option === 'get') options.returnPrevious = true;
    else if (TTL_OPTIONS.has(option)) throw invalid('TTL is not supported yet (EX/PX/EXAT/PXAT/KEEPTTL)');
    else throw syntaxError();
  }
  if (options.onlyIfAbsent && options.onlyIfPresent) throw syntaxError();
  return options;
}

async function set(session: Session, args: readonly Buffer[]): Promise<Reply> {
  const options = parseSetOptions(args.slice(3));
  const result = await session.execute(args[1], {
    kind: 'set',
    value: args[2],
    onlyIfAbsent: options.onlyIfAbsent,
    onlyIfPresent: options.onlyIfPresent,
  });
  if (options.returnPrevious) return reply.bulk(result.value);
  return result.applied ? reply.ok : reply.nullBulk;
}

async function mset(session: Session, args: readonly Buffer[]): Promise<Reply> {
  if (args.length % 2 === 0) throw invalid("wrong number of arguments for 'mset' command");
  const writes: Promise<KeyResult>[] = [];
  for (let i = 1; i < args.length; i += 2) writes.push(session.execute(args[i], { kind: 'set', value: args[i + 1] }));
  await Promise.all(writes);
  return reply.ok;
}

const INT64_MIN = -(1n << 63n);

/** INCR-family delta from an argument; DECR-family negates it (and −INT64_MIN would overflow). */
function parseDelta(argument: Buffer, negate: boolean): bigint {
  const delta = parseInteger(argument);
  if (delta === undefined) throw notAnInteger();
  if (negate && delta === INT64_MIN) throw invalid('decrement would overflow');
  return negate ? -delta : delta;
}

async function incrementBy(session: Session, key: Buffer, delta: bigint): Promise<Reply> {
  let result: KeyResult;
  try {
    result = await session.execute(key, { kind: 'incr', delta });
  } catch (error) {
    if (error instanceof PaxosStoreError && error.code === 'WRONG_TYPE') throw notAnInteger();
    throw error;
  }
  const value = parseInteger(result.value);
  assert(value !== undefined && result.value !== null, 'incr result is the new integer value');
  return reply.integer(value);
}

// The CAS extension: every key has a version (0 = never written, +1 per applied write, deletes
// included). PAXOS.GET returns it; PAXOS.CAS and PAXOS.DEL apply only if it still matches.

function parseVersion(argument: Buffer): number {
  const version = parseInteger(argument);
  if (version === undefined || version < 0n || version > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw invalid('version is not a non-negative integer');
  }
  return Number(version);
}

async function versionedWrite(session: Session, key: Buffer, operation: KeyOperation): Promise<Reply> {
  const result = await session.execute(key, operation);
  return result.applied ? reply.integer(result.version) : reply.nullBulk;
}

// ---------------------------------------------------------------------------------------------
// Connection and server commands

function hello(session: Session, args: readonly Buffer[]): Reply {
  if (args.length >= 2) {
    const version = parseInteger(args[1]);
    if (version === undefined) throw invalid('Protocol version is not an integer or out of range');
    if (version !== 2n) return reply.error('NOPROTO sorry, this protocol version is not supported');
  }
  for (let i = 2; i < args.length; i++) {
    const option = args[i].toString('latin1').toLowerCase();
    if (option === 'setname' && i + 1 < args.length) {
      setName(session, args[++i]);
    } else if (option === 'auth' && i + 2 < args.length) {
      throw invalid('AUTH is not supported: this server has no passwords configured');
    } else {
      throw invalid(`Syntax error in HELLO option '${truncate(args[i])}'`);
    }
  }
  return reply.array([
    reply.bulk('server'),
    reply.bulk(SERVER_NAME),
    reply.bulk('version'),
    reply.bulk(REDIS_COMPATIBLE_VERSION),
    reply.bulk('proto'),
    reply.integer(2),
    reply.bulk('id'),
    reply.integer(session.id),
    reply.bulk('mode'),
    reply.bulk('standalone'),
    reply.bulk('role'),
    reply.bulk('master'),
    reply.bulk('modules'),
    reply.array([]),
  ]);
}

function setName(session: Session, name: Buffer): void {
  // Redis refuses names that would break the space-separated CLIENT LIST format.
  for (const byte of name) {
    if (byte <= 0x20 || byte >= 0x7f) throw invalid('Client names cannot contain spaces, newlines or special characters.');
  }
  session.name = name.length === 0 ? null : name.toString('latin1');
}

function clientSetInfo(session: Session, args: readonly Buffer[]): Reply {
  const attribute = args[2].toString('latin1').toLowerCase();
  const value = args[3].toString('latin1');
  if (/[\s]/.test(value)) throw invalid(`${attribute} cannot contain spaces, newlines or special characters.`);
  if (attribute === 'lib-name') session.libraryName = value;
  else if (attribute === 'lib-ver') session.libraryVersion = value;
  else throw invalid(`Unrecognized option '${truncate(args[2])}'`);
  return reply.ok;
}

function clientReadMode(session: Session, args: readonly Buffer[]): Reply {
  if (args.length === 2) return reply.bulk(session.readMode);
  const mode = args[2].toString('latin1').toLowerCase();
  if (mode !== 'linearizable' && mode !== 'local') throw invalid("read mode must be 'linearizable' or 'local'");
  session.readMode = mode;
  return reply.ok;
}

function select(_session: Session, args: readonly Buffer[]): Reply {
  const index = parseInteger(args[1]);
  if (index === undefined) throw notAnInteger();
  if (index !== 0n) throw invalid('DB index is out of range');
  return reply.ok;
}

function quit(session: Session): Reply {
  session.closeRequested = true;
  return reply.ok;
}

function infoText(session: Session, args: readonly Buffer[]): Reply {
  const facts = session.server;
  const router = facts.routerInfo();
  const uptimeSeconds = Math.floor((Date.now() - facts.startedMs) / 1000);
  const counters = facts.counters();
  const sections: Record<string, string[]> = {
    server: [
      `redis_version:${REDIS_COMPATIBLE_VERSION}`,
      `paxosstore_version:${SERVER_VERSION}`,
      'redis_mode:standalone',
      `process_id:${process.pid}`,
      `tcp_port:${facts.port}`,
      `uptime_in_seconds:${uptimeSeconds}`,
      `uptime_in_days:${Math.floor(uptimeSeconds / 86400)}`,
      `node_version:${process.versions.node}`,
    ],
    clients: [`connected_clients:${facts.connectionCount()}`, `maxclients:${facts.connectionsMax}`],
    persistence: ['loading:0', 'durability:fdatasync on a majority of replicas before a write is acknowledged'],
    stats: Object.entries(counters).map(([name, value]) => `${name}:${value}`),
    replication: [
      'role:master',
      'connected_slaves:0',
      `paxos_replica_id:${router.replicaId}`,
      `paxos_replica_count:${router.replicaCount}`,
      `paxos_shard_count:${router.shardCount}`,
      `paxos_uptime_in_seconds:${router.uptimeSeconds}`,
    ],
    router: Object.entries(router.counters).map(([name, value]) => `router_${name}:${value}`),
    // Key counts are spread over shards and replicas; there is no cheap exact DBSIZE (see DBSIZE).
    keyspace: [],
  };
  const requested = args.slice(1).map((argument) => argument.toString('latin1').toLowerCase());
  const all = requested.length === 0 || requested.some((name) => ['all', 'everything', 'default'].includes(name));
  const lines: string[] = [];
  for (const [name, body] of Object.entries(sections)) {
    if (!all && !requested.includes(name)) continue;
    if (lines.length > 0) lines.push('');
    lines.push(`# ${name[0].toUpperCase()}${name.slice(1)}`, ...body);
  }
  lines.push('');
  return reply.bulk(lines.join('\r\n'));
}

function configValues(session: Session): Record<string, string> {
  return {
    databases: '1',
    save: '',
    appendonly: 'yes',
    appendfsync: 'always',
    maxclients: String(session.server.connectionsMax),
    'proto-max-bulk-len': String(session.server.bulkBytesMax),
  };
}

function globToRegExp(pattern: string): RegExp {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`, 'i');
}

function configGet(session: Session, args: readonly Buffer[]): Reply {
  const patterns = args.slice(2).map((argument) => globToRegExp(argument.toString('latin1')));
  const items: Reply[] = [];
  for (const [name, value] of Object.entries(configValues(session))) {
    if (patterns.some((pattern) => pattern.test(name))) items.push(reply.bulk(name), reply.bulk(value));
  }
  return reply.array(items);
}

function help(lines: readonly string[]): Handler {
  return () => reply.array(lines.map((line) => reply.simple(line)));
}

// ---------------------------------------------------------------------------------------------
// COMMAND introspection

function commandInfo(spec: CommandSpec): Reply {
  const [first, last, step] = spec.keys;
  const subcommands = spec.subcommands === undefined ? [] : [...spec.subcommands.values()].map(commandInfo);
  return reply.array([
    reply.bulk(spec.name),
    reply.integer(spec.arity),
    reply.array(spec.flags.map((flag) => reply.simple(flag))),
    reply.integer(first),
    reply.integer(last),
    reply.integer(step),
    reply.array([]),
    reply.array([]),
    reply.array([]),
    reply.array(subcommands),
  ]);
}

/** COMMAND DOCS argument maps from the compact syntax string. */
function argumentDocs(syntax: string): Reply[] {
  const docs: Reply[] = [];
  for (let word of syntax.split(' ').filter((part) => part.length > 0)) {
    const flags: Reply[] = [];
    if (word.startsWith('[') && word.endsWith(']')) {
      word = word.slice(1, -1);
      flags.push(reply.simple('optional'));
    }
    if (word.endsWith('...')) {
      word = word.slice(0, -3);
      flags.push(reply.simple('multiple'));
    }
    const fields: Reply[] = [];
    if (word.includes('|')) {
      const choices = word.split('|').map((token) => docMap({ name: token.toLowerCase(), type: 'pure-token', token }));
      fields.push(...docFields({ name: 'condition', type: 'oneof' }), reply.bulk('arguments'), reply.array(choices));
    } else if (word === word.toUpperCase() && /[A-Z]/.test(word)) {
      fields.push(...docFields({ name: word.toLowerCase(), type: 'pure-token', token: word }));
    } else {
      const type = word === 'key' ? 'key' : ['version', 'increment', 'decrement', 'index', 'protover'].includes(word) ? 'integer' : 'string';
      fields.push(...docFields({ name: word, type }));
    }
    if (flags.length > 0) fields.push(reply.bulk('flags'), reply.array(flags));
    docs.push(reply.array(fields));
  }
  return docs;
}

function docFields(fields: Record<string, string>): Reply[] {
  return Object.entries(fields).flatMap(([name, value]) => [reply.bulk(name), reply.bulk(value)]);
}

function docMap(fields: Record<string, string>): Reply {
  return reply.array(docFields(fields));
}

function commandDocs(spec: CommandSpec): Reply {
  const fields = docFields({ summary: spec.summary, since: spec.since, group: spec.group });
  fields.push(reply.bulk('arguments'), reply.array(argumentDocs(spec.syntax)));
  if (spec.subcommands !== undefined) {
    const subcommands = [...spec.subcommands.values()].flatMap((sub) => [reply.bulk(sub.name), commandDocs(sub)]);
    fields.push(reply.bulk('subcommands'), reply.array(subcommands));
  }
  return reply.array(fields);
}

function requestedSpecs(args: readonly Buffer[]): (CommandSpec | undefined)[] {
  return args.slice(2).map((argument) => COMMANDS.get(argument.toString('latin1').toLowerCase()));
}

function commandDocsReply(_session: Session, args: readonly Buffer[]): Reply {
  const specs = args.length > 2 ? requestedSpecs(args) : [...COMMANDS.values()];
  const items: Reply[] = [];
  for (const spec of specs) if (spec !== undefined) items.push(reply.bulk(spec.name), commandDocs(spec));
  return reply.array(items);
}

function commandInfoReply(_session: Session, args: readonly Buffer[]): Reply {
  const specs = args.length > 2 ? requestedSpecs(args) : [...COMMANDS.values()];
  return reply.array(specs.map((spec) => (spec === undefined ? reply.array(null) : commandInfo(spec))));
}

// ---------------------------------------------------------------------------------------------
// The table

interface SpecFields extends Omit<CommandSpec, 'subcommands' | 'keys' | 'since' | 'syntax'> {
  readonly keys?: readonly [number, number, number];
  readonly since?: string;
  readonly syntax?: string;
  readonly subcommands?: readonly CommandSpec[];
}

function spec(fields: SpecFields): CommandSpec {
  const subcommands = fields.subcommands === undefined ? undefined : new Map(fields.subcommands.map((sub) => [sub.name, sub]));
  return { keys: [0, 0, 0], since: '1.0.0', syntax: '', ...fields, subcommands };
}

const ONE_KEY: readonly [number, number, number] = [1, 1, 1];
const ALL_KEYS: readonly [number, number, number] = [1, -1, 1];

/** Subcommand handlers (the parent has no handler of its own besides arity). */
function parentWithoutSubcommand(name: string): Handler {
  return () => {
    throw invalid(`wrong number of arguments for '${name}' command`);
  };
}

const CLIENT_HELP = [
  'CLIENT <subcommand> [<arg> ...]. Subcommands are:',
  'ID', 'GETNAME', 'SETNAME <name>', 'INFO', 'LIST', 'SETINFO <LIB-NAME|LIB-VER> <value>',
  'READMODE [LINEARIZABLE|LOCAL]', '    Reads on this connection: linearizable (default) or local (may be stale).',
];
const COMMAND_HELP = ['COMMAND <subcommand> [<arg> ...]. Subcommands are:', '(no subcommand)', 'COUNT', 'DOCS [<command-name> ...]', 'INFO [<command-name> ...]', 'LIST'];

const CLIENT_SUBCOMMANDS: CommandSpec[] = [
  spec({ name: 'client|id', arity: 2, flags: ['noscript', 'loading', 'stale'], group: 'connection', summary: 'Returns the unique client ID of the connection.', since: '5.0.0', handler: (s) => reply.integer(s.id) }),
  spec({ name: 'client|getname', arity: 2, flags: ['noscript', 'loading', 'stale'], group: 'connection', summary: 'Returns the name of the connection.', since: '2.6.9', handler: (s) => reply.bulk(s.name) }),
  spec({
    name: 'client|setname', arity: 3, flags: ['noscript', 'loading', 'stale'], group: 'connection', summary: 'Sets the connection name.', since: '2.6.9', syntax: 'connection-name',
    handler: (s, args) => {
      setName(s, args[2]);
      return reply.ok;
    },
  }),
  spec({ name: 'client|setinfo', arity: 4, flags: ['noscript', 'loading', 'stale'], group: 'connection', summary: 'Sets information specific to the client or connection.', since: '7.2.0', syntax: 'LIB-NAME|LIB-VER value', handler: clientSetInfo }),
  spec({ name: 'client|info', arity: 2, flags: ['noscript', 'loading', 'stale'], group: 'connection', summary: 'Returns information about the connection.', since: '6.2.0', handler: (s) => reply.bulk(`${s.describe(Date.now())}\n`) }),
  spec({ name: 'client|list', arity: -2, flags: ['admin', 'noscript', 'loading', 'stale'], group: 'connection', summary: 'Lists open connections.', since: '2.4.0', handler: (s) => reply.bulk(s.server.clientLines().map((line) => `${line}\n`).join('')) }),
  spec({ name: 'client|readmode', arity: -2, flags: ['noscript', 'loading', 'stale', 'fast'], group: 'connection', summary: 'Gets or sets whether reads on this connection are linearizable (default) or local (possibly stale).', since: '0.1.0 (paxosstore)', syntax: '[LINEARIZABLE|LOCAL]', handler: clientReadMode }),
  spec({ name: 'client|help', arity: 2, flags: ['loading', 'stale'], group: 'connection', summary: 'Returns helpful text about the different subcommands.', since: '5.0.0', handler: help(CLIENT_HELP) }),
];

const COMMAND_SUBCOMMANDS: CommandSpec[] = [
  spec({ name: 'command|count', arity: 2, flags: ['loading', 'stale'], group: 'server', summary: 'Returns a count of commands.', since: '2.8.13', handler: () => reply.integer(COMMANDS.size) }),
  spec({ name: 'command|docs', arity: -2, flags: ['loading', 'stale'], group: 'server', summary: 'Returns documentary information about one, multiple or all commands.', since: '7.0.0', syntax: '[command-name...]', handler: commandDocsReply }),
  spec({ name: 'command|info', arity: -2, flags: ['loading', 'stale'], group: 'server', summary: 'Returns information about one, multiple or all commands.', since: '2.8.13', syntax: '[command-name...]', handler: commandInfoReply }),
  spec({ name: 'command|list', arity: -2, flags: ['loading', 'stale'], group: 'server', summary: 'Returns a list of command names.', since: '7.0.0', handler: () => reply.array([...COMMANDS.keys()].map((name) => reply.bulk(name))) }),
  spec({ name: 'command|help', arity: 2, flags: ['loading', 'stale'], group: 'server', summary: 'Returns helpful text about the different subcommands.', since: '5.0.0', handler: help(COMMAND_HELP) }),
];

const CONFIG_SUBCOMMANDS: CommandSpec[] = [
  spec({ name: 'config|get', arity: -3, flags: ['admin', 'noscript', 'loading', 'stale'], group: 'server', summary: 'Returns the effective values of configuration parameters (a read-only Redis-compatible subset).', since: '2.0.0', syntax: 'parameter...', handler: configGet }),
  spec({ name: 'config|set', arity: -4, flags: ['admin', 'noscript', 'loading', 'stale'], group: 'server', summary: 'Not supported: configure paxosstore through its command line or config file.', since: '2.0.0', syntax: 'parameter value', handler: () => { throw invalid('CONFIG SET is not supported; configure paxosstore through its command line or config file'); } }),
];

const TABLE: CommandSpec[] = [
  spec({ name: 'get', arity: 2, flags: ['readonly', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Returns the string value of a key.', syntax: 'key', handler: async (s, args) => reply.bulk((await read(s, args[1])).value) }),
  spec({ name: 'set', arity: -3, flags: ['write', 'denyoom'], keys: ONE_KEY, group: 'string', summary: 'Sets the string value of a key. NX, XX and GET are supported; TTL options are refused.', syntax: 'key value [NX|XX] [GET]', handler: set }),
  spec({ name: 'getset', arity: 3, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Returns the previous string value of a key after setting it to a new value.', syntax: 'key value', handler: async (s, args) => reply.bulk((await s.execute(args[1], { kind: 'set', value: args[2] })).value) }),
  spec({ name: 'del', arity: -2, flags: ['write'], keys: ALL_KEYS, group: 'generic', summary: 'Deletes one or more keys (not atomic across keys).', syntax: 'key...', handler: (s, args) => countApplied(s, keysOf(args), { kind: 'delete' }) }),
  spec({ name: 'exists', arity: -2, flags: ['readonly', 'fast'], keys: ALL_KEYS, group: 'generic', summary: 'Counts how many of the given keys exist.', since: '1.0.0', syntax: 'key...', handler: async (s, args) => reply.integer((await Promise.all(keysOf(args).map((key) => read(s, key)))).filter((result) => result.value !== null).length) }),
  spec({ name: 'mget', arity: -2, flags: ['readonly', 'fast'], keys: ALL_KEYS, group: 'string', summary: 'Returns the string values of one or more keys (each read linearizable on its own, not a snapshot).', syntax: 'key...', handler: async (s, args) => reply.array((await Promise.all(keysOf(args).map((key) => read(s, key)))).map((result) => reply.bulk(result.value))) }),
  spec({ name: 'mset', arity: -3, flags: ['write', 'denyoom'], keys: [1, -1, 2], group: 'string', summary: 'Sets the string values of one or more keys (not atomic across keys).', syntax: 'key value [key value...]', handler: mset }),
  spec({ name: 'incr', arity: 2, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Increments the integer value of a key by one.', syntax: 'key', handler: (s, args) => incrementBy(s, args[1], 1n) }),
  spec({ name: 'decr', arity: 2, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Decrements the integer value of a key by one.', syntax: 'key', handler: (s, args) => incrementBy(s, args[1], -1n) }),
  spec({ name: 'incrby', arity: 3, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Increments the integer value of a key by a number.', syntax: 'key increment', handler: (s, args) => incrementBy(s, args[1], parseDelta(args[2], false)) }),
  spec({ name: 'decrby', arity: 3, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Decrements the integer value of a key by a number.', syntax: 'key decrement', handler: (s, args) => incrementBy(s, args[1], parseDelta(args[2], true)) }),
  spec({ name: 'append', arity: 3, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Appends a string to the value of a key; returns the new length.', since: '2.0.0', syntax: 'key value', handler: async (s, args) => reply.integer((await s.execute(args[1], { kind: 'append', value: args[2] })).value?.length ?? 0) }),
  spec({ name: 'paxos.get', arity: 2, flags: ['readonly', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Returns [value, version] of a key; version 0 = never written.', since: '0.1.0 (paxosstore)', syntax: 'key', handler: async (s, args) => { const result = await read(s, args[1]); return reply.array([reply.bulk(result.value), reply.integer(result.version)]); } }),
  spec({ name: 'paxos.set', arity: 3, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Sets a key unconditionally; returns its new version.', since: '0.1.0 (paxosstore)', syntax: 'key value', handler: (s, args) => versionedWrite(s, args[1], { kind: 'set', value: args[2] }) }),
  spec({ name: 'paxos.cas', arity: 4, flags: ['write', 'denyoom', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Sets a key only if its version equals the given one; returns the new version, or nil on mismatch.', since: '0.1.0 (paxosstore)', syntax: 'key version value', handler: (s, args) => versionedWrite(s, args[1], { kind: 'set', value: args[3], ifVersion: parseVersion(args[2]) }) }),
  spec({ name: 'paxos.del', arity: 3, flags: ['write', 'fast'], keys: ONE_KEY, group: 'string', summary: 'Deletes a key only if its version equals the given one; returns the new version, or nil on mismatch or an absent key.', since: '0.1.0 (paxosstore)', syntax: 'key version', handler: (s, args) => versionedWrite(s, args[1], { kind: 'delete', ifVersion: parseVersion(args[2]) }) }),
  spec({ name: 'ping', arity: -1, flags: ['fast', 'stale', 'loading'], group: 'connection', summary: 'Returns PONG, or the message.', syntax: '[message]', handler: (_s, args) => { if (args.length > 2) throw invalid("wrong number of arguments for 'ping' command"); return args.length === 2 ? reply.bulk(args[1]) : reply.simple('PONG'); } }),
  spec({ name: 'echo', arity: 2, flags: ['fast', 'stale', 'loading'], group: 'connection', summary: 'Returns the given string.', syntax: 'message', handler: (_s, args) => reply.bulk(args[1]) }),
  spec({ name: 'hello', arity: -1, flags: ['noscript', 'loading', 'stale', 'fast', 'no-auth'], group: 'connection', summary: 'Handshakes with the server; only protocol 2 (RESP2) is spoken.', since: '6.0.0', syntax: '[protover] [SETNAME] [clientname]', handler: hello }),
  spec({ name: 'select', arity: 2, flags: ['loading', 'stale', 'fast'], group: 'connection', summary: 'Selects the database; only database 0 exists.', syntax: 'index', handler: select }),
  spec({ name: 'quit', arity: -1, flags: ['noscript', 'loading', 'stale', 'fast', 'no-auth'], group: 'connection', summary: 'Closes the connection after replying OK.', handler: quit }),
  spec({ name: 'client', arity: -2, flags: [], group: 'connection', summary: 'A container for client connection commands.', since: '2.4.0', handler: parentWithoutSubcommand('client'), subcommands: CLIENT_SUBCOMMANDS }),
  spec({ name: 'info', arity: -1, flags: ['loading', 'stale'], group: 'server', summary: 'Returns information and statistics about the server.', syntax: '[section...]', handler: infoText }),
  spec({ name: 'dbsize', arity: 1, flags: ['readonly', 'fast'], group: 'server', summary: 'Not supported: keys are spread over shards and replicas without a leader, so there is no cheap exact count.', handler: () => { throw invalid('DBSIZE is not supported: keys are spread over shards and leaseless replicas, so there is no cheap exact count'); } }),
  spec({ name: 'command', arity: -1, flags: ['loading', 'stale'], group: 'server', summary: 'Returns detailed information about all commands.', since: '2.8.13', handler: commandInfoReply, subcommands: COMMAND_SUBCOMMANDS }),
  spec({ name: 'config', arity: -2, flags: [], group: 'server', summary: 'A container for server configuration commands.', since: '2.0.0', handler: parentWithoutSubcommand('config'), subcommands: CONFIG_SUBCOMMANDS }),
];

export const COMMANDS: ReadonlyMap<string, CommandSpec> = new Map(TABLE.map((entry) => [entry.name, entry]));
