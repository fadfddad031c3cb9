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
import type { AcceptorState } from '../consensus/paxos-log.js';
import type { StateSummary } from '../consensus/instance.js';
import type { SlotValue } from './slot-codec.js';

export type LogMessage =
  | { readonly kind: 'state'; readonly loglet: number; readonly slot: number; readonly sender: AcceptorState; readonly viewOfReceiver: StateSummary }
  | { readonly kind: 'chosen'; readonly loglet: number; readonly slot: number; readonly value: SlotValue }
  | { readonly kind: 'tailQuery'; readonly loglet: number; readonly queryId: number }
  | { readonly kind: 'tailReply'; readonly loglet: number; readonly queryId: number; readonly tail: number }
  | { readonly kind: 'trimmed'; readonly loglet: number; readonly trimSlot: number };
