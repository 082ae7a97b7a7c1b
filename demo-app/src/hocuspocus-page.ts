/**
 * The same shared notes as the demo's editor (the same Tiptap editor), through the stock
 * `@hocuspocus/provider` instead of the SDK: what an app built for Hocuspocus
 * (Tiptap's collaboration, for one) gets when pointed at a node. One
 * `HocuspocusProviderWebsocket` carries every document of the page; `?also=a,b`
 * opens more documents on it, each shown with its own state, so a document the
 * token does not grant is refused alone while the notes keep syncing.
 *
 * `?space=…&name=…&token=…&node=ws://…` as on the demo page.
 */
import './style.css';
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider';
import * as Y from 'yjs';
import { colorAt, colorIndexFor, keepDistinctColor } from './colors.js';
import { createCollabEditor, createToolbar, FIELD } from './rich-text.js';

interface UserState {
  user?: { name?: string; color?: string };
}

const params = new URLSearchParams(location.search);
const node =
  params.get('node') ?? `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
const space = params.get('space') ?? 'demo';
const name = (params.get('name') ?? 'Hocuspocus user').slice(0, 32);
const token = params.get('token');
const also = (params.get('also') ?? '').split(',').filter((doc) => doc !== '');
const seed = `${name}-${Math.random()}`;
const color = colorAt(colorIndexFor(seed));

const badge = document.querySelector<HTMLElement>('[data-testid="connection"]')!;
const me = document.querySelector<HTMLElement>('[data-testid="me"]')!;
document.querySelector('[data-testid="space"]')!.textContent = space;
me.textContent = name;
me.style.setProperty('--c', color);

/** The one socket every provider below shares (the node's root path). */
const socket = new HocuspocusProviderWebsocket({ url: node, maxDelay: 2000 });
socket.on('status', ({ status }: { status: string }) => {
  badge.textContent = status;
  badge.dataset.state = status;
});

const views = document.getElementById('views')!;
views.innerHTML = `
  <section class="view" data-view="hocuspocus">
    <div class="view-head">
      <div>
        <h1>Shared notes, stock provider</h1>
        <p class="sub">Document notes/${space.replace(/[<>&"]/g, '')} through
          <code>@hocuspocus/provider</code> on one socket; the SDK's editor page shows the same text.</p>
      </div>
    </div>
    <div class="editor-layout">
      <div class="editor-frame"></div>
      <aside class="card">
        <h2>Who is here</h2>
        <ul class="people" data-testid="presence-list"></ul>
        <h2>Documents on this socket</h2>
        <ul class="people" data-testid="docs"></ul>
      </aside>
    </div>
  </section>`;

const docList = views.querySelector<HTMLElement>('[data-testid="docs"]')!;

/** One stock provider on the shared socket, with a line saying how it fares. */
const openDoc = (doc: string): HocuspocusProvider => {
  const row = document.createElement('li');
  row.dataset.testid = 'doc-status';
  row.dataset.doc = doc;
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.style.background = 'var(--muted)';
  const label = document.createElement('span');
  label.className = 'who';
  label.textContent = doc;
  const state = document.createElement('span');
  state.className = 'where';
  state.dataset.testid = 'state';
  state.textContent = 'syncing…';
  row.append(dot, label, state);
  docList.append(row);
  const provider = new HocuspocusProvider({
    name: doc,
    document: new Y.Doc(),
    websocketProvider: socket,
    token,
    onSynced: () => {
      state.textContent = 'synced';
      dot.style.background = '#16a34a';
    },
    onAuthenticationFailed: ({ reason }) => {
      state.textContent = `refused: ${reason}`;
      dot.style.background = '#dc2626';
    },
  });
  provider.attach(); // a provider on a shared socket joins it only when attached
  return provider;
};

const notes = openDoc(`notes/${space}`);
for (const doc of also) openDoc(doc);

const frame = views.querySelector<HTMLElement>('.editor-frame')!;
const host = document.createElement('div');
host.className = 'editor-host';
const collab = createCollabEditor(
  host,
  notes.document.getXmlFragment(FIELD),
  notes.awareness!,
  { name, color },
  { 'data-testid': 'editor-text', 'aria-label': 'Shared notes', spellcheck: 'false' },
);
frame.append(createToolbar(collab.editor), host);
notes.on('synced', () => collab.setEditable(true, 'Start typing…'));
notes.on('authenticationFailed', ({ reason }: { reason: string }) =>
  collab.setEditable(false, `Read-only: the node refused this document (${reason}).`),
);

const awareness = notes.awareness!;
awareness.setLocalStateField('user', { name, color, colorLight: `${color}33` });
keepDistinctColor(awareness, colorIndexFor(seed), (next) => me.style.setProperty('--c', next));

const people = views.querySelector<HTMLElement>('[data-testid="presence-list"]')!;
const renderPeople = (): void => {
  people.replaceChildren(
    ...Array.from(awareness.getStates()).flatMap(([id, raw]) => {
      const user = (raw as UserState).user;
      if (!user?.name) return [];
      const li = document.createElement('li');
      li.dataset.testid = 'presence';
      li.dataset.name = user.name;
      const dot = document.createElement('span');
      dot.className = 'dot';
      dot.style.background = user.color ?? 'gray';
      const who = document.createElement('span');
      who.className = 'who';
      who.textContent = `${user.name}${id === awareness.clientID ? ' (you)' : ''}`;
      li.append(dot, who);
      return [li];
    }),
  );
};
awareness.on('change', renderPeople);
renderPeople();
window.addEventListener('pagehide', () => {
  notes.destroy();
  socket.destroy();
});
