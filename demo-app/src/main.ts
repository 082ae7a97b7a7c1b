/**
 * The demo's shell: header with four tabs, one view per workload, hash routing.
 * Each view is a React component on `@stateweave/client/react` in its own
 * chunk, loaded when its tab is first shown: the editor brings Tiptap, the
 * others uPlot, and none waits for another. The shell itself stays plain DOM,
 * so counting a page view does not wait for React.
 */
import './style.css';
import { createSession } from './session.js';
import { trackConnection } from './status.js';
import { createVisits, PAGES, type Page } from './visits.js';

const session = createSession();
const track = trackConnection(
  document.querySelector<HTMLElement>('[data-testid="connection"]')!,
  document.querySelector<HTMLElement>('[data-testid="refusal"]')!,
);
document.querySelector('[data-testid="space"]')!.textContent = session.space;
const me = document.querySelector<HTMLElement>('[data-testid="me"]')!;
me.textContent = session.name;
me.style.setProperty('--c', session.color);

const visits = createVisits(session);
const builders: Record<Page, () => Promise<HTMLElement>> = {
  editor: async () =>
    (await import('./editor.js')).createEditorView(session, track, (color) =>
      me.style.setProperty('--c', color),
    ),
  analytics: async () =>
    (await import('./analytics.js')).createAnalyticsView(session, track, visits.log),
  sensors: async () => (await import('./sensors.js')).createSensorsView(session, track),
  permissions: async () => (await import('./permissions.js')).createPermissionsView(session, track),
};
const requested = new Set<Page>();
const ready = new Map<Page, HTMLElement>();
const container = document.getElementById('views')!;
let current: Page = 'editor';

const applyVisibility = (): void => {
  for (const [name, el] of ready) el.hidden = name !== current;
};

// The hash the view is for: a hashchange event's own URL, since by the time it is
// handled a second quick change may have moved location.hash on (its page view lost).
const show = (wanted: string = location.hash.slice(1)): void => {
  current = (PAGES as readonly string[]).includes(wanted) ? (wanted as Page) : 'editor';
  if (!requested.has(current)) {
    requested.add(current);
    const page = current;
    builders[page]().then(
      (view) => {
        ready.set(page, view);
        container.append(view);
        applyVisibility();
      },
      (err: unknown) => {
        container.append(`Could not load the ${page} view: ${(err as Error).message}`);
      },
    );
  }
  applyVisibility();
  for (const tab of document.querySelectorAll<HTMLAnchorElement>('.tabs a'))
    tab.setAttribute('aria-selected', String(tab.dataset.view === current));
  document.body.dataset.view = current;
  visits.visit(current); // every page view counts
};

window.addEventListener('hashchange', (event) => show(new URL(event.newURL).hash.slice(1)));
window.addEventListener('pagehide', () => void session.client.destroy());
show();
