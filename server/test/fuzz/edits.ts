/**
 * Editing scripts for the fuzz suites: three editors with fixed client ids play
 * random transactions and syncs (fast-check arbitraries), so a seed replays exactly.
 */
import fc from 'fast-check';
import * as Y from 'yjs';

// ================================================================ generators

export const CLIENT_IDS = [11, 0x7fffffff, 3_000_000_001] as const;
export const LOCAL = Symbol('local');
export const SYNCED = Symbol('sync');

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Shared = 'map' | 'array' | 'text' | 'xml' | 'subdoc' | 'binary';
export type Value = { readonly json: Json } | { readonly shared: Shared };

/** One transaction of one editor, or a sync between two editors. */
export type Edit =
  | {
      readonly kind: 'insert-text';
      readonly client: number;
      readonly at: number;
      readonly text: string;
      readonly bold: boolean;
    }
  | {
      readonly kind: 'delete-text';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | {
      readonly kind: 'format';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | { readonly kind: 'embed'; readonly client: number; readonly at: number }
  | { readonly kind: 'set'; readonly client: number; readonly key: string; readonly value: Value }
  | { readonly kind: 'unset'; readonly client: number; readonly key: string }
  | {
      readonly kind: 'insert';
      readonly client: number;
      readonly at: number;
      readonly values: readonly Value[];
    }
  | {
      readonly kind: 'remove';
      readonly client: number;
      readonly at: number;
      readonly length: number;
    }
  | {
      readonly kind: 'nested';
      readonly client: number;
      readonly pick: number;
      readonly text: string;
    }
  | {
      readonly kind: 'xml';
      readonly client: number;
      readonly at: number;
      readonly tag: string;
      readonly text: string;
    }
  | { readonly kind: 'sync'; readonly client: number; readonly to: number };

export const client = fc.nat({ max: CLIENT_IDS.length - 1 });
export const at = fc.nat({ max: 64 });
export const textArb = fc.string({
  unit: fc.constantFrom('a', 'b', 'z', ' ', '\n', 'é', '日', '😀'),
  minLength: 1,
  maxLength: 6,
});
export const jsonArb = fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>;
export const valueArb: fc.Arbitrary<Value> = fc.oneof(
  { arbitrary: fc.record({ json: jsonArb }), weight: 3 },
  {
    arbitrary: fc.record({
      shared: fc.constantFrom<Shared>('map', 'array', 'text', 'xml', 'subdoc', 'binary'),
    }),
    weight: 2,
  },
);
export const keyArb = fc.constantFrom('a', 'b', 'c', 'nested');

export const editArb: fc.Arbitrary<Edit> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant('insert-text' as const),
      client,
      at,
      text: textArb,
      bold: fc.boolean(),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('delete-text' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 5 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('format' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 5 }),
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('embed' as const), client, at }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      client,
      key: keyArb,
      value: valueArb,
    }),
    weight: 3,
  },
  { arbitrary: fc.record({ kind: fc.constant('unset' as const), client, key: keyArb }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('insert' as const),
      client,
      at,
      values: fc.array(valueArb, { minLength: 1, maxLength: 3 }),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('remove' as const),
      client,
      at,
      length: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('nested' as const),
      client,
      pick: fc.nat(),
      text: textArb,
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant('xml' as const),
      client,
      at,
      tag: fc.constantFrom('p', 'h1', 'li'),
      text: textArb,
    }),
    weight: 1,
  },
  { arbitrary: fc.record({ kind: fc.constant('sync' as const), client, to: client }), weight: 2 },
);

export const toValue = (value: Value): unknown => {
  if ('json' in value) return value.json;
  switch (value.shared) {
    case 'map': {
      const map = new Y.Map<unknown>();
      map.set('k', 1);
      return map;
    }
    case 'array':
      return Y.Array.from<string | number>(['x', 2]);
    case 'text':
      return new Y.Text('t');
    case 'xml': {
      const element = new Y.XmlElement('p');
      element.insert(0, [new Y.XmlText('x')]);
      return element;
    }
    case 'subdoc':
      return new Y.Doc({ guid: 'sub' });
    case 'binary':
      return Uint8Array.of(1, 2, 3);
  }
};

/** Every nested shared type reachable from the root map and array, in document order. */
export const nestedTypes = (doc: Y.Doc): Array<Y.AbstractType<unknown>> => {
  const found: Array<Y.AbstractType<unknown>> = [];
  const visit = (value: unknown): void => {
    if (!(value instanceof Y.AbstractType)) return;
    found.push(value);
    if (value instanceof Y.Map) for (const child of value.values()) visit(child);
    else if (value instanceof Y.Array || value instanceof Y.XmlElement)
      for (const child of value.toArray()) visit(child);
  };
  for (const child of doc.getMap('map').values()) visit(child);
  for (const child of doc.getArray('array').toArray()) visit(child);
  return found;
};

export const applyEdit = (doc: Y.Doc, edit: Edit): void => {
  const text = doc.getText('text');
  const array = doc.getArray<unknown>('array');
  switch (edit.kind) {
    case 'insert-text':
      text.insert(edit.at % (text.length + 1), edit.text, edit.bold ? { bold: true } : undefined);
      return;
    case 'delete-text':
    case 'format': {
      if (text.length === 0) return;
      const from = edit.at % text.length;
      const length = Math.min(edit.length, text.length - from);
      if (edit.kind === 'format') text.format(from, length, { italic: true });
      else text.delete(from, length);
      return;
    }
    case 'embed':
      text.insertEmbed(edit.at % (text.length + 1), { image: 'x.png' });
      return;
    case 'set':
      doc.getMap<unknown>('map').set(edit.key, toValue(edit.value));
      return;
    case 'unset':
      doc.getMap('map').delete(edit.key);
      return;
    case 'insert':
      array.insert(edit.at % (array.length + 1), edit.values.map(toValue));
      return;
    case 'remove': {
      if (array.length === 0) return;
      const from = edit.at % array.length;
      array.delete(from, Math.min(edit.length, array.length - from));
      return;
    }
    case 'nested': {
      const types = nestedTypes(doc);
      const type = types[edit.pick % (types.length || 1)];
      if (type instanceof Y.Text) type.insert(edit.pick % (type.length + 1), edit.text);
      else if (type instanceof Y.Array) type.push([edit.text]);
      else if (type instanceof Y.Map) type.set('n', edit.text);
      else if (type instanceof Y.XmlElement) {
        type.setAttribute('title', edit.text);
        type.insert(0, [new Y.XmlText(edit.text)]);
      }
      return;
    }
    case 'xml': {
      const fragment = doc.getXmlFragment('xml');
      const element = new Y.XmlElement(edit.tag);
      element.insert(0, [new Y.XmlText(edit.text)]);
      fragment.insert(edit.at % (fragment.length + 1), [element]);
      return;
    }
    case 'sync':
      return; // handled by playScript
  }
};

export interface Played {
  readonly docs: readonly Y.Doc[];
  /** One Yjs update per local transaction, in order. */
  readonly updates: readonly Uint8Array[];
  destroy(): void;
}

/** Runs an edit script on three editors with fixed client ids (so a seed replays exactly). */
export const playScript = (
  edits: readonly Edit[],
  clientIds: readonly number[] = CLIENT_IDS,
): Played => {
  const docs = clientIds.map((id) => {
    const doc = new Y.Doc();
    doc.clientID = id;
    return doc;
  });
  const updates: Uint8Array[] = [];
  for (const doc of docs) {
    doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === LOCAL) updates.push(update);
    });
  }
  for (const edit of edits) {
    const doc = docs[edit.client % docs.length]!;
    if (edit.kind === 'sync') {
      const to = docs[edit.to % docs.length]!;
      if (to !== doc)
        Y.applyUpdate(to, Y.encodeStateAsUpdate(doc, Y.encodeStateVector(to)), SYNCED);
    } else doc.transact(() => applyEdit(doc, edit), LOCAL);
  }
  return {
    docs,
    updates,
    destroy: () => {
      for (const doc of docs) doc.destroy();
    },
  };
};

export const scriptArb = fc.array(editArb, { minLength: 1, maxLength: 10 });
