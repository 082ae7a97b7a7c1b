/**
 * The CodeMirror 6 editor bound to a Y.Text with y-codemirror.next: remote
 * carets and selections with names, an undo history of Y.UndoManager that
 * holds only this tab's edits (Mod-z / Mod-y / Mod-Shift-z), and the browser's
 * own input handling (IME composition included). Editability is a compartment,
 * so the view can stay read-only until synced and become read-only on refusal.
 */
import { Compartment, EditorState } from '@codemirror/state';
import { defaultKeymap } from '@codemirror/commands';
import { EditorView, keymap, placeholder } from '@codemirror/view';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import type * as Y from 'yjs';
import type { Awareness } from '@stateweave/client';

export interface CollabEditor {
  readonly view: EditorView;
  /** Switches typing on or off, with the placeholder to show while empty. */
  setEditable(editable: boolean, hint: string): void;
}

const theme = EditorView.theme({
  '&': { height: '100%', font: '15px/1.6 var(--mono)' },
  '&.cm-focused': { outline: 'none' },
  '.cm-scroller': { overflow: 'auto', fontFamily: 'inherit' },
  '.cm-content': { padding: '18px 8px', caretColor: 'var(--ink)' },
  '.cm-placeholder': { color: 'var(--muted)' },
  // Names stay visible on remote carets (the binding shows them only on hover).
  '.cm-ySelectionInfo': { opacity: '1', fontFamily: 'system-ui, sans-serif', top: '-1.25em' },
});

export const createCollabEditor = (
  parent: HTMLElement,
  text: Y.Text,
  awareness: Awareness,
  contentAttributes: Record<string, string>,
): CollabEditor => {
  const editable = new Compartment();
  const hint = new Compartment();
  const editability = (on: boolean) => [EditorView.editable.of(on), EditorState.readOnly.of(!on)];
  const view = new EditorView({
    parent,
    state: EditorState.create({
      doc: text.toString(),
      extensions: [
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap]),
        EditorView.lineWrapping,
        EditorView.contentAttributes.of(contentAttributes),
        yCollab(text, awareness), // its Y.UndoManager tracks this tab's edits only
        editable.of(editability(false)),
        hint.of(placeholder('Connecting…')),
        theme,
      ],
    }),
  });
  return {
    view,
    setEditable(on, text) {
      view.dispatch({
        effects: [editable.reconfigure(editability(on)), hint.reconfigure(placeholder(text))],
      });
    },
  };
};
