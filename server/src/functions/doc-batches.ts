/**
 * Gathers invocations per document into batches. A batch runs as one task of the
 * document's queue (so batches and trigger runs of one document never overlap);
 * while it runs, new arrivals gather into the next batch. Under load a hot
 * document therefore costs one worker message and one store write per batch, not
 * per invocation, and latency stays at about two batch times.
 *
 * Bounded: past `maxWaiting` invocations waiting for one document, `add` refuses
 * at once with OVERLOADED.
 */
import type { DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { DocQueue } from './doc-queue.js';

export interface Waiting<T, R> {
  readonly item: T;
  resolve(result: R): void;
  reject(err: unknown): void;
}

export interface DocBatchesOptions<T, R> {
  readonly queue: DocQueue;
  readonly maxWaiting: number;
  readonly maxBatch: number;
  /** Runs one batch; must settle every entry (entries it leaves are rejected when it throws). */
  readonly run: (doc: DocName, batch: Array<Waiting<T, R>>) => Promise<void>;
}

export interface DocBatches<T, R> {
  add(doc: DocName, item: T): Promise<R>;
}

export const createDocBatches = <T, R>(options: DocBatchesOptions<T, R>): DocBatches<T, R> => {
  const { queue, maxWaiting, maxBatch } = options;
  /** The batch of each document that has not started yet. */
  const gathering = new Map<string, Array<Waiting<T, R>>>();
  const waiting = new Map<string, number>();

  const settleWaiting = (doc: DocName, count: number): void => {
    const left = (waiting.get(doc) ?? 0) - count;
    if (left > 0) waiting.set(doc, left);
    else waiting.delete(doc);
  };

  const start = (doc: DocName): Array<Waiting<T, R>> => {
    const batch: Array<Waiting<T, R>> = [];
    gathering.set(doc, batch);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      if (gathering.get(doc) === batch) gathering.delete(doc);
      settleWaiting(doc, batch.length);
    };
    queue
      .run(doc, () => {
        close();
        return options.run(doc, batch);
      })
      .catch((err: unknown) => {
        close(); // a no-op unless the queue refused the batch before it started
        for (const entry of batch) entry.reject(err);
      });
    return batch;
  };

  return {
    add(doc, item) {
      const count = waiting.get(doc) ?? 0;
      if (count >= maxWaiting) {
        return Promise.reject(
          new StateweaveError('OVERLOADED', `${count} invocations are waiting for ${doc}`),
        );
      }
      waiting.set(doc, count + 1);
      return new Promise<R>((resolve, reject) => {
        let batch = gathering.get(doc);
        if (!batch || batch.length >= maxBatch) batch = start(doc);
        batch.push({ item, resolve, reject });
      });
    },
  };
};
