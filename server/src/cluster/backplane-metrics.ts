/** Prometheus series of a backplane adapter, registered on the node's registry. */
import * as prom from 'prom-client';
import type { Metrics } from '../metrics.js';

export interface BackplaneMetrics {
  /** 1 while the adapter is connected (e.g. to Redis), 0 otherwise. */
  readonly up: prom.Gauge;
  readonly outages: prom.Counter;
  /** Messages out (published or sent), in, and dropped (could not leave). */
  readonly messages: prom.Counter<'direction'>;
  /** Live members, this node included. */
  readonly members: prom.Gauge;
  /** Channel positions found trimmed (messages this node missed; repaired by state vectors). */
  readonly gaps: prom.Counter;
}

export const createBackplaneMetrics = (metrics: Metrics): BackplaneMetrics => {
  const registers = [metrics.registry];
  return {
    up: new prom.Gauge({
      name: 'stateweave_backplane_up',
      help: '1 while the backplane (Redis) is connected',
      registers,
    }),
    outages: new prom.Counter({
      name: 'stateweave_backplane_outages_total',
      help: 'Times the backplane connection was lost',
      registers,
    }),
    messages: new prom.Counter({
      name: 'stateweave_backplane_messages_total',
      help: 'Backplane messages by direction: out, in, dropped (the backplane was unreachable)',
      labelNames: ['direction'],
      registers,
    }),
    members: new prom.Gauge({
      name: 'stateweave_backplane_members',
      help: 'Live cluster members seen on the backplane, this node included',
      registers,
    }),
    gaps: new prom.Counter({
      name: 'stateweave_backplane_gaps_total',
      help: 'Times this node found its read position in a channel trimmed (then it exchanges state vectors)',
      registers,
    }),
  };
};
