/**
 * Messages between the replicas of the shared log (one typed module per boundary, STYLE §4).
 * Every message names its loglet; the MetaStore is loglet 0.
 *
 *   state    M(X→Y) of PaxosStore Algorithm 1 for one slot: X's own state and X's view of Y
 *   chosen   a decided slot (sent once by every replica that records the decision, and as the
 *            reply to a state message about a slot the receiver already knows is decided)
 *   tail     a tail query and its reply: the highest slot the sender accepted or knows chosen, + 1
 *   trimmed  the receiver asked about a slot below the sender's prefix trim
 */
import { isValidPeerMessage } from '../consensus/messages.js';
import type { AcceptorState } from '../consensus/paxos-log.js';
import type { StateSummary } from '../consensus/instance.js';
import type { SlotValue } from './slot-codec.js';

export type LogMessage =
  | { readonly kind: 'state'; readonly loglet: number; readonly slot: number; readonly sender: AcceptorState; readonly viewOfReceiver: StateSummary }
  | { readonly kind: 'chosen'; readonly loglet: number; readonly slot: number; readonly value: SlotValue }
  | { readonly kind: 'tailQuery'; readonly loglet: number; readonly queryId: number }
  | { readonly kind: 'tailReply'; readonly loglet: number; readonly queryId: number; readonly tail: number }
  | { readonly kind: 'trimmed'; readonly loglet: number; readonly trimSlot: number };

const PAXOS_CHECK_KEY = new Uint8Array(0);

/**
 * Full shape check of a log message that arrived from a peer (the wire boundary: loglets trust
 * what passes). The Paxos state inside a `state` message is checked by the consensus layer's own
 * validator, wrapped as the per-key message of the same shape.
 */
export function isLogMessage(value: unknown): value is LogMessage {
  if (typeof value !== 'object' || value === null) return false;
  const message = value as Record<string, unknown>;
  if (!isCount(message.loglet)) return false;
  switch (message.kind) {
    case 'state':
      return (
        isCount(message.slot) &&
        isValidPeerMessage({ type: 'paxos', key: PAXOS_CHECK_KEY, chosenId: 0, entryId: 0, sender: message.sender, viewOfReceiver: message.viewOfReceiver }, 0)
      );
    case 'chosen':
      return isCount(message.slot) && isSlotValue(message.value);
    case 'tailQuery':
      return isCount(message.queryId);
    case 'tailReply':
      return isCount(message.queryId) && isCount(message.tail);
    case 'trimmed':
      return isCount(message.trimSlot);
    default:
      return false;
  }
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isSlotValue(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const slot = value as Record<string, unknown>;
  return (
    (slot.kind === 'data' || slot.kind === 'noop' || slot.kind === 'seal') &&
    (slot.data === null || slot.data instanceof Uint8Array) &&
    isCount(slot.proposerId) &&
    typeof slot.token === 'string'
  );
}
