/**
 * What a shard worker's peer links carry, and how: per-key consensus messages in the binary form
 * of src/consensus/wire-codec.ts, and Delos log envelopes (delos-host.ts) as extension messages
 * whose body is msgpack. Both share the links' frames, batches and authentication.
 */
import { Packr } from 'msgpackr';
import type { PeerMessage } from '../consensus/messages.js';
import { decodePeerMessages, encodeExtensionMessage, encodePeerMessage } from '../consensus/wire-codec.js';
import { PaxosStoreError } from '../errors.js';
import type { MessageCodec } from '../transport/peer-links.js';
import type { LogEnvelope } from './delos-host.js';

export type PeerWireMessage = PeerMessage | LogEnvelope;

const packr = new Packr({ useRecords: false, copyBuffers: true });

function decodeEnvelope(body: Uint8Array): LogEnvelope {
  try {
    // Only the framing is checked here; DelosHost validates the envelope and counts bad ones.
    return packr.unpack(body) as LogEnvelope;
  } catch (error) {
    throw new PaxosStoreError('PROTOCOL_ERROR', `log envelope is not msgpack: ${(error as Error).message}`);
  }
}

export const peerWireCodec: MessageCodec<PeerWireMessage> = {
  encode: (message) => (message.type === 'log' ? encodeExtensionMessage(packr.pack(message)) : encodePeerMessage(message)),
  decodeAll: (payload) => decodePeerMessages(payload, decodeEnvelope),
};
