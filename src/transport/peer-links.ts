/**
 * Peer links of one shard worker (DESIGN.md §6): worker k of this replica keeps
 * `socketsPerPeer` outbound TCP connections to worker k of every peer replica, batches the
 * messages it sends into frames (./frame.ts) and writes successive frames round-robin over the
 * connected sockets; it also listens for the peers' own outbound connections and delivers the
 * messages decoded from them. Data flows one way per connection (outbound sockets send,
 * accepted sockets receive), so a pair of replicas uses 2 × socketsPerPeer connections.
 *
 *   send(peer, m) ─► per-peer queue (bounded: sendQueueBytesMax, drop-oldest)
 *                        │ frame when ≥ batchMaxBytes queued, when batchMaxDelayUs elapses,
 *                        │ or on flush() (the scheduler calls it at the end of each turn)
 *                        ▼
 *                 frame 1 → socket 0, frame 2 → socket 1, … (skipping sockets that are down
 *                 or hold more than socketBufferBytesMax unsent bytes)
 *
 * Ordering: messages of one frame, and frames of one socket, arrive in order; frames on
 * different sockets may overtake each other. Paxos tolerates reordering and loss, which is why
 * a full queue drops its OLDEST messages: in PaxosStore a newer message about an instance
 * carries the sender's latest state and supersedes older ones, and a peer that has been away
 * long enough to fill the queue needs catch-up anyway, not a replay of stale messages.
 *
 * Every connection authenticates first (./handshake.ts). Malformed input of any kind (bad
 * magic, checksum, size, msgpack, a message the validator rejects, a handshake failure or
 * timeout) drops that one connection with a logged reason; it never throws out of this module.
 */

import net from 'node:net';
import { Packr } from 'msgpackr';
import { fromSystemError, PaxosStoreError } from '../errors.js';
import { assert } from '../util/assert.js';
import { Random } from '../util/random.js';
import { type DecodedFrame, encodeFrame, encodeMessageFrame, FLAG_HANDSHAKE, FrameDecoder, MESSAGE_ARRAY_HEADER_BYTES_MAX } from './frame.js';
import {
  computeProof,
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_FRAME_BYTES_MAX,
  HANDSHAKE_PROTOCOL_VERSION,
  type HandshakeMessage,
  identityMismatch,
  type LinkIdentity,
  newNonce,
  proofMatches,
  type Transcript,
} from './handshake.js';

export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** Structured log sink (inject the server's logger; tests capture the events). */
export interface TransportLogger {
  info(event: string, fields: Record<string, unknown>): void;
  warn(event: string, fields: Record<string, unknown>): void;
}

/** A frame's payload is a msgpack array; a codec decides what each element is. */
export interface MessageCodec<TMessage> {
  /** One message as one complete msgpack value. Throws for a message it cannot encode. */
  encode(message: TMessage): Uint8Array;
  /** Every message of one frame payload, validated; throws PROTOCOL_ERROR on anything malformed. */
  decodeAll(payload: Uint8Array): TMessage[];
}

/** The default codec: each message is a msgpack value (msgpackr), checked by `isMessage`. */
export function msgpackCodec<TMessage>(isMessage: (value: unknown) => value is TMessage): MessageCodec<TMessage> {
  const packr = new Packr({ useRecords: false, useBigIntExtension: true, copyBuffers: true });
  return {
    encode: (message) => packr.pack(message),
    decodeAll: (payload) => {
      let messages: unknown;
      try {
        messages = packr.unpack(payload);
      } catch (error) {
        throw new PaxosStoreError('PROTOCOL_ERROR', `frame payload is not msgpack: ${(error as Error).message}`);
      }
      if (!Array.isArray(messages)) throw new PaxosStoreError('PROTOCOL_ERROR', 'frame payload is not an array of messages');
      for (const message of messages) {
        if (!isMessage(message)) throw new PaxosStoreError('PROTOCOL_ERROR', 'a message failed validation');
      }
      return messages as TMessage[];
    },
  };
}

export interface PeerLinksOptions<TMessage> {
  /** This end: cluster, replica id, shard index and shard count (sent in the hello). */
  readonly identity: LinkIdentity;
  /** The cluster secret every replica shares. */
  readonly secret: string | Uint8Array;
  readonly listenHost: string;
  /** 0 picks an ephemeral port (`start()` returns the bound one). */
  readonly listenPort: number;
  /** Every peer replica; an address may come later through `setPeerAddress`. */
  readonly peers: ReadonlyArray<{ readonly replicaId: number; readonly address?: PeerAddress }>;
  /**
   * How messages are encoded: a MessageCodec, or (without one) msgpackr with this validator run
   * on every received message (false drops the connection as malformed). Give exactly one.
   */
  readonly codec?: MessageCodec<TMessage>;
  readonly isMessage?: (value: unknown) => value is TMessage;
  /** Called once per received frame with its messages, in wire order. */
  readonly onMessages: (peerId: number, messages: TMessage[]) => void;
  readonly logger: TransportLogger;
  readonly socketsPerPeer?: number;
  readonly batchMaxBytes?: number;
  /** Below 1000 µs the batch is sent on the next event-loop iteration (Node timers count in ms). */
  readonly batchMaxDelayUs?: number;
  readonly compressionThresholdBytes?: number;
  readonly frameBytesMax?: number;
  readonly sendQueueBytesMax?: number;
  /** Unsent bytes a socket may buffer in user space before frames stay queued instead. */
  readonly socketBufferBytesMax?: number;
  readonly authTimeoutMs?: number;
  readonly reconnectDelayMsMin?: number;
  readonly reconnectDelayMsMax?: number;
  /** Accepted connections (authenticated or not) held at once; more are closed at once. */
  readonly inboundConnectionsMax?: number;
  /** Jitter source for reconnect delays. */
  readonly random?: Random;
}

/** Failed connection attempts to a peer (from its first) before it is logged as a warning. */
const CONNECT_FAILURES_BEFORE_WARNING = 5;

export const PEER_LINKS_DEFAULTS = {
  socketsPerPeer: 2,
  batchMaxBytes: 64 * 1024,
  batchMaxDelayUs: 200,
  compressionThresholdBytes: 16 * 1024,
  frameBytesMax: 16 * 1024 * 1024,
  sendQueueBytesMax: 32 * 1024 * 1024,
  socketBufferBytesMax: 4 * 1024 * 1024,
  authTimeoutMs: 5000,
  reconnectDelayMsMin: 50,
  reconnectDelayMsMax: 5000,
} as const;

/** Frames are counted by message count in buckets [1], [2,3], [4,7], … [2^15, ∞). */
export const MESSAGES_PER_FRAME_BUCKETS = 16;

export interface PeerLinksCounters {
  framesSent: number;
  bytesSent: number;
  messagesSent: number;
  framesCompressed: number;
  framesReceived: number;
  bytesReceived: number;
  messagesReceived: number;
  /** Index i counts sent frames carrying between 2^i and 2^(i+1) - 1 messages. */
  framesByMessageCount: number[];
  messagesDropped: number;
  bytesDropped: number;
  reconnectAttempts: number;
  linksEstablished: number;
  connectionsAccepted: number;
  connectionsRejected: number;
  authFailures: number;
  malformedFrames: number;
}

export interface PeerStatus {
  readonly connectedSockets: number;
  readonly queuedMessages: number;
  readonly queuedBytes: number;
  /** Frames written on each outbound socket slot since start. */
  readonly framesSentPerSocket: readonly number[];
}

interface OutboundSlot {
  socket: net.Socket | undefined;
  ready: boolean;
  /** Consecutive failed attempts: the exponent of the backoff. */
  failures: number;
  reconnectTimer: NodeJS.Timeout | undefined;
  framesSent: number;
}

interface PeerState {
  readonly replicaId: number;
  address: PeerAddress | undefined;
  readonly slots: OutboundSlot[];
  queue: Uint8Array[];
  queueHead: number;
  queuedBytes: number;
  nextSlot: number;
  cancelBatchTimer: (() => void) | undefined;
}

/** The bounded-integer option check shared by every knob. */
function positiveInteger(name: string, value: number, minimum = 1): number {
  if (!Number.isSafeInteger(value) || value < minimum) {
    throw new PaxosStoreError('INVALID_ARGUMENT', `${name} must be an integer ≥ ${minimum}, got ${value}`);
  }
  return value;
}

export class PeerLinks<TMessage> {
  private readonly identity: LinkIdentity;
  private readonly secret: Uint8Array;
  private readonly codec: MessageCodec<TMessage>;
  private readonly onMessages: (peerId: number, messages: TMessage[]) => void;
  private readonly logger: TransportLogger;
  private readonly random: Random;
  private readonly socketsPerPeer: number;
  private readonly batchMaxBytes: number;
  private readonly batchMaxDelayUs: number;
  private readonly compressionThresholdBytes: number;
  private readonly frameBytesMax: number;
  private readonly sendQueueBytesMax: number;
  private readonly socketBufferBytesMax: number;
  private readonly authTimeoutMs: number;
  private readonly reconnectDelayMsMin: number;
  private readonly reconnectDelayMsMax: number;
  private readonly inboundConnectionsMax: number;
  private readonly messageBytesMax: number;
  private readonly listenHost: string;
  private readonly listenPort: number;
  private readonly peers = new Map<number, PeerState>();
  private readonly inbound = new Set<net.Socket>();
  private readonly sockets = new Set<net.Socket>();
  private readonly server: net.Server;
  private started = false;
  private closing = false;
  private readonly stats: PeerLinksCounters = {
    framesSent: 0,
    bytesSent: 0,
    messagesSent: 0,
    framesCompressed: 0,
    framesReceived: 0,
    bytesReceived: 0,
    messagesReceived: 0,
    framesByMessageCount: new Array(MESSAGES_PER_FRAME_BUCKETS).fill(0),
    messagesDropped: 0,
    bytesDropped: 0,
    reconnectAttempts: 0,
    linksEstablished: 0,
    connectionsAccepted: 0,
    connectionsRejected: 0,
    authFailures: 0,
    malformedFrames: 0,
  };

  constructor(options: PeerLinksOptions<TMessage>) {
    this.identity = options.identity;
    this.secret = typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : options.secret;
    if (this.secret.length === 0) throw new PaxosStoreError('INVALID_ARGUMENT', 'the cluster secret must not be empty');
    if ((options.codec === undefined) === (options.isMessage === undefined)) {
      throw new PaxosStoreError('INVALID_ARGUMENT', 'give PeerLinks exactly one of codec and isMessage');
    }
    this.codec = options.codec ?? msgpackCodec(options.isMessage!);
    this.onMessages = options.onMessages;
    this.logger = options.logger;
    this.random = options.random ?? new Random((Math.random() * 2 ** 32) >>> 0);
    this.listenHost = options.listenHost;
    this.listenPort = positiveInteger('listenPort', options.listenPort, 0);
    const defaults = PEER_LINKS_DEFAULTS;
    this.socketsPerPeer = positiveInteger('socketsPerPeer', options.socketsPerPeer ?? defaults.socketsPerPeer);
    this.frameBytesMax = positiveInteger('frameBytesMax', options.frameBytesMax ?? defaults.frameBytesMax, HANDSHAKE_FRAME_BYTES_MAX);
    this.batchMaxBytes = positiveInteger('batchMaxBytes', options.batchMaxBytes ?? defaults.batchMaxBytes);
    if (this.batchMaxBytes + MESSAGE_ARRAY_HEADER_BYTES_MAX > this.frameBytesMax) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `batchMaxBytes ${this.batchMaxBytes} leaves no room for a frame header within frameBytesMax ${this.frameBytesMax}`);
    }
    this.batchMaxDelayUs = positiveInteger('batchMaxDelayUs', options.batchMaxDelayUs ?? defaults.batchMaxDelayUs, 0);
    this.compressionThresholdBytes = positiveInteger('compressionThresholdBytes', options.compressionThresholdBytes ?? defaults.compressionThresholdBytes);
    this.sendQueueBytesMax = positiveInteger('sendQueueBytesMax', options.sendQueueBytesMax ?? defaults.sendQueueBytesMax);
    this.socketBufferBytesMax = positiveInteger('socketBufferBytesMax', options.socketBufferBytesMax ?? defaults.socketBufferBytesMax);
    this.authTimeoutMs = positiveInteger('authTimeoutMs', options.authTimeoutMs ?? defaults.authTimeoutMs);
    this.reconnectDelayMsMin = positiveInteger('reconnectDelayMsMin', options.reconnectDelayMsMin ?? defaults.reconnectDelayMsMin);
    this.reconnectDelayMsMax = positiveInteger('reconnectDelayMsMax', options.reconnectDelayMsMax ?? defaults.reconnectDelayMsMax, this.reconnectDelayMsMin);
    this.messageBytesMax = Math.min(this.frameBytesMax - MESSAGE_ARRAY_HEADER_BYTES_MAX, this.sendQueueBytesMax);
    for (const peer of options.peers) {
      positiveInteger('peer replicaId', peer.replicaId, 0);
      if (peer.replicaId === this.identity.replicaId) throw new PaxosStoreError('INVALID_ARGUMENT', `replica ${peer.replicaId} lists itself as a peer`);
      if (this.peers.has(peer.replicaId)) throw new PaxosStoreError('INVALID_ARGUMENT', `peer ${peer.replicaId} listed twice`);
      this.peers.set(peer.replicaId, this.newPeerState(peer.replicaId, peer.address));
    }
    this.inboundConnectionsMax = positiveInteger(
      'inboundConnectionsMax',
      options.inboundConnectionsMax ?? 2 * this.peers.size * this.socketsPerPeer + 16,
    );
    this.server = net.createServer((socket) => this.accept(socket));
  }

  private newPeerState(replicaId: number, address: PeerAddress | undefined): PeerState {
    const slots: OutboundSlot[] = [];
    for (let index = 0; index < this.socketsPerPeer; index++) {
      slots.push({ socket: undefined, ready: false, failures: 0, reconnectTimer: undefined, framesSent: 0 });
    }
    return { replicaId, address, slots, queue: [], queueHead: 0, queuedBytes: 0, nextSlot: 0, cancelBatchTimer: undefined };
  }

  /** Listens for peers and starts dialling every peer with a known address; resolves to the bound port. */
  async start(): Promise<number> {
    assert(!this.started, 'PeerLinks started twice');
    this.started = true;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', (error) => reject(fromSystemError(error, `peer listener on ${this.listenHost}:${this.listenPort}`)));
      this.server.listen({ host: this.listenHost, port: this.listenPort }, () => {
        this.server.removeAllListeners('error');
        resolve();
      });
    });
    this.server.on('error', (error) => this.logger.warn('peer listener error', { error: error.message }));
    for (const peer of this.peers.values()) this.connectIdleSlots(peer);
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Sets or moves a peer's address; idle slots dial it at once, live connections stay. */
  setPeerAddress(replicaId: number, address: PeerAddress): void {
    const peer = this.peer(replicaId);
    peer.address = address;
    if (this.started) this.connectIdleSlots(peer);
  }

  /**
   * Queues one message for a peer; it leaves in a frame when the batch is full, when
   * `batchMaxDelayUs` elapses or on `flush()`. Never blocks: a full queue drops its oldest
   * messages (counted). Throws INVALID_ARGUMENT for an unknown peer or a message the codec cannot
   * encode, REQUEST_TOO_LARGE for one above the frame limit.
   */
  send(peerId: number, message: TMessage): void {
    const peer = this.peer(peerId);
    let encoded: Uint8Array;
    try {
      encoded = this.codec.encode(message);
    } catch (error) {
      throw new PaxosStoreError('INVALID_ARGUMENT', `peer message cannot be encoded: ${(error as Error).message}`, undefined, { cause: error });
    }
    if (encoded.length > this.messageBytesMax) {
      throw new PaxosStoreError('REQUEST_TOO_LARGE', `peer message of ${encoded.length} bytes exceeds ${this.messageBytesMax} bytes`);
    }
    if (this.closing) {
      this.countDrop(encoded.length);
      return;
    }
    while (peer.queuedBytes + encoded.length > this.sendQueueBytesMax) this.dropOldest(peer);
    peer.queue.push(encoded);
    peer.queuedBytes += encoded.length;
    if (peer.queuedBytes >= this.batchMaxBytes) this.flushPeer(peer, true);
    if (peer.queuedBytes > 0) this.armBatchTimer(peer);
  }

  /** Writes every queued message now (as far as connected sockets allow). */
  flush(): void {
    for (const peer of this.peers.values()) this.flushPeer(peer, false);
  }

  counters(): PeerLinksCounters {
    return { ...this.stats, framesByMessageCount: [...this.stats.framesByMessageCount] };
  }

  peerStatus(peerId: number): PeerStatus {
    const peer = this.peer(peerId);
    return {
      connectedSockets: peer.slots.filter((slot) => slot.ready).length,
      queuedMessages: peer.queue.length - peer.queueHead,
      queuedBytes: peer.queuedBytes,
      framesSentPerSocket: peer.slots.map((slot) => slot.framesSent),
    };
  }

  /** Sends what is queued (best effort), closes every connection and the listener. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.flush();
    this.closing = true;
    const closed: Promise<unknown>[] = [];
    for (const peer of this.peers.values()) {
      peer.cancelBatchTimer?.();
      for (const slot of peer.slots) {
        clearTimeout(slot.reconnectTimer);
        slot.reconnectTimer = undefined;
      }
    }
    for (const socket of this.sockets) {
      closed.push(new Promise((resolve) => socket.once('close', resolve)));
      // Outbound sockets end gracefully so that frames already written still go out; the timer
      // bounds how long a peer that does not read can hold us.
      if (this.inbound.has(socket)) socket.destroy();
      else {
        socket.end();
        setTimeout(() => socket.destroy(), 1000).unref();
      }
    }
    if (this.server.listening) closed.push(new Promise((resolve) => this.server.close(resolve)));
    await Promise.all(closed);
  }

  private peer(peerId: number): PeerState {
    const peer = this.peers.get(peerId);
    if (peer === undefined) throw new PaxosStoreError('INVALID_ARGUMENT', `replica ${peerId} is not a peer of this link set`);
    return peer;
  }

  private countDrop(bytes: number): void {
    this.stats.messagesDropped++;
    this.stats.bytesDropped += bytes;
  }

  private dropOldest(peer: PeerState): void {
    assert(peer.queueHead < peer.queue.length, 'dropping from an empty send queue');
    const dropped = peer.queue[peer.queueHead++];
    peer.queuedBytes -= dropped.length;
    this.countDrop(dropped.length);
  }

  private armBatchTimer(peer: PeerState): void {
    if (peer.cancelBatchTimer !== undefined) return;
    const fire = (): void => {
      peer.cancelBatchTimer = undefined;
      this.flushPeer(peer, false);
    };
    if (this.batchMaxDelayUs < 1000) {
      const immediate = setImmediate(fire);
      peer.cancelBatchTimer = () => clearImmediate(immediate);
    } else {
      const timer = setTimeout(fire, Math.floor(this.batchMaxDelayUs / 1000));
      peer.cancelBatchTimer = () => clearTimeout(timer);
    }
  }

  /** Frames the queue onto writable sockets; with `onlyFullBatches`, keeps a partial batch queued. */
  private flushPeer(peer: PeerState, onlyFullBatches: boolean): void {
    while (peer.queuedBytes > 0 && (!onlyFullBatches || peer.queuedBytes >= this.batchMaxBytes)) {
      const slot = this.nextWritableSlot(peer);
      if (slot === undefined) break;
      const batch: Uint8Array[] = [];
      let batchBytes = 0;
      while (peer.queueHead < peer.queue.length) {
        const next = peer.queue[peer.queueHead];
        if (batch.length > 0 && batchBytes + next.length > this.batchMaxBytes) break;
        batch.push(next);
        batchBytes += next.length;
        peer.queueHead++;
      }
      peer.queuedBytes -= batchBytes;
      this.writeFrame(slot, batch, batchBytes);
    }
    if (peer.queueHead === peer.queue.length) {
      peer.queue = [];
      peer.queueHead = 0;
      peer.cancelBatchTimer?.();
      peer.cancelBatchTimer = undefined;
    } else if (peer.queueHead > 1024 && peer.queueHead * 2 > peer.queue.length) {
      peer.queue = peer.queue.slice(peer.queueHead);
      peer.queueHead = 0;
    }
  }

  private writeFrame(slot: OutboundSlot, batch: Uint8Array[], batchBytes: number): void {
    const { frame, compressed } = encodeMessageFrame(batch, batchBytes, this.compressionThresholdBytes);
    slot.socket!.write(frame);
    slot.framesSent++;
    this.stats.framesSent++;
    this.stats.bytesSent += frame.length;
    this.stats.messagesSent += batch.length;
    if (compressed) this.stats.framesCompressed++;
    this.stats.framesByMessageCount[Math.min(31 - Math.clz32(batch.length), MESSAGES_PER_FRAME_BUCKETS - 1)]++;
  }

  /** Round robin over authenticated sockets that are not backed up. */
  private nextWritableSlot(peer: PeerState): OutboundSlot | undefined {
    for (let step = 0; step < peer.slots.length; step++) {
      const index = (peer.nextSlot + step) % peer.slots.length;
      const slot = peer.slots[index];
      if (slot.ready && !slot.socket!.destroyed && slot.socket!.writableLength < this.socketBufferBytesMax) {
        peer.nextSlot = (index + 1) % peer.slots.length;
        return slot;
      }
    }
    return undefined;
  }

  private connectIdleSlots(peer: PeerState): void {
    for (const slot of peer.slots) if (slot.socket === undefined && slot.reconnectTimer === undefined) this.dial(peer, slot);
  }

  /**
   * A peer that just authenticated to us is up again: dial it now instead of waiting out the
   * backoff. Without this, a replica restarted after a crash could wait up to
   * reconnectDelayMsMax for its peers' replies (they travel on the peers' outbound sockets).
   */
  private redialWaitingSlots(peerId: number): void {
    const peer = this.peers.get(peerId);
    if (!peer || this.closing) return;
    for (const slot of peer.slots) {
      if (slot.reconnectTimer === undefined) continue;
      clearTimeout(slot.reconnectTimer);
      slot.reconnectTimer = undefined;
      slot.failures = 0;
      this.stats.reconnectAttempts++;
      this.dial(peer, slot);
    }
  }

  private scheduleReconnect(peer: PeerState, slot: OutboundSlot): void {
    if (this.closing) return;
    const ceilingMs = Math.min(this.reconnectDelayMsMax, this.reconnectDelayMsMin * 2 ** Math.min(slot.failures, 30));
    // "Equal jitter": at least half the backoff, so retries stay spaced; the random half keeps
    // the S sockets (and other workers) from reconnecting in lockstep.
    const delayMs = ceilingMs / 2 + this.random.float() * (ceilingMs / 2);
    slot.failures++;
    slot.reconnectTimer = setTimeout(() => {
      slot.reconnectTimer = undefined;
      this.stats.reconnectAttempts++;
      this.dial(peer, slot);
    }, delayMs);
  }

  /**
   * Reads frames from a socket into `onFrame`; the first malformed frame drops the connection.
   * `onFrame` returns the validated messages of a data frame (or nothing for a handshake frame);
   * they are delivered outside the parsing guard, so an error thrown by the `onMessages`
   * callback is the caller's and never passes for a malformed frame.
   */
  private readFrames(
    socket: net.Socket,
    decoder: FrameDecoder,
    onFrame: (frame: DecodedFrame) => { peerId: number; messages: TMessage[] } | undefined,
    drop: (reason: string) => void,
  ): void {
    socket.on('data', (chunk: Buffer) => {
      decoder.push(chunk);
      while (!socket.destroyed) {
        let delivery: { peerId: number; messages: TMessage[] } | undefined;
        try {
          const frame = decoder.next();
          if (frame === undefined) return;
          delivery = onFrame(frame);
        } catch (error) {
          if (!(error instanceof PaxosStoreError)) throw error;
          this.stats.malformedFrames++;
          drop(error.message);
          return;
        }
        if (delivery !== undefined) this.onMessages(delivery.peerId, delivery.messages);
      }
    });
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private sendHandshake(socket: net.Socket, message: HandshakeMessage): void {
    socket.write(encodeFrame(encodeHandshake(message), FLAG_HANDSHAKE));
  }

  private dial(peer: PeerState, slot: OutboundSlot): void {
    if (this.closing || peer.address === undefined) return;
    const address = peer.address;
    const socket = net.connect({ host: address.host, port: address.port });
    this.track(socket);
    slot.socket = socket;
    slot.ready = false;
    const decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    const connectorNonce = newNonce();
    let state: 'hello-sent' | 'proof-sent' | 'ready' = 'hello-sent';
    let transcript: Transcript | undefined;
    let lastError: string | undefined;
    const fields = { peerId: peer.replicaId, host: address.host, port: address.port };
    const drop = (reason: string): void => {
      this.logger.warn('peer link dropped', { ...fields, reason });
      socket.destroy();
    };
    const authTimer = setTimeout(() => drop(`no authentication within ${this.authTimeoutMs} ms`), this.authTimeoutMs);
    socket.on('connect', () => {
      this.sendHandshake(socket, { kind: 'hello', protocol: HANDSHAKE_PROTOCOL_VERSION, identity: this.identity, nonce: connectorNonce });
    });
    socket.on('error', (error) => {
      lastError = error.message;
    });
    socket.on('drain', () => this.flushPeer(peer, false));
    socket.on('close', () => {
      clearTimeout(authTimer);
      if (slot.socket === socket) {
        slot.socket = undefined;
        slot.ready = false;
      }
      if (this.closing) return;
      if (state === 'ready') this.logger.warn('peer link lost', { ...fields, error: lastError });
      else if (lastError !== undefined) {
        // Replicas of a cluster start at about the same time, so the first refusals are expected:
        // they are info; a peer still unreachable after ~1.5 s of attempts is worth a warning.
        if (slot.failures === 0) this.logger.info('peer link cannot connect yet, retrying with backoff', { ...fields, error: lastError });
        else if (slot.failures === CONNECT_FAILURES_BEFORE_WARNING) this.logger.warn('peer link still cannot connect, retrying with backoff', { ...fields, error: lastError, attempts: slot.failures + 1 });
      }
      this.scheduleReconnect(peer, slot);
    });
    this.readFrames(socket, decoder, (frame): undefined => {
      if ((frame.flags & FLAG_HANDSHAKE) === 0) throw new PaxosStoreError('PROTOCOL_ERROR', 'the acceptor sent data on an outbound link');
      const message = decodeHandshake(frame.payload);
      if (message.kind === 'refused') {
        this.stats.authFailures++;
        drop(`refused by the peer: ${message.reason}`);
      } else if (state === 'hello-sent' && message.kind === 'challenge') {
        const mismatch = identityMismatch(this.identity, message.identity);
        const problem =
          mismatch !== undefined
            ? `the peer is mis-wired: ${mismatch}`
            : message.identity.replicaId !== peer.replicaId
              ? `dialled replica ${peer.replicaId} but replica ${message.identity.replicaId} answered`
              : undefined;
        if (problem !== undefined) {
          this.stats.authFailures++;
          drop(problem);
          return;
        }
        transcript = { connector: this.identity, acceptorReplicaId: peer.replicaId, connectorNonce, acceptorNonce: message.nonce };
        this.sendHandshake(socket, { kind: 'proof', proof: computeProof(this.secret, 'connector', transcript) });
        state = 'proof-sent';
      } else if (state === 'proof-sent' && message.kind === 'accepted') {
        if (!proofMatches(computeProof(this.secret, 'acceptor', transcript!), message.proof)) {
          this.stats.authFailures++;
          drop('the peer failed to prove the cluster secret');
          return;
        }
        clearTimeout(authTimer);
        state = 'ready';
        slot.ready = true;
        slot.failures = 0;
        this.stats.linksEstablished++;
        this.logger.info('peer link up', fields);
        this.flushPeer(peer, false);
      } else {
        throw new PaxosStoreError('PROTOCOL_ERROR', `unexpected ${message.kind} handshake in state ${state}`);
      }
    }, drop);
  }

  private accept(socket: net.Socket): void {
    const fields = { host: socket.remoteAddress, port: socket.remotePort };
    if (this.closing || this.inbound.size >= this.inboundConnectionsMax) {
      this.stats.connectionsRejected++;
      this.logger.warn('peer connection rejected', { ...fields, reason: this.closing ? 'closing' : `inboundConnectionsMax ${this.inboundConnectionsMax} reached` });
      socket.destroy();
      return;
    }
    this.stats.connectionsAccepted++;
    this.inbound.add(socket);
    this.track(socket);
    const decoder = new FrameDecoder(HANDSHAKE_FRAME_BYTES_MAX);
    let state: 'awaiting-hello' | 'awaiting-proof' | 'authenticated' | 'refused' = 'awaiting-hello';
    let hello: { identity: LinkIdentity; nonce: Uint8Array } | undefined;
    let transcript: Transcript | undefined;
    const acceptorNonce = newNonce();
    const drop = (reason: string): void => {
      this.logger.warn('peer connection dropped', { ...fields, peerId: hello?.identity.replicaId, reason });
      socket.destroy();
    };
    const refuse = (reason: string): void => {
      this.stats.authFailures++;
      state = 'refused';
      this.logger.warn('peer connection refused', { ...fields, peerId: hello?.identity.replicaId, reason });
      // Tell the connector why (it logs it), then hang up; the timer bounds a peer that never reads.
      socket.end(encodeFrame(encodeHandshake({ kind: 'refused', reason }), FLAG_HANDSHAKE));
      setTimeout(() => socket.destroy(), 1000).unref();
    };
    const authTimer = setTimeout(() => refuse(`no authentication within ${this.authTimeoutMs} ms`), this.authTimeoutMs);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(authTimer);
      this.inbound.delete(socket);
    });
    this.readFrames(socket, decoder, (frame) => {
      if (state === 'refused') return undefined;
      if (state === 'authenticated') return { peerId: hello!.identity.replicaId, messages: this.decodeMessages(frame) };
      if ((frame.flags & FLAG_HANDSHAKE) === 0) {
        refuse('data before authentication');
        return;
      }
      const message = decodeHandshake(frame.payload);
      if (state === 'awaiting-hello' && message.kind === 'hello') {
        hello = message;
        const problem = this.checkConnector(message);
        if (problem !== undefined) {
          refuse(problem);
          return;
        }
        transcript = { connector: message.identity, acceptorReplicaId: this.identity.replicaId, connectorNonce: message.nonce, acceptorNonce };
        this.sendHandshake(socket, { kind: 'challenge', identity: this.identity, nonce: acceptorNonce });
        state = 'awaiting-proof';
      } else if (state === 'awaiting-proof' && message.kind === 'proof') {
        if (!proofMatches(computeProof(this.secret, 'connector', transcript!), message.proof)) {
          refuse('authentication failed: wrong cluster secret');
          return;
        }
        clearTimeout(authTimer);
        state = 'authenticated';
        decoder.frameBytesMax = this.frameBytesMax;
        this.sendHandshake(socket, { kind: 'accepted', proof: computeProof(this.secret, 'acceptor', transcript!) });
        this.logger.info('peer connection authenticated', { ...fields, peerId: hello!.identity.replicaId });
        this.redialWaitingSlots(hello!.identity.replicaId);
      } else {
        refuse(`unexpected ${message.kind} handshake in state ${state}`);
      }
    }, drop);
  }

  private checkConnector(hello: { protocol: number; identity: LinkIdentity }): string | undefined {
    if (hello.protocol !== HANDSHAKE_PROTOCOL_VERSION) return `handshake protocol ${hello.protocol} is not ${HANDSHAKE_PROTOCOL_VERSION}`;
    const mismatch = identityMismatch(this.identity, hello.identity);
    if (mismatch !== undefined) return `mis-wired peer: ${mismatch}`;
    if (!this.peers.has(hello.identity.replicaId)) return `replica ${hello.identity.replicaId} is not a configured peer`;
    return undefined;
  }

  /** Decodes and validates the messages of a data frame (PROTOCOL_ERROR when anything is off). */
  private decodeMessages(frame: DecodedFrame): TMessage[] {
    if ((frame.flags & FLAG_HANDSHAKE) !== 0) throw new PaxosStoreError('PROTOCOL_ERROR', 'handshake frame after authentication');
    const messages = this.codec.decodeAll(frame.payload);
    this.stats.framesReceived++;
    this.stats.bytesReceived += frame.wireBytes;
    this.stats.messagesReceived += messages.length;
    return messages;
  }
}
