/** Prometheus series of webhook delivery, registered on the node's registry. */
import * as prom from 'prom-client';
import type { Metrics } from '../metrics.js';

export interface WebhookMetrics {
  /** Requests by target and result (`ok`: a 2xx answer; `error`: anything else). */
  readonly deliveries: prom.Counter<'hook' | 'result'>;
  /** Events given up on after `--webhook-max-age` of failures. */
  readonly dropped: prom.Counter<'hook'>;
  /** Age of the oldest change not yet delivered, 0 when caught up. */
  readonly lagSeconds: prom.Gauge<'hook'>;
  /** Failed requests in a row (0 after a success). */
  readonly failing: prom.Gauge<'hook'>;
}

export const createWebhookMetrics = (metrics: Metrics): WebhookMetrics => {
  const registers = [metrics.registry];
  return {
    deliveries: new prom.Counter({
      name: 'stateweave_webhook_deliveries_total',
      help: 'Webhook requests by target and result (ok: 2xx; error: anything else, retried)',
      labelNames: ['hook', 'result'],
      registers,
    }),
    dropped: new prom.Counter({
      name: 'stateweave_webhook_dropped_total',
      help: 'Webhook events given up on after failing for longer than --webhook-max-age',
      labelNames: ['hook'],
      registers,
    }),
    lagSeconds: new prom.Gauge({
      name: 'stateweave_webhook_lag_seconds',
      help: 'Age of the oldest change a webhook target has not yet received (0 when caught up)',
      labelNames: ['hook'],
      registers,
    }),
    failing: new prom.Gauge({
      name: 'stateweave_webhook_consecutive_failures',
      help: 'Failed webhook requests in a row per target (0 after a success)',
      labelNames: ['hook'],
      registers,
    }),
  };
};
