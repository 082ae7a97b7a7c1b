/**
 * One webhook target's delivery loop: wait for changes after the durable
 * cursor, let a burst settle (`debounceMs`), cut a batch (one event per
 * document), store the batch's end, POST each event signed until the receiver
 * answers 2xx (exponential backoff with jitter), then store the new cursor.
 * Events of one document leave in seq order; a later batch waits for the
 * earlier one, so a receiver sees each document's changes in order.
 */
import type { Logger } from '../log.js';
import type { StoreWatch } from '../storage/watched-store.js';
import type { Outbox, OutboxState, WebhookEvent } from './outbox.js';
import { signWebhook } from './signature.js';
import type { WebhookMetrics } from './webhook-metrics.js';

export interface RetryPolicy {
  /** First wait after a failure; doubles per failure. @default 500 */
  readonly minMs: number;
  /** Longest wait between tries. @default 60000 */
  readonly maxMs: number;
}

export interface DeliveryOptions {
  readonly label: string;
  readonly url: string;
  readonly outbox: Outbox;
  readonly watch: StoreWatch;
  readonly key: Buffer;
  readonly logger: Logger;
  readonly metrics: WebhookMetrics;
  readonly debounceMs: number;
  /** An event failing for longer than this (since its first change) is dropped, with a metric and a log line. */
  readonly maxAgeMs: number;
  readonly retry: RetryPolicy;
  /** One request's time limit. @default 10000 */
  readonly requestTimeoutMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

export interface DeliveryStatus {
  readonly hook: string;
  /** Every change up to this cursor has been delivered (or dropped). */
  readonly cursor: string;
  /** Time of the oldest change not yet delivered; null when caught up. */
  readonly pendingSince: string | null;
  readonly consecutiveFailures: number;
  readonly lastError: string | null;
  readonly lastSuccess: string | null;
  readonly delivered: number;
  readonly dropped: number;
}

export interface Delivery {
  status(): DeliveryStatus;
  /** Ends the loop (an in-flight request is aborted; its event is sent again after a restart). */
  stop(): Promise<void>;
}

/** How often a target that keeps failing is reported again, at most. */
const REPORT_EVERY_MS = 60_000;
/** Longest idle wait for new changes (the store's wake-up can fall between a read and the wait). */
const IDLE_POLL_MS = 1000;
/** Requests in flight per target (one per document of a batch). */
const PARALLEL = 8;
/** Failures in a row before the log says the endpoint keeps failing. */
const KEEPS_FAILING = 5;

export const startDelivery = (options: DeliveryOptions): Delivery => {
  const { label, outbox, watch, logger, metrics, retry } = options;
  const now = options.now ?? Date.now;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const stopping = new AbortController();
  const { signal } = stopping;
  let state: OutboxState = { cursor: 0 };
  let pendingSince: number | undefined;
  let failures = 0;
  let lastError: string | undefined;
  let lastSuccess: number | undefined;
  let lastReport = 0;
  let delivered = 0;
  let dropped = 0;

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener('abort', done, { once: true });
    });

  const backoff = (attempt: number): number => {
    const ceiling = Math.min(retry.maxMs, retry.minMs * 2 ** Math.min(attempt, 30));
    return ceiling / 2 + Math.random() * (ceiling / 2);
  };

  const save = async (next: OutboxState): Promise<void> => {
    await outbox.save(next);
    state = next;
  };

  const body = (event: WebhookEvent): string =>
    event.type === 'document.deleted'
      ? JSON.stringify({
          type: event.type,
          timestamp: new Date(event.lastTime).toISOString(),
          // Resume the change feed after this; the document's later changes start a new one.
          data: { doc: event.doc, cursor: String(event.lastSeq), writers: event.writers },
        })
      : JSON.stringify({
          type: 'document.changed',
          timestamp: new Date(event.lastTime).toISOString(),
          data: {
            doc: event.doc,
            // Resume the change feed after this (GET /v1/docs/:name/changes?since=).
            cursor: String(event.lastSeq),
            firstCursor: String(event.firstSeq),
            changes: event.changes,
            writers: event.writers,
            firstTime: new Date(event.firstTime).toISOString(),
            update: Buffer.from(event.update).toString('base64'),
          },
        });

  /** One POST; resolves with an error message, or undefined on a 2xx. */
  const post = async (event: WebhookEvent, payload: string): Promise<string | undefined> => {
    const headers = signWebhook(options.key, event.id, now() / 1000, payload);
    try {
      const res = await fetch(options.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: payload,
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(requestTimeoutMs)]),
      });
      // The body is not needed; reading it frees the connection for reuse.
      await res.arrayBuffer().catch(() => undefined);
      return res.status >= 200 && res.status < 300 ? undefined : `HTTP ${res.status}`;
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      return cause ?? (err as Error).message;
    }
  };

  const onFailure = (event: WebhookEvent, error: string): void => {
    failures++;
    lastError = error;
    metrics.deliveries.inc({ hook: label, result: 'error' });
    metrics.failing.set({ hook: label }, failures);
    if (failures === 1)
      logger.warn(
        { hook: label, event: event.id, doc: event.doc, error },
        'webhook delivery failed; retrying with backoff',
      );
    else if (failures >= KEEPS_FAILING && now() - lastReport >= REPORT_EVERY_MS) {
      lastReport = now();
      logger.error(
        {
          hook: label,
          failures,
          error,
          waitingSince: pendingSince !== undefined ? new Date(pendingSince).toISOString() : null,
          maxAgeMs: options.maxAgeMs,
        },
        'webhook endpoint keeps failing: changes wait in the outbox and are dropped after --webhook-max-age',
      );
    }
  };

  const onSuccess = (): void => {
    if (failures >= KEEPS_FAILING)
      logger.info({ hook: label, failures }, 'webhook endpoint answers again');
    failures = 0;
    lastReport = 0;
    lastSuccess = now();
    delivered++;
    metrics.deliveries.inc({ hook: label, result: 'ok' });
    metrics.failing.set({ hook: label }, 0);
  };

  /** Sends one event until it is taken, dropped for age, or the loop stops. */
  const deliver = async (event: WebhookEvent): Promise<void> => {
    const payload = body(event);
    for (let attempt = 0; !signal.aborted; attempt++) {
      const error = await post(event, payload);
      if (signal.aborted) return;
      if (error === undefined) return onSuccess();
      onFailure(event, error);
      if (now() - event.firstTime > options.maxAgeMs) {
        dropped++;
        metrics.dropped.inc({ hook: label });
        logger.error(
          { hook: label, event: event.id, doc: event.doc, changes: event.changes, error },
          'webhook event dropped: its receiver failed for longer than --webhook-max-age',
        );
        return;
      }
      await sleep(backoff(attempt));
    }
  };

  const updateLag = (): void => {
    metrics.lagSeconds.set(
      { hook: label },
      pendingSince === undefined ? 0 : Math.max(0, (now() - pendingSince) / 1000),
    );
  };
  const lagTimer = setInterval(updateLag, 1000);
  lagTimer.unref();

  const cycle = async (): Promise<void> => {
    if (state.batchEnd === undefined) {
      const { entries, end } = await outbox.peek(state.cursor);
      if (entries.length === 0) {
        // Nothing of ours: move past other documents' changes (stored with the next batch).
        state = { cursor: end };
        pendingSince = undefined;
        updateLag();
        // A change stored between the peek and this wait wakes nobody: look again within IDLE_POLL_MS.
        await watch.next(IDLE_POLL_MS, signal);
        return;
      }
      pendingSince = entries[0]!.time;
      // Let a burst settle, so one event carries a document's keystrokes of a second.
      const settle = entries[0]!.time + options.debounceMs - now();
      if (settle > 0) return sleep(settle);
      await save({ cursor: state.cursor, batchEnd: end });
    }
    const end = state.batchEnd!;
    const events = await outbox.events(state.cursor, end);
    if (events[0]) pendingSince = events[0].firstTime;
    // Documents are independent: a batch's events go out together, each retried on its own.
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < events.length && !signal.aborted) await deliver(events[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, events.length) }, worker));
    if (signal.aborted) return;
    await save({ cursor: end });
    pendingSince = undefined;
    updateLag();
  };

  const run = async (): Promise<void> => {
    try {
      const stored = await outbox.load();
      // A new target starts at the end of the log: it receives changes from now on.
      await save(stored ?? { cursor: await outbox.logEnd() });
    } catch (err) {
      if (!signal.aborted) logger.error({ err, hook: label }, 'webhook outbox could not be read');
      return;
    }
    for (let errors = 0; !signal.aborted;) {
      try {
        await cycle();
        errors = 0;
      } catch (err) {
        if (signal.aborted) break;
        // A store read or write failed: try again later, from the stored state.
        logger.warn({ err, hook: label }, 'webhook outbox: store error; retrying');
        await sleep(backoff(errors++));
      }
    }
  };
  const running = run();

  return {
    status: () => ({
      hook: label,
      cursor: String(state.cursor),
      pendingSince: pendingSince !== undefined ? new Date(pendingSince).toISOString() : null,
      consecutiveFailures: failures,
      lastError: lastError ?? null,
      lastSuccess: lastSuccess !== undefined ? new Date(lastSuccess).toISOString() : null,
      delivered,
      dropped,
    }),
    async stop() {
      stopping.abort();
      clearInterval(lagTimer);
      await running;
    },
  };
};
