/**
 * The retention sweep: compaction trims a document's history only when the
 * document is written to, so a document nobody touches would keep its old
 * history forever. Every `intervalMs` this walks the stored documents and trims
 * each (one at a time, so it never competes much with live traffic).
 */
import type { DocName } from '../doc-name.js';
import type { Logger } from '../log.js';
import type { Store } from '../storage/store.js';

export interface RetentionSweep {
  /** One pass over every stored document (what the timer runs). */
  run(): Promise<void>;
  stop(): Promise<void>;
}

export const startRetentionSweep = (options: {
  readonly store: Store;
  readonly trim: (doc: DocName) => Promise<void>;
  readonly intervalMs: number;
  readonly logger: Logger;
}): RetentionSweep => {
  let running: Promise<void> | undefined;
  let stopped = false;
  const run = (): Promise<void> =>
    (running ??= (async () => {
      let docs = 0;
      try {
        for await (const doc of options.store.list()) {
          if (stopped) break;
          await options.trim(doc);
          docs++;
        }
        options.logger.debug({ docs }, 'history retention sweep done');
      } catch (err) {
        // The store closing under a sweep ends it; anything else is worth a line and the next pass.
        if (!stopped) options.logger.warn({ err, docs }, 'history retention sweep failed');
      } finally {
        running = undefined;
      }
    })());
  const timer = setInterval(() => void run(), options.intervalMs);
  timer.unref();
  return {
    run,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
};
