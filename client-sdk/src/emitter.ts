/**
 * A tiny typed event emitter (no Node `events`, so it runs in browsers). A
 * listener that throws does not break the SDK's state machine: the error is
 * re-thrown on a fresh microtask, where it surfaces like any uncaught error.
 */

/** Maps each event name to its listener's signature (an interface works too). */
export type EventMap<E> = { [K in keyof E]: (...args: never[]) => void };

export interface Emitter<E extends EventMap<E>> {
  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof E>(event: K, listener: E[K]): () => void;
  off<K extends keyof E>(event: K, listener: E[K]): void;
  emit<K extends keyof E>(event: K, ...args: Parameters<E[K]>): void;
  /** Drops every listener. */
  clear(): void;
}

export const createEmitter = <E extends EventMap<E>>(): Emitter<E> => {
  const listeners = new Map<keyof E, Set<E[keyof E]>>();
  const emitter: Emitter<E> = {
    on(event, listener) {
      let set = listeners.get(event);
      if (!set) listeners.set(event, (set = new Set()));
      set.add(listener);
      return () => emitter.off(event, listener);
    },
    off(event, listener) {
      listeners.get(event)?.delete(listener);
    },
    emit(event, ...args) {
      const set = listeners.get(event);
      if (!set) return;
      for (const listener of [...set]) {
        try {
          (listener as (...a: Parameters<E[typeof event]>) => void)(...args);
        } catch (err) {
          queueMicrotask(() => {
            throw err;
          });
        }
      }
    },
    clear() {
      listeners.clear();
    },
  };
  return emitter;
};
