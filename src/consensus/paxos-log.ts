/**
 * The PaxosLog of one key, trimmed to two entries (DESIGN.md §4, PaxosStore §2.2.2):
 *
 *   entry:   … (trimmed) │ chosen i                          │ open i+1
 *   holds:               │ full value or tombstone,          │ own acceptor state only:
 *                        │ proposer id, request id,          │ promised ballot m,
 *                        │ session table (dedup)             │ accepted proposal P = (n, payload)
 *
 * PaxosLog-as-value: this record IS the value stored under the key in the storage engine, so one
 * update is one write. The chosen entry is a full snapshot of the key, which makes catch-up and
 * rebuild a copy of one record. The version of the key is the chosen entry id (0: never written).
 *
 * Record encoding: format 2 is binary (the layout is in src/consensus/wire-codec.ts). Format 1,
 * written by earlier builds and still read, is msgpackr of one array:
 *
 *   ┌───┬─────────────┬────────────────┬──────────────────┬─────────────────────────────────┐
 *   │ 1 │ chosenEntry │ chosenPayload  │ promised         │ accepted                        │
 *   │fmt│ id (uint)   │ payload | nil  │ [round, replica] │ nil | [[round, replica], payload]│
 *   └───┴─────────────┴────────────────┴──────────────────┴─────────────────────────────────┘
 *   payload  = [value: bin | nil (tombstone or absent), proposerId: uint,
 *               requestId: nil | [clientId: str, timestampMs: uint, sequence: uint],
 *               sessions: [[clientId: str, sequence: uint, version: uint, applied: bool,
 *                           value: bin | nil], …]]
 *
 * The session table is the request-id dedup window (evaluate.ts): the results of the newest
 * SESSION_RECORDS_PER_CLIENT_MAX applied writes of each of the last `sessionsMax` clients that
 * wrote the key. A retry carrying one of those ids returns the stored result instead of writing
 * twice, even when writes of other clients were chosen in between (a single "request id of the
 * last entry" would miss those). Beyond the window dedup is best effort.
 */
import { Packr } from 'msgpackr';
import type { KeyResult, RequestId } from '../api/operations.js';
import { PaxosStoreError } from '../errors.js';
import { BALLOT_ZERO, type Ballot } from './ballot.js';
import { decodePaxosLogRecord, encodePaxosLogRecord, PAXOS_LOG_TAG } from './wire-codec.js';

export interface SessionRecord {
  readonly clientId: string;
  readonly sequence: number;
  /** The result the original write returned, returned again to a retry. */
  readonly result: KeyResult;
}

/** The value a proposer proposes for one entry: the key's complete state after the write. */
export interface EntryPayload {
  /** New value of the key; null is a tombstone. */
  readonly value: Uint8Array | null;
  /** Replica that created this payload (not whoever later finished it): the prepare-skip owner. */
  readonly proposerId: number;
  readonly requestId: RequestId | null;
  readonly sessions: readonly SessionRecord[];
}

export interface ChosenEntry {
  /** 0 = the key was never written (payload null). */
  readonly entryId: number;
  readonly payload: EntryPayload | null;
}

export interface Proposal {
  readonly ballot: Ballot;
  readonly payload: EntryPayload;
}

/** `S = (m, P)` of paper Algorithm 1 for one replica and one instance. */
export interface AcceptorState {
  readonly promised: Ballot;
  readonly accepted: Proposal | null;
}

export const PRISTINE_ACCEPTOR_STATE: AcceptorState = Object.freeze({ promised: BALLOT_ZERO, accepted: null });
export const EMPTY_CHOSEN_ENTRY: ChosenEntry = Object.freeze({ entryId: 0, payload: null });

/** What is persisted per key: the chosen entry and this replica's own state of entry chosen+1. */
export interface PaxosLogRecord {
  readonly chosen: ChosenEntry;
  readonly open: AcceptorState;
}

const FORMAT_1 = 1;
const packr = new Packr({ useRecords: false, moreTypes: false });

/** The stored form: format 2 (binary, see src/consensus/wire-codec.ts). */
export function encodePaxosLog(record: PaxosLogRecord): Uint8Array {
  return encodePaxosLogRecord(record);
}

/**
 * Reads format 2 and the msgpack format 1 of earlier builds (still on disk until a key is
 * rewritten). Throws CORRUPTION when the bytes are not a record this code wrote.
 */
export function decodePaxosLog(bytes: Uint8Array): PaxosLogRecord {
  return bytes[0] === PAXOS_LOG_TAG ? decodePaxosLogRecord(bytes) : decodeFormat1(bytes);
}

function decodeFormat1(bytes: Uint8Array): PaxosLogRecord {
  let raw: unknown;
  try {
    raw = packr.unpack(bytes);
  } catch (error) {
    throw corrupt(`undecodable: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw) || raw.length !== 5 || raw[0] !== FORMAT_1) throw corrupt('unknown record layout');
  const [, entryId, chosenPayload, promised, accepted] = raw;
  if (!isCount(entryId)) throw corrupt('chosen entry id');
  if ((entryId === 0) !== (chosenPayload === null)) throw corrupt('chosen payload presence');
  const record: PaxosLogRecord = {
    chosen: { entryId, payload: chosenPayload === null ? null : payloadFromArray(chosenPayload) },
    open: {
      promised: ballotFromArray(promised),
      accepted: accepted === null ? null : proposalFromArray(accepted),
    },
  };
  return record;
}

function payloadFromArray(raw: unknown): EntryPayload {
  if (!Array.isArray(raw) || raw.length !== 4) throw corrupt('payload layout');
  const [value, proposerId, requestId, sessions] = raw;
  if (!isBytesOrNull(value) || !isCount(proposerId) || !Array.isArray(sessions)) throw corrupt('payload fields');
  return {
    value: plainBytes(value),
    proposerId,
    requestId: requestId === null ? null : requestIdFromArray(requestId),
    sessions: sessions.map(sessionFromArray),
  };
}

function requestIdFromArray(raw: unknown): RequestId {
  if (!Array.isArray(raw) || raw.length !== 3) throw corrupt('request id layout');
  const [clientId, timestampMs, sequence] = raw;
  if (typeof clientId !== 'string' || typeof timestampMs !== 'number' || !isCount(sequence)) throw corrupt('request id fields');
  return { clientId, timestampMs, sequence };
}

function sessionFromArray(raw: unknown): SessionRecord {
  if (!Array.isArray(raw) || raw.length !== 5) throw corrupt('session layout');
  const [clientId, sequence, version, applied, value] = raw;
  if (typeof clientId !== 'string' || !isCount(sequence) || !isCount(version) || typeof applied !== 'boolean' || !isBytesOrNull(value)) {
    throw corrupt('session fields');
  }
  return { clientId, sequence, result: { applied, version, value: plainBytes(value) } };
}

function ballotFromArray(raw: unknown): Ballot {
  if (!Array.isArray(raw) || raw.length !== 2 || !isCount(raw[0]) || !isCount(raw[1])) throw corrupt('ballot');
  return { round: raw[0], replicaId: raw[1] };
}

function proposalFromArray(raw: unknown): Proposal {
  if (!Array.isArray(raw) || raw.length !== 2) throw corrupt('proposal layout');
  return { ballot: ballotFromArray(raw[0]), payload: payloadFromArray(raw[1]) };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isBytesOrNull(value: unknown): value is Uint8Array | null {
  return value === null || value instanceof Uint8Array;
}

/** msgpackr decodes bin as Buffer; hand out plain Uint8Array views (no copy) like the rest of the API. */
function plainBytes(value: Uint8Array | null): Uint8Array | null {
  return value === null || value.constructor === Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
}

function corrupt(what: string): PaxosStoreError {
  return new PaxosStoreError('CORRUPTION', `PaxosLog record: ${what}`);
}
