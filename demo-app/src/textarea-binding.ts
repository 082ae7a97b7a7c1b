/**
 * Binds a <textarea> to a Y.Text with minimal diffs: a local edit becomes one
 * delete + insert at the changed span (common prefix and suffix kept), and a remote
 * edit moves the local selection through the change instead of resetting it.
 */
import type * as Y from 'yjs';

export interface TextareaBinding {
  destroy(): void;
}

/** Smallest span that turns `before` into `after`. */
export const diff = (
  before: string,
  after: string,
): { index: number; remove: number; insert: string } => {
  let start = 0;
  const max = Math.min(before.length, after.length);
  while (start < max && before.charCodeAt(start) === after.charCodeAt(start)) start++;
  let end = 0;
  while (
    end < max - start &&
    before.charCodeAt(before.length - 1 - end) === after.charCodeAt(after.length - 1 - end)
  )
    end++;
  return {
    index: start,
    remove: before.length - start - end,
    insert: after.slice(start, after.length - end),
  };
};

/** Where `pos` (an index in the old text) lands after a Y.Text delta; inserts at `pos` push it right only if `assoc` > 0. */
const mapThrough = (pos: number, delta: Y.YTextEvent['delta'], assoc: number): number => {
  let index = 0; // position in the old text
  let result = pos;
  for (const op of delta) {
    if (op.retain !== undefined) index += op.retain;
    else if (typeof op.insert === 'string') {
      if (index < pos || (index === pos && assoc > 0)) result += op.insert.length;
    } else if (op.delete !== undefined) {
      result -= Math.max(0, Math.min(op.delete, pos - index));
      index += op.delete;
    }
  }
  return Math.max(0, result);
};

export const bindTextarea = (
  text: Y.Text,
  textarea: HTMLTextAreaElement,
  onLocalChange: () => void,
): TextareaBinding => {
  const origin = Symbol('textarea');
  textarea.value = text.toString();

  const onInput = (): void => {
    const { index, remove, insert } = diff(text.toString(), textarea.value);
    if (remove === 0 && insert === '') return;
    text.doc!.transact(() => {
      if (remove > 0) text.delete(index, remove);
      if (insert !== '') text.insert(index, insert);
    }, origin);
    onLocalChange();
  };

  const onRemote = (event: Y.YTextEvent, transaction: Y.Transaction): void => {
    if (transaction.origin === origin) return;
    const focused = document.activeElement === textarea;
    const { selectionStart, selectionEnd, selectionDirection, scrollTop } = textarea;
    textarea.value = text.toString();
    const start = mapThrough(selectionStart, event.delta, 0);
    const end = mapThrough(selectionEnd, event.delta, 0);
    if (focused) textarea.setSelectionRange(start, end, selectionDirection ?? 'none');
    else {
      textarea.selectionStart = start;
      textarea.selectionEnd = end;
    }
    textarea.scrollTop = scrollTop;
    onLocalChange();
  };

  textarea.addEventListener('input', onInput);
  text.observe(onRemote);
  return {
    destroy() {
      textarea.removeEventListener('input', onInput);
      text.unobserve(onRemote);
    },
  };
};
