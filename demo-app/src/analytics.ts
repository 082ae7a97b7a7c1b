/**
 * Streaming aggregation: every page view calls `trackVisit({ page, visitor })`,
 * which adds the visitor to the map `visitors` of `analytics/<page>`. The table
 * observes those documents, so it updates live in every open browser.
 */
import type { DocHandle } from '@stateweave/client';
import { h } from './dom.js';
import type { Session } from './session.js';

export const PAGES = ['editor', 'analytics', 'sensors', 'permissions'] as const;
export type Page = (typeof PAGES)[number];

export const pageKey = (session: Session, page: Page): string => `${session.space}/${page}`;

export interface AnalyticsView {
  readonly element: HTMLElement;
  /** Records a view of `page` by this visitor. */
  visit(page: Page): void;
}

export const createAnalyticsView = (
  session: Session,
  track: (handle: DocHandle) => void,
): AnalyticsView => {
  const rows = h('tbody');
  const total = h('span', { class: 'big', 'data-testid': 'visitors-total' }, '0');
  const log = h('ul', { class: 'log', 'data-testid': 'visit-log' });
  const handles = new Map<Page, DocHandle>();

  const render = (): void => {
    const everyone = new Set<string>();
    rows.replaceChildren(
      ...PAGES.map((page) => {
        const visitors = handles.get(page)?.doc.getMap<number>('visitors');
        const count = visitors?.size ?? 0;
        let last = 0;
        visitors?.forEach((t, id) => {
          everyone.add(id);
          last = Math.max(last, t);
        });
        return h(
          'tr',
          { 'data-testid': `visits-${page}` },
          h('td', {}, page),
          h('td', { class: 'num', 'data-testid': 'unique' }, count),
          h('td', { class: 'muted' }, last ? new Date(last).toLocaleTimeString() : '—'),
        );
      }),
    );
    total.textContent = String(everyone.size);
  };

  for (const page of PAGES) {
    const handle = session.client.open(`analytics/${pageKey(session, page)}`);
    track(handle);
    handles.set(page, handle);
    handle.doc.getMap('visitors').observe(render);
    handle.on('synced', render);
  }
  render();

  const visit = (page: Page): void => {
    const started = performance.now();
    session.client
      .invoke('trackVisit', { page: pageKey(session, page), visitor: session.visitor })
      .then(
        ({ unique }) => {
          log.prepend(
            h(
              'li',
              {},
              `trackVisit(${page}) → ${unique} unique · ${Math.round(performance.now() - started)} ms`,
            ),
          );
          while (log.children.length > 6) log.lastElementChild?.remove();
        },
        (err: unknown) => {
          log.prepend(
            h('li', { class: 'error' }, `trackVisit(${page}) failed: ${(err as Error).message}`),
          );
        },
      );
  };

  const element = h(
    'section',
    { class: 'view', 'data-view': 'analytics' },
    h(
      'div',
      { class: 'view-head' },
      h(
        'div',
        {},
        h('h1', {}, 'Live analytics'),
        h(
          'p',
          { class: 'sub' },
          'Unique visitors per page. Each page view calls the trackVisit function; the table observes the analytics documents.',
        ),
      ),
    ),
    h(
      'div',
      { class: 'grid-2' },
      h(
        'div',
        { class: 'card' },
        h(
          'table',
          { class: 'table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', {}, 'Page'),
              h('th', { class: 'num' }, 'Unique visitors'),
              h('th', {}, 'Last visit'),
            ),
          ),
          rows,
        ),
      ),
      h(
        'div',
        { class: 'card' },
        h('h2', {}, 'Visitors in this space'),
        total,
        h('p', { class: 'muted' }, 'You are ', h('code', {}, session.visitor)),
        h('h2', {}, 'Recent calls'),
        log,
      ),
    ),
  );
  return { element, visit };
};
