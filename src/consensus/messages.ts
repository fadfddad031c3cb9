/**
 * Peer messages of the consensus layer: the one module for the replica-to-replica wire boundary.
 * Plain objects (msgpackr-friendly), keys and values as Uint8Array. Every message names a key and
 * carries the sender's chosen entry id for it, so any traffic reveals a lagging replica.
 *
 *   paxos       M(X→Y) of Algorithm 1 for entry `entryId` (= sender's chosen + 1): the sender's
 *               own state and the ballots of its view of the receiver.
 *   chosen      catch-up: the sender's chosen entry (a full snapshot of the key).
 *   fetch       "I am at chosenId; send me your chosen entry if you are ahead".
 *   readQuery   consistent read: "report your chosen id and whether you accepted anything beyond".
 *   readReply   answer to readQuery `readId`.
 */
import type { AcceptorState, ChosenEntry } from './paxos-log.js';
import { EncodedPayload } from './wire-codec.js';
import type { StateSummary } from './instance.js';

export type PeerMessage = PaxosMessage | ChosenMessage | FetchMessage | ReadQueryMessage | ReadReplyMessage;

export interface PaxosMessage {
  readonly type: 'paxos';
  readonly key: Uint8Array;
  readonly chosenId: number;
  readonly entryId: number;
  readonly sender: AcceptorState;
  readonly viewOfReceiver: StateSummary;
}

export interface ChosenMessage {
  readonly type: 'chosen';
  readonly key: Uint8Array;
  readonly chosenId: number;
  readonly entry: ChosenEntry;
}

export interface FetchMessage {
  readonly type: 'fetch';
  readonly key: Uint8Array;
  readonly chosenId: number;
}

export interface ReadQueryMessage {
  readonly type: 'readQuery';
  readonly key: Uint8Array;
  readonly chosenId: number;
  readonly readId: number;
}

export interface ReadReplyMessage {
  readonly type: 'readReply';
  readonly key: Uint8Array;
  readonly chosenId: number;
  readonly readId: number;
  /** The replier holds an accepted proposal for entry chosenId + 1 (possibly chosen, unknown to it). */
  readonly acceptedBeyondChosen: boolean;
}

/**
 * Full shape check of a decoded peer message (the wire boundary: everything past it trusts its
 * input). Peers are authenticated, so a failure means a bug or a version mismatch on the peer;
 * the message is dropped and counted, never allowed to throw inside the core.
 */
export function isValidPeerMessage(message: unknown, keyBytesMax: number): message is PeerMessage {
  if (typeof message !== 'object' || message === null) return false;
  const candidate = message as Record<string, unknown>;
  if (!(candidate.key instanceof Uint8Array) || candidate.key.length > keyBytesMax || !isCount(candidate.chosenId)) return false;
  switch (candidate.type) {
    case 'paxos':
      return isCount(candidate.entryId) && isAcceptorState(candidate.sender) && isStateSummary(candidate.viewOfReceiver);
    case 'chosen':
      return isChosenEntry(candidate.entry);
    case 'fetch':
      return true;
    case 'readQuery':
      return isCount(candidate.readId);
    case 'readReply':
      return isCount(candidate.readId) && typeof candidate.acceptedBeyondChosen === 'boolean';
    default:
      return false;
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isBallot(value: unknown): boolean {
  const ballot = value as { round?: unknown; replicaId?: unknown } | null;
  return typeof ballot === 'object' && ballot !== null && isCount(ballot.round) && isCount(ballot.replicaId);
}

function isBytesOrNull(value: unknown): boolean {
  return value === null || value instanceof Uint8Array;
}

function isPayload(value: unknown): boolean {
  if (value instanceof EncodedPayload) return true; // checked field by field when it was decoded
  const payload = value as Record<string, unknown> | null;
  if (typeof payload !== 'object' || payload === null || !isBytesOrNull(payload.value) || !isCount(payload.proposerId)) return false;
  const requestId = payload.requestId as Record<string, unknown> | null;
  if (requestId !== null && (typeof requestId !== 'object' || typeof requestId.clientId !== 'string' || typeof requestId.timestampMs !== 'number' || !isCount(requestId.sequence))) {
    return false;
  }
  if (!Array.isArray(payload.sessions)) return false;
  return payload.sessions.every((session: Record<string, unknown> | null) => {
    const result = session?.result as Record<string, unknown> | undefined;
    return (
      typeof session?.clientId === 'string' &&
      isCount(session.sequence) &&
      typeof result === 'object' &&
      result !== null &&
      typeof result.applied === 'boolean' &&
      isCount(result.version) &&
      isBytesOrNull(result.value)
    );
  });
}

function isAcceptorState(value: unknown): boolean {
  const state = value as { promised?: unknown; accepted?: { ballot?: unknown; payload?: unknown } | null } | null;
  if (typeof state !== 'object' || state === null || !isBallot(state.promised)) return false;
  const accepted = state.accepted;
  return accepted === null || (typeof accepted === 'object' && accepted !== undefined && isBallot(accepted.ballot) && isPayload(accepted.payload));
}

function isStateSummary(value: unknown): boolean {
  const summary = value as { promised?: unknown; acceptedBallot?: unknown } | null;
  return typeof summary === 'object' && summary !== null && isBallot(summary.promised) && (summary.acceptedBallot === null || isBallot(summary.acceptedBallot));
}

function isChosenEntry(value: unknown): boolean {
  const entry = value as { entryId?: unknown; payload?: unknown } | null;
  if (typeof entry !== 'object' || entry === null || !isCount(entry.entryId)) return false;
  return entry.entryId === 0 ? entry.payload === null : isPayload(entry.payload);
}
