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

/** Messages from one replica to another in one scheduler turn (one transport call per peer). */
export interface PeerBatch {
  readonly from: number;
  readonly messages: readonly PeerMessage[];
}
