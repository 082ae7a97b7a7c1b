/**
 * Whether the device is online, as the browser reports it. In Node (no
 * `navigator.onLine`, no `online`/`offline` events) the device is always online.
 */

export interface NetworkMonitor {
  /** false only when the platform knows it is offline. */
  isOnline(): boolean;
  /** Calls `listener` on every change; returns a function that unsubscribes. */
  subscribe(listener: (online: boolean) => void): () => void;
}

interface EventTargetLike {
  addEventListener(type: string, listener: () => void): void;
  removeEventListener(type: string, listener: () => void): void;
}

const hasEvents = (value: unknown): value is EventTargetLike =>
  typeof (value as Partial<EventTargetLike> | undefined)?.addEventListener === 'function' &&
  typeof (value as Partial<EventTargetLike> | undefined)?.removeEventListener === 'function';

/** The browser's view (`navigator.onLine`, `online`/`offline` on `window`); always online elsewhere. */
export const browserNetwork = (): NetworkMonitor => ({
  isOnline() {
    const nav = (globalThis as { navigator?: { onLine?: unknown } }).navigator;
    return nav?.onLine !== false;
  },
  subscribe(listener) {
    const target: unknown = globalThis;
    if (!hasEvents(target)) return () => undefined;
    const online = (): void => listener(true);
    const offline = (): void => listener(false);
    target.addEventListener('online', online);
    target.addEventListener('offline', offline);
    return () => {
      target.removeEventListener('online', online);
      target.removeEventListener('offline', offline);
    };
  },
});
