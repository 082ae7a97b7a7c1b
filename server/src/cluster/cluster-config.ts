/** Checks of the cluster settings, shared by the CLI and createServer. */
import { MIN_PEER_SECRET_BYTES, NODE_ID_PATTERN } from './peer-auth.js';
import type { PlacementMode } from './placement.js';

export interface ClusterSettings {
  readonly nodeId: string;
  readonly peers: readonly string[];
  readonly peerSecret: string | undefined;
  readonly replicationFactor: number;
  /** The Redis backplane URL, instead of `peers`. */
  readonly redis?: string | undefined;
  /** The client token secret, which the peer secret must not equal. */
  readonly authSecret: string | undefined;
}

/** Throws an Error that says what to fix; returns the peer URLs normalised. */
export const checkClusterSettings = (settings: ClusterSettings): string[] => {
  const { nodeId, peerSecret } = settings;
  if (!NODE_ID_PATTERN.test(nodeId))
    throw new Error(`node id ${JSON.stringify(nodeId)}: use 1–64 characters of A-Z a-z 0-9 _ -`);
  if (!Number.isSafeInteger(settings.replicationFactor) || settings.replicationFactor < 1) {
    throw new Error('replication factor must be an integer ≥ 1');
  }
  const peers = settings.peers.map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new Error(`peer ${JSON.stringify(raw)} is not a URL (expected ws://host:port)`);
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:')
      throw new Error(`peer ${raw}: expected a ws:// or wss:// URL`);
    return raw.replace(/\/+$/, '');
  });
  if (settings.redis !== undefined) {
    checkRedisUrl(settings.redis);
    if (peers.length > 0) throw new Error('use either --peers or --redis, not both');
    if (nodeId === 'standalone')
      throw new Error('a node on --redis needs its own --node-id (or STATEWEAVE_NODE_ID)');
    return peers;
  }
  if (peers.length === 0) return peers;
  if (peerSecret === undefined)
    throw new Error('--peers needs --peer-secret (or STATEWEAVE_PEER_SECRET), shared by all nodes');
  if (Buffer.byteLength(peerSecret) < MIN_PEER_SECRET_BYTES)
    throw new Error(`the peer secret must be at least ${MIN_PEER_SECRET_BYTES} bytes`);
  if (peerSecret === settings.authSecret)
    throw new Error('the peer secret must differ from the client token secret');
  if (nodeId === 'standalone')
    throw new Error('a node with peers needs its own --node-id (or STATEWEAVE_NODE_ID)');
  return peers;
};

/** Throws unless `raw` is a redis:// or rediss:// URL (a password in it is fine). */
export const checkRedisUrl = (raw: string): void => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error('--redis is not a URL (expected redis://host:6379 or rediss://…)');
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:')
    throw new Error('--redis: expected a redis:// or rediss:// URL');
};

/** Where a node is and how it places documents (`--region`, `--placement`). */
export interface PlacementSettings {
  readonly region?: string | undefined;
  readonly placement?: PlacementMode | undefined;
  readonly presenceDwellMs?: number | undefined;
}

/** Throws an Error that says what to fix. */
export const checkPlacement = (settings: PlacementSettings): void => {
  const { region, placement } = settings;
  if (region !== undefined && !NODE_ID_PATTERN.test(region))
    throw new Error(`region ${JSON.stringify(region)}: use 1–64 characters of A-Z a-z 0-9 _ -`);
  if (placement !== undefined && placement !== 'hash' && placement !== 'presence')
    throw new Error('--placement takes hash or presence');
  if (placement === 'presence' && region === undefined)
    throw new Error('--placement presence needs --region (or STATEWEAVE_REGION)');
};

/** The settings as cluster options, without the ones not given. */
export const placementOptions = (settings: PlacementSettings): PlacementSettings => ({
  ...(settings.region !== undefined ? { region: settings.region } : {}),
  ...(settings.placement !== undefined ? { placement: settings.placement } : {}),
  ...(settings.presenceDwellMs !== undefined ? { presenceDwellMs: settings.presenceDwellMs } : {}),
});
