/** Prometheus series of the cluster layer, registered on the node's registry. */
import * as prom from 'prom-client';
import type { Metrics } from '../metrics.js';

export interface ClusterMetrics {
  /** 0 down, 1 connecting, 2 connected. */
  readonly linkState: prom.Gauge<'peer'>;
  readonly bytesIn: prom.Counter<'peer'>;
  readonly bytesOut: prom.Counter<'peer'>;
  /** See PeerStatus.lagMs. */
  readonly lagSeconds: prom.Gauge<'peer'>;
  readonly refused: prom.Counter<'reason'>;
}

export const LINK_STATE_VALUE = { down: 0, connecting: 1, connected: 2 } as const;

export const createClusterMetrics = (metrics: Metrics): ClusterMetrics => {
  const registers = [metrics.registry];
  return {
    linkState: new prom.Gauge({
      name: 'stateweave_peer_link_state',
      help: 'Peer link state: 0 down, 1 connecting, 2 connected',
      labelNames: ['peer'],
      registers,
    }),
    bytesIn: new prom.Counter({
      name: 'stateweave_peer_bytes_in_total',
      help: 'Bytes received on peer links',
      labelNames: ['peer'],
      registers,
    }),
    bytesOut: new prom.Counter({
      name: 'stateweave_peer_bytes_out_total',
      help: 'Bytes sent on peer links',
      labelNames: ['peer'],
      registers,
    }),
    lagSeconds: new prom.Gauge({
      name: 'stateweave_peer_lag_seconds',
      help: 'Replication lag to a peer: last ping round trip while connected, time since the link went down otherwise',
      labelNames: ['peer'],
      registers,
    }),
    refused: new prom.Counter({
      name: 'stateweave_peer_refused_total',
      help: 'Peer connections refused (authentication), by reason',
      labelNames: ['reason'],
      registers,
    }),
  };
};
