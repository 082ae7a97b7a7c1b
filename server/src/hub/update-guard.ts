/**
 * Structural checks on a Yjs update before it may touch a live document.
 *
 * `Y.decodeUpdate` only proves the bytes parse. Fuzzing found updates that parse
 * but then break `Y.applyUpdate` half-way (leaving part of them integrated) or
 * break every later encoding of the document: zero-length items and delete
 * ranges, items whose origins point into their own future, and JSON content
 * nested so deep that stringifying it overflows the stack, and ids past 2^53
 * (they decode once but not again). Honest clients never produce any of these,
 * so they are refused whole as INVALID_UPDATE.
 */
import * as Y from 'yjs';
import { StateweaveError } from '../errors.js';

/** Deepest nesting accepted inside one content value (JSON-like data). */
export const MAX_CONTENT_DEPTH = 64;

const invalid = (why: string): StateweaveError =>
  new StateweaveError('INVALID_UPDATE', `not a valid Yjs update: ${why}`);

/** Nesting depth of a JSON-like value, without recursion. */
const depthOf = (root: unknown): number => {
  let max = 0;
  const stack: Array<[unknown, number]> = [[root, 1]];
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null || value instanceof Uint8Array) continue;
    max = Math.max(max, depth);
    if (max > MAX_CONTENT_DEPTH) return max;
    for (const child of Array.isArray(value) ? value : Object.values(value))
      stack.push([child, depth + 1]);
  }
  return max;
};

const contentValues = (content: Y.Item['content']): unknown[] => {
  if (content instanceof Y.ContentAny || content instanceof Y.ContentJSON) return content.arr;
  if (content instanceof Y.ContentEmbed) return [content.embed];
  if (content instanceof Y.ContentFormat) return [content.value];
  return [];
};

/**
 * lib0 reads the last byte of a varint without a range check, so an id past 2^53
 * decodes once, imprecisely, and every later decode of the document's pending
 * part throws. Yjs client ids are 32-bit; clocks count operations.
 */
const checkId = (id: { readonly client: number; readonly clock: number }): void => {
  if (!Number.isSafeInteger(id.client) || !Number.isSafeInteger(id.clock))
    throw invalid(`id ${id.client}:${id.clock} out of range`);
};

/** What checkUpdate learned about an update it admitted. */
export interface CheckedUpdate {
  /** Per Yjs client id, the clock just past its last struct (client-ids.ts compares it with the state vector). */
  readonly ends: Map<number, number>;
  /** Per Yjs client id, the clock of its first struct. */
  readonly starts: Map<number, number>;
  /** Per Yjs client id, the clock just past the highest one its items refer to or its delete set covers. */
  readonly needs: Map<number, number>;
  /** It has a gap (a skip struct): part of it waits for content it does not carry. */
  readonly gaps: boolean;
}

const raise = (map: Map<number, number>, client: number, clock: number): void => {
  if (clock > (map.get(client) ?? 0)) map.set(client, clock);
};

/**
 * True when applying the checked update to a document that holds no pending part
 * and whose state vector is `known` integrates all of it and nothing else: each
 * client's structs start where the document's end, and everything they refer to
 * or delete is in the document or in the update. Then the change Yjs would
 * re-encode after applying it is this update (minus deletions the document
 * already had, which receivers ignore), so room.ts may act on these bytes.
 */
export const integratesWhole = (
  checked: CheckedUpdate,
  known: (client: number) => number,
): boolean => {
  if (checked.gaps) return false;
  for (const [client, start] of checked.starts) if (start !== known(client)) return false;
  for (const [client, need] of checked.needs)
    if (need > known(client) && need > (checked.ends.get(client) ?? 0)) return false;
  return true;
};

/** Decodes and checks `update`; throws INVALID_UPDATE when it must not be applied. */
export const checkUpdate = (update: Uint8Array): CheckedUpdate => {
  let decoded: ReturnType<typeof Y.decodeUpdate>;
  try {
    decoded = Y.decodeUpdate(update);
  } catch (err) {
    throw new StateweaveError('INVALID_UPDATE', `not a Yjs update: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const ends = new Map<number, number>();
  const starts = new Map<number, number>();
  const needs = new Map<number, number>();
  let gaps = false;
  for (const struct of decoded.structs) {
    if (struct.length <= 0) throw invalid(`empty struct at ${struct.id.client}:${struct.id.clock}`);
    checkId(struct.id);
    const { client, clock } = struct.id;
    const previousEnd = ends.get(client);
    if (previousEnd === undefined) starts.set(client, clock);
    // A skip, or a client's structs out of order or listed twice: not one contiguous run.
    else if (clock !== previousEnd) gaps = true;
    raise(ends, client, clock + struct.length);
    if (struct instanceof Y.Skip) gaps = true;
    if (!(struct instanceof Y.Item)) continue;
    const { id, origin, rightOrigin, parent } = struct;
    if (origin) {
      checkId(origin);
      raise(needs, origin.client, origin.clock + 1);
    }
    if (rightOrigin) {
      checkId(rightOrigin);
      raise(needs, rightOrigin.client, rightOrigin.clock + 1);
    }
    if (parent instanceof Y.ID) {
      checkId(parent);
      raise(needs, parent.client, parent.clock + 1);
    }
    // A client creates its items in clock order, so what it inserted next to is older.
    if (
      (origin && origin.client === id.client && origin.clock >= id.clock) ||
      (rightOrigin && rightOrigin.client === id.client && rightOrigin.clock >= id.clock)
    ) {
      throw invalid(`item ${id.client}:${id.clock} refers to its own future`);
    }
    for (const value of contentValues(struct.content)) {
      if (depthOf(value) > MAX_CONTENT_DEPTH)
        throw invalid(`content nested deeper than ${MAX_CONTENT_DEPTH}`);
    }
  }
  for (const [client, ranges] of decoded.ds.clients) {
    checkId({ client, clock: 0 });
    for (const range of ranges) {
      if (range.len <= 0) throw invalid(`empty delete range for client ${client}`);
      raise(needs, client, range.clock + range.len);
    }
  }
  return { ends, starts, needs, gaps };
};
