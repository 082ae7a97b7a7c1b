/** The demo's shell: header with four tabs, one view per workload, hash routing. */
import './style.css';
import { createAnalyticsView, PAGES, type Page } from './analytics.js';
import { createEditorView } from './editor.js';
import { createPermissionsView } from './permissions.js';
import { createSensorsView } from './sensors.js';
import { createSession } from './session.js';
import { trackConnection } from './status.js';

const session = createSession();
const track = trackConnection(
  document.querySelector<HTMLElement>('[data-testid="connection"]')!,
  document.querySelector<HTMLElement>('[data-testid="refusal"]')!,
);
document.querySelector('[data-testid="space"]')!.textContent = session.space;
const me = document.querySelector<HTMLElement>('[data-testid="me"]')!;
me.textContent = session.name;
me.style.setProperty('--c', session.color);

const analytics = createAnalyticsView(session, track);
const builders: Record<Page, () => HTMLElement> = {
  editor: () => createEditorView(session, track),
  analytics: () => analytics.element,
  sensors: () => createSensorsView(session, track),
  permissions: () => createPermissionsView(session, track),
};
const built = new Map<Page, HTMLElement>();
const container = document.getElementById('views')!;

const show = (): void => {
  const wanted = location.hash.slice(1);
  const page: Page = (PAGES as readonly string[]).includes(wanted) ? (wanted as Page) : 'editor';
  let view = built.get(page);
  if (!view) {
    view = builders[page]();
    built.set(page, view);
    container.append(view);
  }
  for (const [name, el] of built) el.hidden = name !== page;
  for (const tab of document.querySelectorAll<HTMLAnchorElement>('.tabs a'))
    tab.setAttribute('aria-selected', String(tab.dataset.view === page));
  document.body.dataset.view = page;
  analytics.visit(page); // every page view counts
};

window.addEventListener('hashchange', show);
window.addEventListener('pagehide', () => void session.client.destroy());
show();
