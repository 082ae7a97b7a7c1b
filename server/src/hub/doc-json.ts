/**
 * A document as JSON: every top-level shared type under its name.
 *
 * The node never declares types itself, so a top-level type that only arrived in
 * an update is a bare AbstractType whose kind Yjs does not record. We guess it
 * from its content (map entries → Y.Map; string or format items → Y.Text; XML
 * nodes → Y.XmlFragment; otherwise Y.Array) and materialise it in a throwaway
 * copy, so the live document's type registry is never changed by a read.
 */
import * as Y from 'yjs';

type SharedCtor = typeof Y.Map | typeof Y.Array | typeof Y.Text | typeof Y.XmlFragment;

const KNOWN: readonly SharedCtor[] = [Y.Map, Y.Array, Y.Text, Y.XmlFragment];

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- Yjs types its event parameter as any
export const guessCtor = (type: Y.AbstractType<Y.YEvent<any>>): SharedCtor => {
  const known = KNOWN.find((ctor) => type.constructor === ctor);
  if (known) return known;
  if (type._map.size > 0) return Y.Map;
  for (let item = type._start; item !== null; item = item.right) {
    const content = item.content;
    if (
      content instanceof Y.ContentString ||
      content instanceof Y.ContentFormat ||
      content instanceof Y.ContentEmbed
    )
      return Y.Text;
    if (
      content instanceof Y.ContentType &&
      (content.type instanceof Y.XmlElement || content.type instanceof Y.XmlText)
    ) {
      return Y.XmlFragment;
    }
  }
  return Y.Array;
};

export const docToJson = (doc: Y.Doc): Record<string, unknown> => {
  const copy = new Y.Doc();
  try {
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(doc));
    const out: Record<string, unknown> = {};
    for (const [name, type] of doc.share) {
      const ctor = guessCtor(type);
      out[name] = copy.get(name, ctor as unknown as Parameters<Y.Doc['get']>[1]).toJSON();
    }
    return out;
  } finally {
    copy.destroy();
  }
};

/** True when the document holds nothing at all (never written). */
export const isEmptyDoc = (doc: Y.Doc): boolean => doc.store.clients.size === 0;
