/**
 * Collaboration: a shared rich-text document on `notes/<space>` (the
 * Y.XmlFragment `default`, where a stock Tiptap app looks too) in Tiptap, with
 * presence: who is here, in their own colour, and where their caret is. Carets
 * travel as Yjs relative positions (the caret extension draws them in the text
 * with names), so they stay on the right character while others type. React
 * on the hooks: `useDoc` for the document, `useSelf`/`useOthers` for the list;
 * Tiptap owns its own DOM inside an effect.
 */
import { useEffect, useReducer, useRef, useState } from 'react';
import type { DocHandle } from '@stateweave/client';
import { useDoc, useOthers, useSelf, type Peer } from '@stateweave/client/react';
import { colorIndexFor, keepDistinctColor } from './colors.js';
import { useTracked, type Track } from './hooks.js';
import { mountView } from './mount.js';
import { createCollabEditor, createToolbar, FIELD, type CollabEditor } from './rich-text.js';
import { SaveState } from './save-state.js';
import type { Session } from './session.js';

interface Presence {
  user?: { name: string; color: string };
  cursor?: { anchor: unknown; head: unknown } | null;
}

const REFUSALS = ['UNAUTHORIZED', 'TOKEN_EXPIRED', 'FORBIDDEN', 'TOKEN_FAILED'];
const READY = 'Start typing — everyone in this space sees it live…';

/** The Tiptap editor, editable once synced, read-only with the reason on a refusal. */
const CollabText = ({
  handle,
  user,
  onRefused,
  onEditor,
}: {
  handle: DocHandle;
  user: { name: string; color: string };
  onRefused: (why: string) => void;
  onEditor: (editor: CollabEditor | null) => void;
}) => {
  const frame = useRef<HTMLDivElement>(null);
  const callbacks = useRef({ onRefused, onEditor });
  callbacks.current = { onRefused, onEditor };
  const firstUser = useRef(user);
  useEffect(() => {
    const host = document.createElement('div');
    host.className = 'editor-host';
    const collab = createCollabEditor(
      host,
      handle.doc.getXmlFragment(FIELD),
      handle.awareness,
      firstUser.current,
      { 'data-testid': 'editor-text', 'aria-label': 'Shared notes', spellcheck: 'false' },
    );
    const toolbar = createToolbar(collab.editor);
    frame.current!.append(toolbar, host);
    callbacks.current.onEditor(collab);
    let live = true;
    const refuse = (err: { code: string; message: string } | undefined): void => {
      if (!live || !err || !REFUSALS.includes(err.code)) return;
      const why = `Read-only: the node refused this document (${err.code}: ${err.message}).`;
      collab.setEditable(false, why);
      collab.editor.view.dom.dataset.refused = err.code;
      callbacks.current.onRefused(why);
    };
    handle.synced.then(
      () => live && collab.setEditable(true, READY),
      () => undefined, // closed or refused: `refuse` says why
    );
    const off = handle.on('error', refuse);
    refuse(handle.lastError); // refused before this effect ran
    return () => {
      live = false;
      off();
      callbacks.current.onEditor(null);
      collab.destroy();
      toolbar.remove();
      host.remove();
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
  const [editor, setEditor] = useState<CollabEditor | null>(null);
  // Carets are shown as positions in the text: recompute them whenever it changes.
  const [, textChanged] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    if (!editor) return;
    editor.editor.on('update', textChanged);
    return () => void editor.editor.off('update', textChanged);
  }, [editor]);
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
            Document notes/{session.space} · rich text that merges without conflicts, offline edits
            sync when you are back, Ctrl+Z undoes only your own edits.
          </p>
        </div>
        <SaveState handle={handle} testId="save-state" />
      </div>
      <p className="editor-notice" data-testid="editor-notice" hidden={notice === null}>
        {notice}
      </p>
      <div className="editor-layout">
        <CollabText
          handle={handle}
          user={{ name: session.name, color: session.color }}
          onRefused={setNotice}
          onEditor={setEditor}
        />
        <aside className="card">
          <h2>Who is here</h2>
          <ul className="people" data-testid="presence-list">
            {people.map(({ clientId, state }) => {
              if (!state.user) return null;
              const caret = state.cursor ? (editor?.caretLabel(state.cursor.head) ?? null) : null;
              return (
                <li key={clientId} data-testid="presence" data-name={state.user.name}>
                  <span className="dot" style={{ background: state.user.color }} />
                  <span className="who">
                    {state.user.name}
                    {clientId === handle.doc.clientID ? ' (you)' : ''}
                  </span>
                  <span className="where" data-testid="caret">
                    {caret ?? 'not editing'}
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
