/**
 * `--ack replicated`: every change made on a node is published on its
 * document's channel and acknowledged only once the medium holds it (Redis
 * answered the XADD). While the medium is unreachable a publish is retried
 * with backoff, so `saved` waits instead of lying; past `maxWaiting` changes
 * waiting, or at shutdown, it fails (the client's connection closes and
 * resyncs, and the state-vector exchange repairs the rest).
 */
import type { DocName } from '../doc-name.js';
import { StateweaveError } from '../errors.js';
import type { Backplane } from './backplane.js';

export interface AckedPublisherOptions {
  readonly backplane: Backplane;
  /** Changes waiting for the medium before new ones fail with BACKPLANE_DOWN. @default 100000 */
  readonly maxWaiting?: number;
  /** @default 1000 */
  readonly maxBackoffMs?: number;
}

export interface AckedPublisher {
  /** Resolves once `frame` is on `doc`'s channel in the medium. */
  publish(doc: DocName, frame: Uint8Array): Promise<void>;
  readonly waiting: number;
  close(): void;
}

export const createAckedPublisher = (options: AckedPublisherOptions): AckedPublisher => {
  const maxWaiting = options.maxWaiting ?? 100_000;
  const maxBackoffMs = options.maxBackoffMs ?? 1000;
  let waiting = 0;
  let closed = false;

  const publish = async (doc: DocName, frame: Uint8Array): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      if (closed) throw new StateweaveError('SHUTTING_DOWN');
      try {
        return await options.backplane.publishAcked(doc, frame);
      } catch (err) {
        if (!(err instanceof StateweaveError && err.code === 'BACKPLANE_DOWN') && attempt > 100)
          throw err;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(maxBackoffMs, 20 * 2 ** attempt)),
        );
      }
    }
  };

  return {
    async publish(doc, frame) {
      if (waiting >= maxWaiting)
        throw new StateweaveError(
          'BACKPLANE_DOWN',
          `${waiting} changes are waiting for the backplane`,
        );
      waiting++;
      try {
        await publish(doc, frame);
      } finally {
        waiting--;
      }
    },
    get waiting() {
      return waiting;
    },
    close() {
      closed = true;
    },
  };
};
