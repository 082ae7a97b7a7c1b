/**
 * A tombstone: what is left of a deleted document. It holds the document's
 * state vector at the deletion (merged over the nodes that answered): every Yjs
 * item it covers belongs to the deleted document and is refused from then on,
 * whoever sends it (another replica's copy, the stored catch-up, a stock client
 * that still holds the old content). Items it does not cover were written after
 * the deletion: they make a new document under the same name. Pure: bytes and
 * Yjs, no I/O (cluster/tombstones.ts keeps, spreads and expires them).
 */
import * as decoding from 'lib0/decoding';
import * as encoding from 'lib0/encoding';
import * as Y from 'yjs';
import { decodedDocName, type DocName } from '../doc-name.js';

export interface Tombstone {
  readonly doc: DocName;
  /** Y.encodeStateVector of everything deleted. */
  readonly stateVector: Uint8Array;
  /** Epoch ms of the deletion, on the node that deleted it (expiry counts from it). */
  readonly deletedAt: number;
  /** Who deleted it (`user:<sub>`, `anonymous`). */
  readonly by: string;
}

/** What the hub asks before it applies an update: the tombstone of a document, if any. */
export interface TombstoneGuard {
  stateVectorOf(doc: DocName): Map<number, number> | undefined;
}

const VERSION = 1;

export const encodeTombstone = (t: Tombstone): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeUint8(e, VERSION);
  encoding.writeVarString(e, t.doc);
  encoding.writeVarUint8Array(e, t.stateVector);
  encoding.writeFloat64(e, t.deletedAt);
  encoding.writeVarString(e, t.by);
  return encoding.toUint8Array(e);
};

/** Reads one tombstone at the decoder's position (several may follow each other). */
export const readTombstone = (d: decoding.Decoder): Tombstone => {
  const version = decoding.readUint8(d);
  if (version !== VERSION) throw new Error(`unknown tombstone version ${version}`);
  // Tombstones come from peers and from disk: the name is checked as it enters.
  const doc = decodedDocName(decoding.readVarString(d));
  const stateVector = decoding.readVarUint8Array(d);
  Y.decodeStateVector(stateVector); // throws on garbage before anyone relies on it
  return { doc, stateVector, deletedAt: decoding.readFloat64(d), by: decoding.readVarString(d) };
};

export const decodeTombstone = (bytes: Uint8Array): Tombstone =>
  readTombstone(decoding.createDecoder(bytes));

/** True when `a` covers every item `b` covers. */
export const coversAll = (a: Map<number, number>, b: Map<number, number>): boolean => {
  for (const [client, clock] of b) if ((a.get(client) ?? 0) < clock) return false;
  return true;
};

/** Two deletions of one document: each item either covered stays deleted. */
export const mergeTombstones = (a: Tombstone, b: Tombstone): Tombstone => {
  const sv = Y.decodeStateVector(a.stateVector);
  for (const [client, clock] of Y.decodeStateVector(b.stateVector))
    sv.set(client, Math.max(sv.get(client) ?? 0, clock));
  const later = b.deletedAt > a.deletedAt ? b : a;
  return { ...later, stateVector: encodeStateVector(sv) };
};

/** Y.encodeStateVector for a plain map (Yjs encodes one only from a doc). */
export const encodeStateVector = (sv: Map<number, number>): Uint8Array => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, sv.size);
  for (const [client, clock] of [...sv].sort((x, y) => y[0] - x[0])) {
    encoding.writeVarUint(e, client);
    encoding.writeVarUint(e, clock);
  }
  return encoding.toUint8Array(e);
};

/**
 * Splits an update by a tombstone: `covered` when it carries anything of the
 * deleted document; `rest` is what it carries beyond it (null when nothing).
 * Deletions of old items that travel with new items stay in `rest`: Yjs keeps
 * them pending, they change nothing visible.
 */
export const splitByTombstone = (
  update: Uint8Array,
  deleted: Map<number, number>,
): { covered: boolean; rest: Uint8Array | null } => {
  const { from, to } = Y.parseUpdateMeta(update);
  let structsCovered = false;
  for (const [client, clock] of from) if (clock < (deleted.get(client) ?? 0)) structsCovered = true;
  let deletesCovered = false;
  let deletesNew = false;
  for (const [client, ranges] of Y.decodeUpdate(update).ds.clients) {
    const end = deleted.get(client) ?? 0;
    for (const { clock, len } of ranges) {
      if (clock < end) deletesCovered = true;
      if (clock + len > end) deletesNew = true;
    }
  }
  if (!structsCovered && !deletesCovered) return { covered: false, rest: update };
  const rest = structsCovered ? Y.diffUpdate(update, encodeStateVector(deleted)) : update;
  const structsLeft = [...to].some(([client, clock]) => clock > (deleted.get(client) ?? 0));
  return { covered: true, rest: structsLeft || deletesNew ? rest : null };
};
