/**
 * The rich-text editor: Tiptap (ProseMirror) bound to a Y.XmlFragment with its
 * collaboration extension (@tiptap/y-tiptap) and remote carets with names
 * (collaboration-caret). Undo/redo is the binding's Y.UndoManager, which tracks
 * only this tab's edits (Mod-z / Mod-y / Mod-Shift-z); typing, IME composition
 * included, is the browser's own contenteditable input through ProseMirror.
 * The same module serves the SDK page and the stock Hocuspocus page: both need
 * only a fragment and an Awareness.
 */
import { Editor } from '@tiptap/core';
import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCaret from '@tiptap/extension-collaboration-caret';
import { Placeholder } from '@tiptap/extensions';
import StarterKit from '@tiptap/starter-kit';
import { relativePositionToAbsolutePosition, ySyncPluginKey } from '@tiptap/y-tiptap';
import * as Y from 'yjs';
import type { Awareness } from '@stateweave/client';

/** The fragment a stock Tiptap app collaborates on by default: both meet on it. */
export const FIELD = 'default';

export interface CollabEditor {
  readonly editor: Editor;
  /** Switches typing on or off, with the placeholder to show while empty. */
  setEditable(editable: boolean, hint: string): void;
  /** "paragraph P, col C" of a caret sent as a Yjs relative position, or null. */
  caretLabel(relative: unknown): string | null;
  destroy(): void;
}

export const createCollabEditor = (
  parent: HTMLElement,
  fragment: Y.XmlFragment,
  awareness: Awareness,
  user: { name: string; color: string },
  attributes: Record<string, string>,
): CollabEditor => {
  let hint = 'Connecting…';
  const editor = new Editor({
    element: parent,
    editable: false,
    extensions: [
      StarterKit.configure({ undoRedo: false, link: false }), // history is the Y.UndoManager's
      Collaboration.configure({ fragment }),
      CollaborationCaret.configure({ provider: { awareness }, user }),
      Placeholder.configure({ placeholder: () => hint }),
    ],
    editorProps: { attributes },
  });
  return {
    editor,
    setEditable(on, text) {
      hint = text;
      editor.setEditable(on);
      editor.view.dispatch(editor.state.tr.setMeta('addToHistory', false)); // redraw the hint
    },
    caretLabel(relative) {
      if (editor.isDestroyed || relative === null || relative === undefined) return null;
      const binding = ySyncPluginKey.getState(editor.state)?.binding;
      if (!binding || !fragment.doc) return null;
      try {
        const pos = relativePositionToAbsolutePosition(
          fragment.doc,
          fragment,
          Y.createRelativePositionFromJSON(relative),
          binding.mapping,
        );
        if (pos === null || pos > editor.state.doc.content.size) return null;
        const at = editor.state.doc.resolve(pos);
        return `paragraph ${at.index(0) + 1}, col ${at.parentOffset + 1}`;
      } catch {
        return null; // a malformed caret: show the person without a caret
      }
    },
    destroy: () => editor.destroy(),
  };
};

const MARKS = [
  {
    id: 'bold',
    label: 'B',
    title: 'Bold (Ctrl+B)',
    run: (e: Editor) => e.chain().focus().toggleBold().run(),
  },
  {
    id: 'italic',
    label: 'I',
    title: 'Italic (Ctrl+I)',
    run: (e: Editor) => e.chain().focus().toggleItalic().run(),
  },
  {
    id: 'heading',
    label: 'H',
    title: 'Heading',
    run: (e: Editor) => e.chain().focus().toggleHeading({ level: 2 }).run(),
  },
  {
    id: 'bulletList',
    label: '•',
    title: 'Bulleted list',
    run: (e: Editor) => e.chain().focus().toggleBulletList().run(),
  },
] as const;

/**
 * Formatting buttons for `editor` (plain DOM, so both pages use it). A button
 * does not take the focus, so the selection it formats stays where it was.
 */
export const createToolbar = (editor: Editor): HTMLElement => {
  const bar = document.createElement('div');
  bar.className = 'toolbar';
  bar.setAttribute('role', 'toolbar');
  const buttons = MARKS.map((mark) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.textContent = mark.label;
    button.title = mark.title;
    button.dataset.testid = `format-${mark.id}`;
    button.dataset.mark = mark.id;
    button.addEventListener('mousedown', (event) => event.preventDefault());
    button.addEventListener('click', () => mark.run(editor));
    return button;
  });
  const update = (): void => {
    for (const button of buttons) {
      button.disabled = !editor.isEditable;
      button.setAttribute('aria-pressed', String(editor.isActive(button.dataset.mark!)));
    }
  };
  editor.on('transaction', update);
  update();
  bar.append(...buttons);
  return bar;
};
