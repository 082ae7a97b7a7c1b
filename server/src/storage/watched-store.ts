/**
 * A Store that says when new log entries are durable, so the change feed can
 * wake its readers instead of polling. Readers always read the store itself:
 * the signal carries nothing, it only says "look again".
 */
import type { Store } from './store.js';

export interface StoreWatch {
  /** Resolves after the next durable append, or after `timeoutMs`, or when `signal` aborts. */
  next(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Wakes every waiter (shutdown). */
  close(): void;
}

export const watchStore = (inner: Store): { store: Store; watch: StoreWatch } => {
  let waiters: Array<() => void> = [];
  const wake = (): void => {
    const woken = waiters;
    waiters = [];
    for (const w of woken) w();
  };
  const notify = <T>(written: Promise<T>): Promise<T> => {
    void written.then(wake, () => undefined);
    return written;
  };
  const store: Store = {
    ...inner,
    append: (doc, update, records, writers) =>
      update === null
        ? inner.append(doc, update, records, writers)
        : notify(inner.append(doc, update, records, writers)),
    appendAll: (entries, records) => notify(inner.appendAll(entries, records)),
  };
  // Methods of the inner store are plain closures (no `this`), so spreading keeps them working.
  const watch: StoreWatch = {
    next(timeoutMs, signal) {
      return new Promise<void>((resolve) => {
        if (signal?.aborted) return resolve();
        const done = (): void => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', done);
          waiters = waiters.filter((w) => w !== done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        signal?.addEventListener('abort', done, { once: true });
        waiters.push(done);
      });
    },
    close: wake,
  };
  return { store, watch };
};
