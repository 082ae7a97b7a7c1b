/**
 * Admission to the workers: a task leases an idle worker (one that has its
 * document warm, if any; else the one with the fewest warm copies) or waits in
 * a bounded queue; past `maxWaiting` it is refused at once with OVERLOADED. A
 * freed worker goes to a waiter whose document it has warm, else to the oldest.
 */
import { StateweaveError } from '../errors.js';
import type { Slot } from './worker-slots.js';

/** A task's hold on one worker; ends with `release`. */
export interface Lease {
  readonly slot: Slot;
  readonly id: number;
}

export interface WorkerLeases {
  /** A worker for a task that would like `warm` (a warm key) to be warm in it. */
  acquire(warm: string | undefined): Promise<Lease>;
  /** Ends a lease; a no-op when the worker was replaced (and handed on) meanwhile. */
  release(lease: Lease): void;
  /** The slot's worker is free (idle, or new after a replacement): give it to a waiter. */
  free(slot: Slot): void;
  /** Refuses every waiter and every later acquire with SHUTTING_DOWN. */
  close(): void;
}

export const createWorkerLeases = (
  slots: () => readonly Slot[],
  maxWaiting: number,
): WorkerLeases => {
  const waiting: Array<{
    /** The warm key the task would like its worker to have. */
    warm: string | undefined;
    take: (lease: Lease) => void;
    reject: (err: StateweaveError) => void;
  }> = [];
  let nextLease = 1;
  let closing = false;

  const lease = (slot: Slot): Lease => {
    const id = nextLease++;
    slot.owner = id;
    return { slot, id };
  };

  const free = (slot: Slot): void => {
    slot.owner = undefined;
    if (waiting.length === 0 || closing) return;
    let index = waiting.findIndex((w) => w.warm !== undefined && slot.warm.has(w.warm));
    if (index < 0) index = 0;
    const [waiter] = waiting.splice(index, 1);
    waiter!.take(lease(slot));
  };

  return {
    acquire(warm) {
      if (closing) return Promise.reject(new StateweaveError('SHUTTING_DOWN'));
      const idle = slots().filter((s) => s.owner === undefined);
      const slot =
        (warm !== undefined ? idle.find((s) => s.warm.has(warm)) : undefined) ??
        idle.sort((a, b) => a.warm.size - b.warm.size)[0];
      if (slot) return Promise.resolve(lease(slot));
      if (waiting.length >= maxWaiting) {
        return Promise.reject(
          new StateweaveError(
            'OVERLOADED',
            `${waiting.length} function tasks are waiting for a worker`,
          ),
        );
      }
      return new Promise((take, reject) => waiting.push({ warm, take, reject }));
    },
    release({ slot, id }) {
      if (slot.owner === id) free(slot);
    },
    free,
    close() {
      closing = true;
      for (const waiter of waiting.splice(0)) waiter.reject(new StateweaveError('SHUTTING_DOWN'));
    },
  };
};
