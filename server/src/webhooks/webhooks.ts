/**
 * Webhooks: one delivery loop per `--webhook` target over the store's change
 * log (outbox.ts, delivery.ts). Built in server.ts; `status()` feeds
 * `GET /v1/webhooks`. docs/history.md, "Webhooks", is the receiver's guide.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../storage/store.js';
import type { StoreWatch } from '../storage/watched-store.js';
import { startDelivery, type Delivery, type DeliveryStatus, type RetryPolicy } from './delivery.js';
import { createOutbox } from './outbox.js';
import { MIN_WEBHOOK_SECRET_BYTES, webhookKey } from './signature.js';
import { createWebhookMetrics } from './webhook-metrics.js';
import { targetLabel, type WebhookTarget } from './webhook-target.js';

export interface WebhooksOptions {
  readonly targets: readonly WebhookTarget[];
  /** This node's id, part of every event id. */
  readonly nodeId: string;
  readonly secret: string;
  readonly store: Store;
  readonly watch: StoreWatch;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly debounceMs: number;
  readonly maxAgeMs: number;
  readonly retry: RetryPolicy;
}

export interface Webhooks {
  status(): Array<DeliveryStatus & { prefix: string }>;
  stop(): Promise<void>;
}

/** Throws on settings that cannot work (checked before the node listens). */
export const checkWebhookSettings = (
  targets: readonly WebhookTarget[],
  secret: string | undefined,
  historyRetentionMs: number,
): void => {
  if (targets.length === 0) return;
  if (secret === undefined)
    throw new Error('--webhook needs --webhook-secret (receivers verify the signature with it)');
  if (webhookKey(secret).byteLength < MIN_WEBHOOK_SECRET_BYTES)
    throw new Error(
      `--webhook-secret has fewer than ${MIN_WEBHOOK_SECRET_BYTES} bytes (try: openssl rand -base64 32)`,
    );
  if (historyRetentionMs <= 0)
    throw new Error(
      '--webhook delivers from the change log, which --history-retention 0 drops: keep a history window',
    );
};

export const startWebhooks = (options: WebhooksOptions): Webhooks => {
  const key = webhookKey(options.secret);
  const metrics = createWebhookMetrics(options.metrics);
  const loops: Array<{ prefix: string; delivery: Delivery }> = options.targets.map((target) => ({
    prefix: target.prefix,
    delivery: startDelivery({
      label: targetLabel(target),
      url: target.url,
      outbox: createOutbox(options.store, target, options.nodeId),
      watch: options.watch,
      key,
      logger: options.logger,
      metrics,
      debounceMs: options.debounceMs,
      maxAgeMs: options.maxAgeMs,
      retry: options.retry,
    }),
  }));
  return {
    status: () => loops.map(({ prefix, delivery }) => ({ ...delivery.status(), prefix })),
    async stop() {
      await Promise.all(loops.map(({ delivery }) => delivery.stop()));
    },
  };
};
