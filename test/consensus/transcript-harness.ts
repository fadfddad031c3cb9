/**
 * A data-driven transcript harness in the style of etcd raft's `testdata/*.txt`: a small script of
 * commands against a 3-replica group (the real Replica class, turns run by the harness, storage
 * durable at once), each followed by `----` and the output it must produce. REWRITE=1 regenerates
 * the expected output (then read the diff before committing it).
 *
 * Commands:
 *   write <replica> <key> set <value> [ifVersion=<n>] [nx] [xx] | delete | incr <delta> | append <value>
 *   get <replica> <key> [local]
 *   gets <replica> <key> <n>   n linearizable gets of the key submitted in one turn
 *   deliver [<from>-><to> …]   deliver the messages queued now (all, or only those links); print them
 *   stabilize                  deliver until no message is queued (bounded)
 *   drop [<from>-><to> …]      discard queued messages (all, or only those links)
 *   partition <replica>        from now on, drop everything to and from this replica; `heal` ends it
 *   wipe <replica>             the replica loses its disk and restarts in rebuilding mode
 *   tick <n>                   advance every replica's clock
 *   state <key>                each replica's chosen entry and own state of the open entry
 * Completions of requests print after each command as `rN: <request> → <result>`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { KeyOperation } from '../../src/api/operations.js';
import { formatBallot } from '../../src/consensus/ballot.js';
import type { PeerMessage } from '../../src/consensus/messages.js';
import type { AcceptorState } from '../../src/consensus/paxos-log.js';
import { keyName } from '../../src/util/byte-codec.js';
import { Replica } from '../../src/consensus/replica.js';
import { Random } from '../../src/util/random.js';

interface Queued {
  readonly from: number;
  readonly to: number;
  readonly message: PeerMessage;
}

const encoder = new TextEncoder();
const text = (bytes: Uint8Array | null | undefined): string => (bytes === null || bytes === undefined ? 'nil' : JSON.stringify(Buffer.from(bytes).toString('latin1')));

export class TranscriptCluster {
  readonly replicas = new Map<number, Replica>();
  private queue: Queued[] = [];
  private readonly output: string[] = [];
  private readonly isolated = new Set<number>();
  private sequence = 0;

  private readonly ids: number[];

  constructor(replicaCount = 3) {
    this.ids = Array.from({ length: replicaCount }, (_, index) => index + 1);
    for (const id of this.ids) this.start(id, new Map(), false);
  }

  /** (Re)starts a replica over `durable`; `rebuilding` after a wipe. */
  private start(id: number, durable: Map<string, Uint8Array>, rebuilding: boolean): void {
    this.replicas.set(
      id,
      new Replica({
        replicaId: id,
        replicaIds: this.ids,
        storage: {
          load: (key) => durable.get(keyName(key)),
          commit: (records, done) => {
            for (const record of records) durable.set(keyName(record.key), record.value);
            done();
          },
        },
        transport: (peer, messages) => {
          for (const message of messages) this.queue.push({ from: id, to: peer, message });
        },
        random: new Random(id),
        turns: 'manual',
        rebuilding,
        config: { resendTicks: 50, phaseTimeoutTicks: 200, readTimeoutTicks: 30, backoffTicks: 2 },
      }),
    );
  }

  run(command: string): string {
    const [verb, ...args] = command.trim().split(/\s+/);
    switch (verb) {
      case 'write':
      case 'get':
        this.submit(verb, args);
        this.turns();
        break;
      case 'gets':
        for (let index = 0; index < Number(args[2]); index++) this.submit('get', args.slice(0, 2));
        this.turns();
        break;
      case 'deliver':
        this.deliver(args);
        break;
      case 'stabilize':
        this.turns();
        for (let round = 0; round < 50 && this.queue.length > 0; round++) this.deliver([]);
        break;
      case 'drop':
        this.queue = this.queue.filter((queued) => !matches(queued, args));
        break;
      case 'partition':
        this.isolated.add(Number(args[0]));
        break;
      case 'wipe':
        this.replicas.get(Number(args[0]))!.close();
        this.queue = this.queue.filter((queued) => queued.from !== Number(args[0]) && queued.to !== Number(args[0]));
        this.start(Number(args[0]), new Map(), true);
        break;
      case 'heal':
        this.isolated.clear();
        break;
      case 'tick':
        for (const replica of this.replicas.values()) replica.tick(Number(args[0]));
        this.turns();
        break;
      case 'state':
        this.state(args[0]);
        break;
      default:
        throw new Error(`unknown command ${verb}`);
    }
    const result = this.output.join('\n');
    this.output.length = 0;
    return result;
  }

  private submit(verb: string, args: string[]): void {
    const replicaId = Number(args[0]);
    const key = args[1];
    const operation = verb === 'get' ? ({ kind: 'get', consistency: args[2] === 'local' ? 'local' : 'linearizable' } as const) : parseWrite(args.slice(2));
    const sequence = ++this.sequence;
    const label = `t#${sequence} ${verb === 'get' ? 'get' : operation.kind} ${key}`;
    this.replicas.get(replicaId)!.submit(encoder.encode(key), operation, { clientId: `t${sequence}`, timestampMs: 0, sequence }, (outcome) => {
      this.output.push(
        outcome.ok
          ? `r${replicaId}: ${label} → ok applied=${outcome.value.applied} v${outcome.value.version} ${text(outcome.value.value)}`
          : `r${replicaId}: ${label} → ${outcome.error.code}`,
      );
    });
  }

  private deliver(links: string[]): void {
    this.turns(); // effects of commands that ran no turn (e.g. a key first touched by `state`)
    const now = this.queue.filter((queued) => matches(queued, links));
    this.queue = this.queue.filter((queued) => !matches(queued, links));
    for (const { from, to, message } of now) {
      if (this.isolated.has(from) || this.isolated.has(to)) {
        this.output.push(`r${from}->r${to} ${describeMessage(message)} (dropped: partition)`);
        continue;
      }
      this.output.push(`r${from}->r${to} ${describeMessage(message)}`);
      this.replicas.get(to)!.receive(from, [message]);
    }
    this.turns();
  }

  private turns(): void {
    for (const replica of this.replicas.values()) replica.runTurn();
  }

  private state(key: string): void {
    for (const [id, replica] of this.replicas) {
      const chosen = replica.core.chosen(key);
      const instance = replica.core.instance(key);
      const proposer = chosen.payload === null ? '' : ` by r${chosen.payload.proposerId}`;
      const learner = replica.core.canVote(key) ? '' : ' (learner)';
      this.output.push(`r${id}: chosen e${chosen.entryId} ${text(chosen.payload?.value)}${proposer}; open e${instance.entryId} ${describeState(instance.own)}${learner}`);
    }
  }
}

function matches(queued: Queued, links: string[]): boolean {
  return links.length === 0 || links.includes(`${queued.from}->${queued.to}`);
}

function parseWrite(args: string[]): KeyOperation {
  const [kind, ...rest] = args;
  switch (kind) {
    case 'set': {
      const ifVersion = rest.find((arg) => arg.startsWith('ifVersion='));
      return {
        kind: 'set',
        value: encoder.encode(rest[0]),
        ifVersion: ifVersion === undefined ? undefined : Number(ifVersion.slice('ifVersion='.length)),
        onlyIfAbsent: rest.includes('nx'),
        onlyIfPresent: rest.includes('xx'),
      };
    }
    case 'delete':
      return { kind: 'delete' };
    case 'incr':
      return { kind: 'incr', delta: BigInt(rest[0]) };
    case 'append':
      return { kind: 'append', value: encoder.encode(rest[0]) };
    default:
      throw new Error(`unknown write ${kind}`);
  }
}

function describeState(state: AcceptorState): string {
  const accepted = state.accepted === null ? '-' : `${formatBallot(state.accepted.ballot)}:${text(state.accepted.payload.value)}`;
  return `m=${formatBallot(state.promised)} P=${accepted}`;
}

export function describeMessage(message: PeerMessage): string {
  const key = Buffer.from(message.key).toString('latin1');
  switch (message.type) {
    case 'paxos':
      return `paxos ${key} e${message.entryId} c${message.chosenId} ${describeState(message.sender)}`;
    case 'chosen':
      return `chosen ${key} e${message.entry.entryId} ${text(message.entry.payload?.value)}`;
    case 'fetch':
      return `fetch ${key} c${message.chosenId}`;
    case 'readQuery':
      return `readQuery ${key} c${message.chosenId}`;
    case 'readReply':
      return `readReply ${key} c${message.chosenId} accepted=${message.acceptedBeyondChosen}`;
  }
}

/** Runs one transcript file; returns [expected, actual] texts (rewrites the file when asked). */
export function runTranscript(path: string, rewrite: boolean): { expected: string; actual: string } {
  const original = readFileSync(path, 'utf8');
  const cluster = new TranscriptCluster();
  const blocks = original.split(/\n\n+/).filter((block) => block.trim() !== '');
  const rewritten: string[] = [];
  for (const block of blocks) {
    const lines = block.split('\n');
    const separator = lines.indexOf('----');
    const commandLines = (separator === -1 ? lines : lines.slice(0, separator)).filter((line) => line.trim() !== '');
    const comments = commandLines.filter((line) => line.startsWith('#'));
    const commands = commandLines.filter((line) => !line.startsWith('#'));
    if (commands.length === 0) {
      rewritten.push(comments.join('\n'));
      continue;
    }
    const outputs = commands.map((command) => cluster.run(command)).filter((output) => output !== '');
    rewritten.push([...comments, ...commands, '----', ...(outputs.length > 0 ? outputs : ['ok'])].join('\n'));
  }
  const actual = `${rewritten.join('\n\n')}\n`;
  if (rewrite) writeFileSync(path, actual);
  return { expected: original, actual };
}
