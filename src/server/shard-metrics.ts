/**
 * Turns a shard worker's counters (consensus replica, peer links, Bitcask) into a metrics
 * snapshot that the main thread merges into its registry with a `shard` label, so /metrics shows
 * every worker. Counters only grow; gauges are current levels.
 */
import type { Replica } from '../consensus/replica.js';
import type { FamilySnapshot, MetricsSnapshot } from '../metrics/registry.js';
import type { Bitcask } from '../storage/bitcask/bitcask.js';
import type { PeerLinks } from '../transport/peer-links.js';

type Kind = 'counter' | 'gauge';

/** Storage stats and how each is exported (name suffix, kind, help). */
const storageStats: readonly [stat: string, name: string, kind: Kind, help: string][] = [
  ['keys', 'storage_keys', 'gauge', 'Live keys in the Bitcask keydir.'],
  ['dataBytes', 'storage_data_bytes', 'gauge', 'Bytes in Bitcask data files.'],
  ['deadBytes', 'storage_dead_bytes', 'gauge', 'Bytes of overwritten or deleted records awaiting merge.'],
  ['keydirBytes', 'storage_keydir_bytes', 'gauge', 'Memory held by the keydir.'],
  ['writes', 'storage_writes_total', 'counter', 'Records appended.'],
  ['syncs', 'storage_fsyncs_total', 'counter', 'fdatasync calls (one per group commit).'],
  ['merges', 'storage_merges_total', 'counter', 'Completed Bitcask merges.'],
  ['mergeFailures', 'storage_merge_failures_total', 'counter', 'Failed Bitcask merges.'],
  ['writeFailed', 'storage_write_failed', 'gauge', '1 while the last write failed (e.g. disk full).'],
];

/** A counter or gauge read from a live object: [kind, name, help, value]. */
type Reading = readonly [kind: Kind, name: string, help: string, value: number];

export function collectShardMetrics(replica: Replica, links: Pick<PeerLinks<unknown>, 'counters'>, engine: Bitcask): MetricsSnapshot {
  const counters = replica.counters;
  const peer = links.counters();
  const readings: Reading[] = [
    ['counter', 'consensus_requests_total', 'Client operations submitted to the consensus layer.', counters.requests],
    ['counter', 'consensus_peer_messages_total', 'Peer messages received.', counters.peerMessages],
    ['counter', 'consensus_peer_messages_rejected_total', 'Peer messages dropped as malformed or from a non-member.', counters.peerMessagesRejected],
    ['counter', 'group_commits_total', 'Group commits (one fdatasync each).', counters.commits],
    ['counter', 'group_commit_records_total', 'PaxosLog records written by group commits (÷ commits = batch size).', counters.recordsCommitted],
    ['gauge', 'inflight_operations', 'Operations in flight in the scheduler.', replica.inFlight],
    ['counter', 'consensus_resends_total', 'Own-state resends of Paxos phases that waited longer than the resend interval.', replica.roundTrips.resends],
    ['counter', 'consensus_reads_joined_total', 'Consistent reads that shared the read round of another read of the same key started in the same turn.', replica.core.readsJoined],
    ['gauge', 'consensus_resend_interval_ms', 'Current resend interval, adapted to measured round trips (floor: resendTicks).', replica.roundTrips.resendTicks()],
    ['counter', 'peer_frames_sent_total', 'Frames written to peers.', peer.framesSent],
    ['counter', 'peer_bytes_sent_total', 'Bytes written to peers.', peer.bytesSent],
    ['counter', 'peer_messages_sent_total', 'Messages sent to peers (÷ frames = batch size).', peer.messagesSent],
    ['counter', 'peer_frames_compressed_total', 'Frames sent lz4-compressed.', peer.framesCompressed],
    ['counter', 'peer_frames_received_total', 'Frames received from peers.', peer.framesReceived],
    ['counter', 'peer_bytes_received_total', 'Bytes received from peers.', peer.bytesReceived],
    ['counter', 'peer_messages_dropped_total', 'Messages dropped by a full send queue.', peer.messagesDropped],
    ['counter', 'peer_reconnects_total', 'Reconnect attempts to peers.', peer.reconnectAttempts],
    ['counter', 'peer_auth_failures_total', 'Peer connections refused by authentication.', peer.authFailures],
    ['counter', 'peer_malformed_frames_total', 'Peer connections dropped for malformed frames.', peer.malformedFrames],
  ];
  const stats = engine.stats();
  for (const [stat, name, kind, help] of storageStats) {
    if (stat in stats) readings.push([kind, name, help, stats[stat]]);
  }
  const families: FamilySnapshot[] = readings.map(([kind, name, help, value]) => ({
    type: kind,
    name: `paxosstore_${name}`,
    help,
    series: [{ labels: {}, value }],
  }));
  families.push({
    type: 'counter',
    name: 'paxosstore_peer_frames_by_messages_total',
    help: 'Frames sent, by the power-of-two bucket of messages they carried (messages_min ≤ count < 2×messages_min).',
    series: peer.framesByMessageCount.map((value, index) => ({ labels: { messages_min: String(2 ** index) }, value })),
  });
  return { families };
}
