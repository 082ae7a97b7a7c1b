/**
 * Collaboration: a shared plain-text editor on `notes/<space>` (Y.Text `body`)
 * in CodeMirror 6, with presence: who is here, in their own colour, and where
 * their caret is. Carets travel as Yjs relative positions (y-codemirror.next
 * draws them in the text), so they stay on the right character while others type.
 */
import * as Y from 'yjs';
import type { DocHandle } from '@stateweave/client';
import { createCollabEditor } from './codemirror.js';
import { colorIndexFor, keepDistinctColor } from './colors.js';
import { h } from './dom.js';
import type { Session } from './session.js';
import { saveIndicator } from './status.js';

interface Presence {
  user?: { name: string; color: string };
  cursor?: { anchor: unknown; head: unknown } | null;
}

const REFUSALS = ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'TOKEN_FAILED'];
const READY = 'Start typing — everyone in this space sees it live…';

const lineCol = (text: string, index: number): string => {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  return `line ${line}, col ${index - before.lastIndexOf('\n')}`;
};

export const createEditorView = (
  session: Session,
  track: (handle: DocHandle) => void,
  onColor: (color: string) => void,
): HTMLElement => {
  const handle = session.client.open(`notes/${session.space}`);
  track(handle);
  const { doc, awareness } = handle;
  const body = doc.getText('body');

  const frame = h('div', { class: 'editor-frame' });
  const notice = h('p', { class: 'editor-notice', 'data-testid': 'editor-notice', hidden: true });
  const people = h('ul', { class: 'people', 'data-testid': 'presence-list' });

  awareness.setLocalStateField('user', {
    name: session.name,
    color: session.color,
    colorLight: `${session.color}33`,
  });
  keepDistinctColor(awareness, colorIndexFor(session.visitor), onColor);
  const editor = createCollabEditor(frame, body, awareness, {
    'data-testid': 'editor-text',
    'aria-label': 'Shared notes',
    spellcheck: 'false',
  });

  const absolute = (json: unknown): number | null => {
    try {
      const abs = Y.createAbsolutePositionFromRelativePosition(
        Y.createRelativePositionFromJSON(json),
        doc,
      );
      return abs && abs.type === body ? abs.index : null;
    } catch {
      return null; // a malformed caret from an old client: show the person without a caret
    }
  };

  const renderPeople = (): void => {
    const text = body.toString();
    people.replaceChildren();
    const states = [...awareness.getStates().entries()].sort(([a], [b]) =>
      a === doc.clientID ? -1 : b === doc.clientID ? 1 : a - b,
    );
    for (const [clientId, state] of states as Array<[number, Presence]>) {
      if (!state.user) continue;
      const mine = clientId === doc.clientID;
      const caret = state.cursor ? absolute(state.cursor.head) : null;
      people.append(
        h(
          'li',
          { 'data-testid': 'presence', 'data-name': state.user.name },
          h('span', { class: 'dot', style: `background:${state.user.color}` }),
          h('span', { class: 'who' }, state.user.name, mine ? ' (you)' : ''),
          h(
            'span',
            { class: 'where', 'data-testid': 'caret' },
            caret === null ? 'not editing' : lineCol(text, caret),
          ),
        ),
      );
    }
  };

  awareness.on('change', renderPeople);
  body.observe(renderPeople);
  handle.synced.then(
    () => editor.setEditable(true, READY),
    () => undefined, // closed or refused: the error listener below says why
  );
  // A refusal makes the editor read-only, and says why where the person types.
  handle.on('error', (err) => {
    if (!REFUSALS.includes(err.code)) return;
    const why = `Read-only: the node refused this document (${err.code}: ${err.message}).`;
    editor.setEditable(false, why);
    editor.view.contentDOM.dataset.refused = err.code;
    notice.textContent = why;
    notice.hidden = false;
  });
  window.addEventListener('pagehide', () => awareness.setLocalState(null));
  renderPeople();

  return h(
    'section',
    { class: 'view', 'data-view': 'editor' },
    h(
      'div',
      { class: 'view-head' },
      h(
        'div',
        {},
        h('h1', {}, 'Shared notes'),
        h(
          'p',
          { class: 'sub' },
          `Document notes/${session.space} · edits merge without conflicts, offline edits sync when you are back, Ctrl+Z undoes only your own edits.`,
        ),
      ),
      saveIndicator(handle, 'save-state'),
    ),
    notice,
    h(
      'div',
      { class: 'editor-layout' },
      frame,
      h('aside', { class: 'card' }, h('h2', {}, 'Who is here'), people),
    ),
  );
};
