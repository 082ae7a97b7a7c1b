/**
 * Per-document serial execution: tasks for one document run one at a time, in
 * arrival order; different documents run in parallel. The queue of each document
 * is bounded: past `maxQueued`, a task is refused at once with OVERLOADED instead
 * of waiting without bound.
 */
import { StateweaveError } from '../errors.js';

export interface DocQueue {
  run<T>(doc: string, task: () => Promise<T>): Promise<T>;
  /** Tasks queued or running for `doc`. */
  depth(doc: string): number;
}

export const createDocQueue = (maxQueued: number): DocQueue => {
  const queues = new Map<string, { depth: number; tail: Promise<void> }>();
  return {
    run(doc, task) {
      const queue = queues.get(doc) ?? { depth: 0, tail: Promise.resolve() };
      if (queue.depth >= maxQueued) {
        return Promise.reject(
          new StateweaveError('OVERLOADED', `${queue.depth} invocations are queued for ${doc}`),
        );
      }
      queue.depth++;
      queues.set(doc, queue);
      const result = queue.tail.then(task);
      queue.tail = result.then(
        () => undefined,
        () => undefined, // the caller sees the failure; the next task runs regardless
      );
      void queue.tail.then(() => {
        if (--queue.depth === 0 && queues.get(doc) === queue) queues.delete(doc);
      });
      return result;
    },
    depth: (doc) => queues.get(doc)?.depth ?? 0,
  };
};
