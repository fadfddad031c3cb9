/**
 * Peer authentication: mutual HMAC-SHA256 challenge/response with the cluster secret, run in
 * handshake frames (FLAG_HANDSHAKE, ./frame.ts) before a connection may carry any message.
 *
 *   connector (dials)                                   acceptor (listens)
 *   hello     {identity C, nonce Nc}            ───►    checks cluster, shard index/count, C is a peer
 *             ◄───  challenge {identity A, nonce Na}
 *   checks A is the peer it dialled
 *   proof     {proof C = HMAC(secret, "connector" · T)} ───►  verifies proof C (else refused)
 *             ◄───  accepted {proof A = HMAC(secret, "acceptor" · T)}
 *   verifies proof A (else drops the link)
 *   (the acceptor may answer refused {reason} and close at any step)
 *
 *   T = JSON of [clusterId, shardIndex, shardCount, C.replicaId, A.replicaId], then Nc, then Na.
 *
 * The connector proves itself first, so the acceptor — the side exposed to whoever can reach
 * its port — is the one that logs and refuses a wrong secret; the connector still verifies the
 * acceptor, so neither side talks to an impostor.
 * Both nonces are 32 fresh random bytes per connection, so a recorded proof is useless on any
 * other connection (replay); the role label keeps one side's proof from being reflected back as
 * the other's. Proofs are compared with `timingSafeEqual`. Any holder of the cluster secret can
 * claim any replica id: the secret authenticates cluster membership, not individual replicas.
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { Packr } from 'msgpackr';
import { PaxosStoreError } from '../errors.js';

export const HANDSHAKE_PROTOCOL_VERSION = 1;
export const NONCE_BYTES = 32;
/** HMAC-SHA256 output. */
const PROOF_BYTES = 32;
/** Handshake frames are tiny; an unauthenticated connection may not send anything larger. */
export const HANDSHAKE_FRAME_BYTES_MAX = 1024;

/** Who is at one end of a link: worker `shardIndex` of replica `replicaId`. */
export interface LinkIdentity {
  readonly clusterId: string;
  readonly replicaId: number;
  readonly shardIndex: number;
  readonly shardCount: number;
}

export type HandshakeMessage =
  | { readonly kind: 'hello'; readonly protocol: number; readonly identity: LinkIdentity; readonly nonce: Uint8Array }
  | { readonly kind: 'challenge'; readonly identity: LinkIdentity; readonly nonce: Uint8Array }
  | { readonly kind: 'proof'; readonly proof: Uint8Array }
  | { readonly kind: 'accepted'; readonly proof: Uint8Array }
  | { readonly kind: 'refused'; readonly reason: string };

const packr = new Packr({ useRecords: false });

export function encodeHandshake(message: HandshakeMessage): Uint8Array {
  return packr.pack(message);
}

function malformed(what: string): PaxosStoreError {
  return new PaxosStoreError('PROTOCOL_ERROR', `malformed handshake: ${what}`);
}

function decodeIdentity(value: unknown): LinkIdentity {
  const identity = value as Partial<Record<keyof LinkIdentity, unknown>> | null;
  if (
    identity === null ||
    typeof identity !== 'object' ||
    typeof identity.clusterId !== 'string' ||
    !Number.isSafeInteger(identity.replicaId) ||
    !Number.isSafeInteger(identity.shardIndex) ||
    !Number.isSafeInteger(identity.shardCount)
  ) {
    throw malformed('identity');
  }
  return identity as LinkIdentity;
}

function decodeBytes(value: unknown, length: number, what: string): Uint8Array {
  if (!(value instanceof Uint8Array) || value.length !== length) throw malformed(what);
  return value;
}

/** Parses one handshake payload; throws PROTOCOL_ERROR on anything unexpected. */
export function decodeHandshake(payload: Uint8Array): HandshakeMessage {
  let value: Record<string, unknown>;
  try {
    value = packr.unpack(payload);
  } catch {
    throw malformed('not msgpack');
  }
  if (value === null || typeof value !== 'object') throw malformed('not a map');
  switch (value.kind) {
    case 'hello':
      if (typeof value.protocol !== 'number') throw malformed('protocol');
      return { kind: 'hello', protocol: value.protocol, identity: decodeIdentity(value.identity), nonce: decodeBytes(value.nonce, NONCE_BYTES, 'nonce') };
    case 'challenge':
      return { kind: 'challenge', identity: decodeIdentity(value.identity), nonce: decodeBytes(value.nonce, NONCE_BYTES, 'nonce') };
    case 'proof':
      return { kind: 'proof', proof: decodeBytes(value.proof, PROOF_BYTES, 'proof') };
    case 'accepted':
      return { kind: 'accepted', proof: decodeBytes(value.proof, PROOF_BYTES, 'proof') };
    case 'refused':
      return { kind: 'refused', reason: typeof value.reason === 'string' ? value.reason.slice(0, 200) : 'no reason given' };
    default:
      throw malformed(`unknown kind ${String(value.kind).slice(0, 40)}`);
  }
}

export function newNonce(): Uint8Array {
  return randomBytes(NONCE_BYTES);
}

export interface Transcript {
  readonly connector: LinkIdentity;
  readonly acceptorReplicaId: number;
  readonly connectorNonce: Uint8Array;
  readonly acceptorNonce: Uint8Array;
}

export function computeProof(secret: Uint8Array, role: 'connector' | 'acceptor', transcript: Transcript): Uint8Array {
  const { connector } = transcript;
  return createHmac('sha256', secret)
    .update(`paxosstore-peer-auth-v1 ${role} `)
    .update(JSON.stringify([connector.clusterId, connector.shardIndex, connector.shardCount, connector.replicaId, transcript.acceptorReplicaId]))
    .update(transcript.connectorNonce)
    .update(transcript.acceptorNonce)
    .digest();
}

export function proofMatches(expected: Uint8Array, actual: Uint8Array): boolean {
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}

/** Why `remote` may not talk to `local` (cluster, shard index, shard count), or undefined. */
export function identityMismatch(local: LinkIdentity, remote: LinkIdentity): string | undefined {
  if (remote.clusterId !== local.clusterId) return `cluster id ${JSON.stringify(remote.clusterId)} is not ${JSON.stringify(local.clusterId)}`;
  if (remote.shardCount !== local.shardCount) return `shard count ${remote.shardCount} is not ${local.shardCount}`;
  if (remote.shardIndex !== local.shardIndex) return `shard index ${remote.shardIndex} is not ${local.shardIndex} (worker k talks only to worker k)`;
  return undefined;
}
