/**
 * `PATCH /v1/docs/:name` with JSON: writing a document without Yjs.
 *
 * Each key of the body names a top-level shared type:
 * - a string sets the content of the `Y.Text` of that name, as the smallest edit
 *   (common prefix and suffix kept), so concurrent edits elsewhere in the text and
 *   carets in editors survive;
 * - an object merges its entries into the `Y.Map` of that name (other keys stay);
 * - an array replaces the contents of the `Y.Array` of that name.
 *
 * The edit is made on a scratch copy of the document and leaves as the Yjs update
 * that copy produced, so it enters the hub like any client's update (stored, fanned
 * out, answered once saved). A name that already holds another kind of type is
 * refused: Yjs fixes a top-level type's kind for good, and guessing wrong would
 * make the document unreadable for the clients that declared it.
 */
import * as Y from 'yjs';
import { assertNever } from '../assert-never.js';
import { StateweaveError } from '../errors.js';
import { guessCtor } from '../hub/doc-json.js';

type Kind = 'text' | 'map' | 'array';

const KIND_OF: ReadonlyMap<unknown, Kind> = new Map<unknown, Kind>([
  [Y.Text, 'text'],
  [Y.Map, 'map'],
  [Y.Array, 'array'],
]);

const TYPE_NAME: Record<Kind, string> = { text: 'Y.Text', map: 'Y.Map', array: 'Y.Array' };

const kindOfValue = (key: string, value: unknown): Kind => {
  if (typeof value === 'string') return 'text';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object' && value !== null) return 'map';
  throw new StateweaveError(
    'BAD_REQUEST',
    `"${key}": expected a string (sets a Y.Text), an object (merges into a Y.Map) or an array (replaces a Y.Array), got ${value === null ? 'null' : typeof value}`,
  );
};

/** The kind a top-level type already has, or undefined when it holds nothing yet. */
const existingKind = (doc: Y.Doc, key: string): Kind | 'other' | undefined => {
  const type = doc.share.get(key);
  if (type === undefined || (type._start === null && type._map.size === 0)) return undefined;
  return KIND_OF.get(guessCtor(type)) ?? 'other';
};

/** Replaces `text`'s content with `next`, touching only the part that differs. */
const setText = (text: Y.Text, next: string): void => {
  const current = text.toString();
  let start = 0;
  const max = Math.min(current.length, next.length);
  while (start < max && current[start] === next[start]) start++;
  let end = 0;
  while (end < max - start && current[current.length - 1 - end] === next[next.length - 1 - end])
    end++;
  const removed = current.length - start - end;
  if (removed > 0) text.delete(start, removed);
  const inserted = next.slice(start, next.length - end);
  if (inserted !== '') text.insert(start, inserted);
};

/**
 * The update that applies `patch` to the document whose whole state is `state`,
 * or undefined when it changes nothing. Throws BAD_REQUEST / TYPE_CONFLICT.
 */
export const patchToUpdate = (state: Uint8Array, patch: unknown): Uint8Array | undefined => {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch))
    throw new StateweaveError(
      'BAD_REQUEST',
      'the body must be a JSON object whose keys name top-level types, e.g. {"body": "Hello"}',
    );
  const entries = Object.entries(patch as Record<string, unknown>);
  if (entries.length === 0) return undefined;
  const kinds = entries.map(([key, value]) => kindOfValue(key, value));
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, state);
    entries.forEach(([key], i) => {
      const had = existingKind(doc, key);
      const wanted = kinds[i] as Kind;
      if (had !== undefined && had !== wanted)
        throw new StateweaveError(
          'TYPE_CONFLICT',
          `"${key}" already holds a ${had === 'other' ? 'Y.XmlFragment' : TYPE_NAME[had]}; send ${had === 'text' ? 'a string' : had === 'map' ? 'an object' : had === 'array' ? 'an array' : 'a binary Yjs update to /updates'} for it`,
        );
    });
    // Deletions do not advance a state vector, so take Yjs's own update of the edit.
    let update: Uint8Array | undefined;
    doc.once('update', (u: Uint8Array) => (update = u));
    doc.transact(() => {
      entries.forEach(([key, value], i) => {
        const kind = kinds[i] as Kind;
        switch (kind) {
          case 'text':
            return setText(doc.getText(key), value as string);
          case 'map': {
            const map = doc.getMap(key);
            for (const [k, v] of Object.entries(value as Record<string, unknown>)) map.set(k, v);
            return;
          }
          case 'array': {
            const array = doc.getArray(key);
            if (array.length > 0) array.delete(0, array.length);
            array.insert(0, value as unknown[]);
            return;
          }
          default:
            return assertNever(kind, 'value kind');
        }
      });
    });
    return update;
  } finally {
    doc.destroy();
  }
};
