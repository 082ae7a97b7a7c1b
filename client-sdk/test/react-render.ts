/**
 * Renders React elements into the happy-dom document as a browser would:
 * React's scheduler flushes renders by itself, so tests wait for what the DOM
 * shows (`eventually`) instead of wrapping every socket event in `act`.
 */
import './dom-shim.js';
import type { ReactNode } from 'react';
import { createRoot } from 'react-dom/client';
import { waitFor } from './helpers.js';

export interface Rendered {
  /** The text of the element with `data-testid="id"` (undefined if there is none). */
  text(id: string): string | undefined;
  rerender(node: ReactNode): void;
  unmount(): void;
}

export const render = (node: ReactNode): Rendered => {
  const container = document.createElement('div');
  document.body.append(container);
  const root = createRoot(container);
  root.render(node);
  return {
    text: (id) => container.querySelector(`[data-testid="${id}"]`)?.textContent ?? undefined,
    rerender: (next) => root.render(next),
    unmount: () => {
      root.unmount();
      container.remove();
    },
  };
};

/** Waits until `check` holds (React renders between polls); `shown` says what was there instead. */
export const eventually = async (
  check: () => boolean,
  what: string,
  timeoutMs = 5000,
  shown: () => string = () => document.body.textContent ?? '',
): Promise<void> => {
  try {
    await waitFor(check, what, timeoutMs);
  } catch (err) {
    throw new Error(`${(err as Error).message}; the page shows ${JSON.stringify(shown())}`, {
      cause: err,
    });
  }
};
