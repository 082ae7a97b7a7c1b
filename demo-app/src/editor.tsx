/**
 * Collaboration: a shared plain-text editor on `notes/<space>` (Y.Text `body`)
 * in CodeMirror 6, with presence: who is here, in their own colour, and where
 * their caret is. Carets travel as Yjs relative positions (y-codemirror.next
 * draws them in the text), so they stay on the right character while others
 * type. React on the hooks: `useDoc` for the document, `useSelf`/`useOthers`
 * for the list, `useText` to place carets as the text changes; CodeMirror
 * owns its own DOM inside an effect.
 */
import { useEffect, useRef, useState } from 'react';
import * as Y from 'yjs';
import type { DocHandle } from '@stateweave/client';
import { useDoc, useOthers, useSelf, useText, type Peer } from '@stateweave/client/react';
import { createCollabEditor } from './codemirror.js';
import { colorIndexFor, keepDistinctColor } from './colors.js';
import { useTracked, type Track } from './hooks.js';
import { mountView } from './mount.js';
import { SaveState } from './save-state.js';
import type { Session } from './session.js';

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

/** A caret's index in `body`, or null (none, elsewhere, or malformed from an old client). */
const caretIndex = (handle: DocHandle, body: Y.Text, json: unknown): number | null => {
  try {
    const abs = Y.createAbsolutePositionFromRelativePosition(
      Y.createRelativePositionFromJSON(json),
      handle.doc,
    );
    return abs && abs.type === body ? abs.index : null;
  } catch {
    return null; // a malformed caret: show the person without a caret
  }
};

/** The CodeMirror view, editable once synced, read-only with the reason on a refusal. */
const CollabText = ({
  handle,
  onRefused,
}: {
  handle: DocHandle;
  onRefused: (why: string) => void;
}) => {
  const frame = useRef<HTMLDivElement>(null);
  const refused = useRef(onRefused);
  refused.current = onRefused;
  useEffect(() => {
    const editor = createCollabEditor(
      frame.current!,
      handle.doc.getText('body'),
      handle.awareness,
      { 'data-testid': 'editor-text', 'aria-label': 'Shared notes', spellcheck: 'false' },
    );
    let live = true;
    const refuse = (err: { code: string; message: string } | undefined): void => {
      if (!live || !err || !REFUSALS.includes(err.code)) return;
      const why = `Read-only: the node refused this document (${err.code}: ${err.message}).`;
      editor.setEditable(false, why);
      editor.view.contentDOM.dataset.refused = err.code;
      refused.current(why);
    };
    handle.synced.then(
      () => live && editor.setEditable(true, READY),
      () => undefined, // closed or refused: `refuse` says why
    );
    const off = handle.on('error', refuse);
    refuse(handle.lastError); // refused before this effect ran
    return () => {
      live = false;
      off();
      editor.view.destroy();
    };
  }, [handle]);
  return <div className="editor-frame" ref={frame} />;
};

const Editor = ({
  session,
  track,
  onColor,
}: {
  session: Session;
  track: Track;
  onColor: (color: string) => void;
}) => {
  const handle = useDoc(`notes/${session.space}`);
  useTracked(handle, track);
  const body = handle.doc.getText('body');
  const text = useText(body);
  const self = useSelf<Presence>(handle);
  const others = useOthers<Presence>(handle);
  const [notice, setNotice] = useState<string | null>(null);

  // This tab's name and colour, kept distinct from everyone present; gone on leaving.
  const colorChanged = useRef(onColor);
  colorChanged.current = onColor;
  useEffect(() => {
    const { awareness } = handle;
    awareness.setLocalStateField('user', {
      name: session.name,
      color: session.color,
      colorLight: `${session.color}33`,
    });
    const stop = keepDistinctColor(awareness, colorIndexFor(session.visitor), (color) =>
      colorChanged.current(color),
    );
    const leave = () => awareness.setLocalState(null);
    window.addEventListener('pagehide', leave);
    return () => {
      stop();
      window.removeEventListener('pagehide', leave);
    };
  }, [handle, session]);

  const people: Peer<Presence>[] = [
    ...(self ? [{ clientId: handle.doc.clientID, state: self }] : []),
    ...others,
  ];

  return (
    <section className="view" data-view="editor">
      <div className="view-head">
        <div>
          <h1>Shared notes</h1>
          <p className="sub">
            Document notes/{session.space} · edits merge without conflicts, offline edits sync when
            you are back, Ctrl+Z undoes only your own edits.
          </p>
        </div>
        <SaveState handle={handle} testId="save-state" />
      </div>
      <p className="editor-notice" data-testid="editor-notice" hidden={notice === null}>
        {notice}
      </p>
      <div className="editor-layout">
        <CollabText handle={handle} onRefused={setNotice} />
        <aside className="card">
          <h2>Who is here</h2>
          <ul className="people" data-testid="presence-list">
            {people.map(({ clientId, state }) => {
              if (!state.user) return null;
              const caret = state.cursor ? caretIndex(handle, body, state.cursor.head) : null;
              return (
                <li key={clientId} data-testid="presence" data-name={state.user.name}>
                  <span className="dot" style={{ background: state.user.color }} />
                  <span className="who">
                    {state.user.name}
                    {clientId === handle.doc.clientID ? ' (you)' : ''}
                  </span>
                  <span className="where" data-testid="caret">
                    {caret === null ? 'not editing' : lineCol(text, caret)}
                  </span>
                </li>
              );
            })}
          </ul>
        </aside>
      </div>
    </section>
  );
};

export const createEditorView = (
  session: Session,
  track: Track,
  onColor: (color: string) => void,
): HTMLElement => mountView(session, <Editor session={session} track={track} onColor={onColor} />);
