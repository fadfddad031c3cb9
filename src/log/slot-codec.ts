/**
 * Stored and shipped forms of the shared log's slots. A loglet is a sequence of Paxos instances
 * (src/consensus/instance.ts), one per slot; each replica keeps in its LocalStore:
 *
 *   key                                   value (msgpackr array)
 *   L/<loglet 8 hex>/a/<slot 12 hex>      [promisedRound, promisedReplica, accepted | nil]   open slot
 *   L/<loglet 8 hex>/c/<slot 12 hex>      [kind, data: bin | nil, proposerId, token]         chosen slot
 *   L/<loglet 8 hex>/trim                 [trimSlot]                                        prefix trimmed
 *
 *   accepted = [round, replicaId, kind, data, proposerId, token]
 *
 * Hex slot numbers keep the LSM's bytewise order equal to slot order, so a prefix trim is one
 * range scan. When a slot is chosen, its acceptor record is replaced by the chosen record in one
 * atomic batch.
 *
 * The value of a slot has a kind: DATA (an entry of the virtual log), NOOP (written to fill a hole
 * left by a proposer that died between accept and decision) or SEAL (ends the loglet: every slot
 * after the first SEAL is void). `token` names the proposal (`replica:nonce:counter`) so a
 * proposer can tell whether the chosen value is its own.
 */
import { Packr } from 'msgpackr';
import type { Ballot } from '../consensus/ballot.js';
import type { AcceptorState, EntryPayload } from '../consensus/paxos-log.js';
import { PaxosStoreError } from '../errors.js';

export type SlotKind = 'data' | 'noop' | 'seal';

export interface SlotValue {
  readonly kind: SlotKind;
  readonly data: Uint8Array | null;
  readonly proposerId: number;
  readonly token: string;
}

const packr = new Packr({ useRecords: false, moreTypes: false });
const KINDS: readonly SlotKind[] = ['data', 'noop', 'seal'];
const encoder = new TextEncoder();

export function logletPrefix(logletId: number): string {
  return `L/${logletId.toString(16).padStart(8, '0')}/`;
}

export function acceptorKey(logletId: number, slot: number): Uint8Array {
  return encoder.encode(`${logletPrefix(logletId)}a/${slot.toString(16).padStart(12, '0')}`);
}

export function chosenKey(logletId: number, slot: number): Uint8Array {
  return encoder.encode(`${logletPrefix(logletId)}c/${slot.toString(16).padStart(12, '0')}`);
}

export function trimKey(logletId: number): Uint8Array {
  return encoder.encode(`${logletPrefix(logletId)}trim`);
}

/**
 * The consensus core's payload carries our slot value: `value` holds the encoded SlotValue and the
 * request id's clientId holds the token (the core compares proposerId and request id to assert
 * one value per ballot).
 */
export function toPayload(value: SlotValue): EntryPayload {
  return {
    value: encodeSlotValue(value),
    proposerId: value.proposerId,
    requestId: { clientId: value.token, timestampMs: 0, sequence: 0 },
    sessions: [],
  };
}

export function fromPayload(payload: EntryPayload): SlotValue {
  if (payload.value === null) throw corrupt('payload without value');
  return decodeSlotValue(payload.value);
}

export function encodeSlotValue(value: SlotValue): Uint8Array {
  return packr.pack([KINDS.indexOf(value.kind), value.data, value.proposerId, value.token]);
}

export function decodeSlotValue(bytes: Uint8Array): SlotValue {
  const raw = unpack(bytes);
  if (!Array.isArray(raw) || raw.length !== 4) throw corrupt('slot value layout');
  const [kindIndex, data, proposerId, token] = raw;
  const kind = KINDS[kindIndex as number];
  if (kind === undefined || !(data === null || data instanceof Uint8Array) || typeof proposerId !== 'number' || typeof token !== 'string') {
    throw corrupt('slot value fields');
  }
  return { kind, data: data === null ? null : plain(data), proposerId, token };
}

export function encodeAcceptor(state: AcceptorState): Uint8Array {
  const accepted = state.accepted;
  return packr.pack([
    state.promised.round,
    state.promised.replicaId,
    accepted === null ? null : [accepted.ballot.round, accepted.ballot.replicaId, accepted.payload.value],
  ]);
}

export function decodeAcceptor(bytes: Uint8Array): AcceptorState {
  const raw = unpack(bytes);
  if (!Array.isArray(raw) || raw.length !== 3) throw corrupt('acceptor layout');
  const [round, replicaId, accepted] = raw;
  const promised: Ballot = { round: round as number, replicaId: replicaId as number };
  if (accepted === null) return { promised, accepted: null };
  if (!Array.isArray(accepted) || accepted.length !== 3 || !(accepted[2] instanceof Uint8Array)) throw corrupt('accepted layout');
  const value = decodeSlotValue(accepted[2]);
  return { promised, accepted: { ballot: { round: accepted[0], replicaId: accepted[1] }, payload: toPayload(value) } };
}

export function encodeTrim(slot: number): Uint8Array {
  return packr.pack([slot]);
}

export function decodeTrim(bytes: Uint8Array): number {
  const raw = unpack(bytes);
  if (!Array.isArray(raw) || typeof raw[0] !== 'number') throw corrupt('trim record');
  return raw[0];
}

function unpack(bytes: Uint8Array): unknown {
  try {
    return packr.unpack(bytes);
  } catch (error) {
    throw corrupt(`undecodable: ${(error as Error).message}`);
  }
}

function plain(value: Uint8Array): Uint8Array {
  return value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function corrupt(what: string): PaxosStoreError {
  return new PaxosStoreError('CORRUPTION', `shared log: ${what}`);
}
