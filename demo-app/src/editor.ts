/**
 * Collaboration: a shared plain-text editor on `notes/<space>` (Y.Text `body`),
 * with presence (who is here, their colour and caret) and remote carets drawn
 * over the textarea. Carets travel as Yjs relative positions, so they stay on the
 * right character while others type.
 */
import * as Y from 'yjs';
import type { DocHandle } from '@stateweave/client';
import { h } from './dom.js';
import type { Session } from './session.js';
import { bindTextarea } from './textarea-binding.js';
import { saveIndicator } from './status.js';

interface Presence {
  user?: { name: string; color: string };
  cursor?: { anchor: unknown; head: unknown } | null;
}

const lineCol = (text: string, index: number): string => {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  return `line ${line}, col ${index - before.lastIndexOf('\n')}`;
};

export const createEditorView = (
  session: Session,
  track: (handle: DocHandle) => void,
): HTMLElement => {
  const handle = session.client.open(`notes/${session.space}`);
  track(handle);
  const { doc, awareness } = handle;
  const body = doc.getText('body');

  const textarea = h('textarea', {
    class: 'editor-input',
    'data-testid': 'editor-text',
    spellcheck: 'false',
    placeholder: 'Connecting…',
  });
  const READY = 'Start typing — everyone in this space sees it live…';
  const mirror = h('div', { class: 'editor-mirror', 'aria-hidden': 'true' });
  const people = h('ul', { class: 'people', 'data-testid': 'presence-list' });

  awareness.setLocalStateField('user', { name: session.name, color: session.color });

  const publishCursor = (): void => {
    const toRel = (i: number) =>
      Y.relativePositionToJSON(Y.createRelativePositionFromTypeIndex(body, i));
    awareness.setLocalStateField('cursor', {
      anchor: toRel(textarea.selectionStart),
      head: toRel(textarea.selectionEnd),
    });
  };

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

  const render = (): void => {
    const text = body.toString();
    const remote: Array<{ index: number; name: string; color: string }> = [];
    people.replaceChildren();
    const states = [...awareness.getStates().entries()].sort(([a], [b]) =>
      a === doc.clientID ? -1 : b === doc.clientID ? 1 : a - b,
    );
    for (const [clientId, state] of states as Array<[number, Presence]>) {
      if (!state.user) continue;
      const mine = clientId === doc.clientID;
      const caret = state.cursor ? absolute(state.cursor.head) : null;
      if (!mine && caret !== null)
        remote.push({ index: caret, name: state.user.name, color: state.user.color });
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
    // The mirror repeats the text (invisible) with a coloured caret at each remote position.
    remote.sort((a, b) => a.index - b.index);
    const parts: Node[] = [];
    let at = 0;
    for (const caret of remote) {
      const index = Math.min(caret.index, text.length);
      parts.push(document.createTextNode(text.slice(at, index)));
      parts.push(
        h(
          'span',
          { class: 'remote-caret', style: `--c:${caret.color}`, 'data-testid': 'remote-caret' },
          h('span', { class: 'label' }, caret.name),
        ),
      );
      at = index;
    }
    parts.push(document.createTextNode(text.slice(at) + '\n'));
    mirror.replaceChildren(...parts);
    mirror.scrollTop = textarea.scrollTop;
  };

  bindTextarea(body, textarea, render);
  for (const event of ['keyup', 'mouseup', 'select', 'focus', 'input', 'selectionchange'] as const)
    textarea.addEventListener(event, publishCursor);
  textarea.addEventListener('scroll', () => {
    mirror.scrollTop = textarea.scrollTop;
  });
  textarea.addEventListener('blur', () => awareness.setLocalStateField('cursor', null));
  awareness.on('change', render);
  body.observe(render);
  textarea.disabled = true;
  handle.synced.then(
    () => {
      textarea.disabled = false;
      textarea.placeholder = READY;
      textarea.value = body.toString();
      render();
    },
    () => undefined, // closed or refused: the error listener below says why
  );
  handle.on('synced', () => {
    if (!textarea.readOnly) textarea.disabled = false;
  });
  // A refusal makes the editor read-only, and says why where the person types.
  handle.on('error', (err) => {
    if (!['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'TOKEN_FAILED'].includes(err.code)) return;
    textarea.readOnly = true;
    textarea.placeholder = `Read-only: the node refused this document (${err.code}: ${err.message}).`;
    textarea.dataset.refused = err.code;
    textarea.title = textarea.placeholder;
  });
  window.addEventListener('pagehide', () => awareness.setLocalState(null));
  render();

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
          `Document notes/${session.space} · edits merge without conflicts, offline edits sync when you are back.`,
        ),
      ),
      saveIndicator(handle, 'save-state'),
    ),
    h(
      'div',
      { class: 'editor-layout' },
      h('div', { class: 'editor-frame' }, mirror, textarea),
      h('aside', { class: 'card' }, h('h2', {}, 'Who is here'), people),
    ),
  );
};
