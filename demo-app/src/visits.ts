/**
 * Page views for the analytics workload: every view of a tab calls
 * `trackVisit({ page, visitor })`; the latest calls are kept for the analytics
 * view to show. Kept apart from that view so counting a visit does not load
 * React (the view is loaded only when its tab is opened).
 */
import type { Session } from './session.js';

export const PAGES = ['editor', 'analytics', 'sensors', 'permissions'] as const;
export type Page = (typeof PAGES)[number];

export const pageKey = (session: Session, page: Page): string => `${session.space}/${page}`;

export interface CallLine {
  readonly text: string;
  readonly failed: boolean;
}

/** The latest calls, as an external store (`useSyncExternalStore`). */
export interface CallLog {
  subscribe(listener: () => void): () => void;
  get(): readonly CallLine[];
}

export interface Visits {
  readonly log: CallLog;
  /** Records a view of `page` by this visitor. */
  visit(page: Page): void;
}

const LOG_LINES = 6;

export const createVisits = (session: Session): Visits => {
  let lines: readonly CallLine[] = [];
  const listeners = new Set<() => void>();
  const add = (text: string, failed: boolean): void => {
    lines = [{ text, failed }, ...lines].slice(0, LOG_LINES);
    for (const listener of listeners) listener();
  };
  return {
    log: {
      subscribe(listener) {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      get: () => lines,
    },
    visit(page) {
      const started = performance.now();
      session.client
        .invoke('trackVisit', { page: pageKey(session, page), visitor: session.visitor })
        .then(
          ({ unique }) =>
            add(
              `trackVisit(${page}) → ${unique} unique · ${Math.round(performance.now() - started)} ms`,
              false,
            ),
          (err: unknown) => add(`trackVisit(${page}) failed: ${(err as Error).message}`, true),
        );
    },
  };
};
