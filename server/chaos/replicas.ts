/**
 * The checker: compares the replicas of a document by their bytes and tells
 * which acknowledged writes a replica lacks. A replica is a node's copy (read
 * over HTTP as a binary update) or a fresh client's.
 *
 * Byte-identical means: the same state vector, and the same canonical encoding.
 * Yjs may keep adjacent items of one client split or merged depending on how
 * they arrived, so a node's raw encoding can differ from another's for the same
 * content; the canonical form is the encoding of a fresh Y.Doc that applied the
 * state in one transaction (which merges what can be merged). Raw equality is
 * reported as a figure.
 */
import { Buffer } from 'node:buffer';
import * as Y from 'yjs';

export interface Replica {
  /** e.g. `n1`, or `fresh client via n2`. */
  readonly name: string;
  readonly state: Uint8Array;
}

const EMPTY = Y.encodeStateAsUpdate(new Y.Doc());

/** A node's copy of `doc` (empty when it has none). */
export const nodeReplica = async (name: string, httpUrl: string, doc: string): Promise<Replica> => {
  // Three tries of 30 s each, the body included: a node just restarted under
  // load answers slowly, not never.
  for (let attempt = 1; ; attempt++) {
    const started = performance.now();
    try {
      const res = await fetch(`${httpUrl}/v1/docs/${doc}`, {
        headers: { accept: 'application/octet-stream' },
        signal: AbortSignal.timeout(30_000),
      });
      if (res.status === 404) return { name, state: EMPTY };
      if (!res.ok) throw new Error(`GET ${doc} from ${name} answered ${res.status}`);
      return { name, state: new Uint8Array(await res.arrayBuffer()) };
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      if (attempt >= 3)
        throw new Error(
          `GET ${doc} from ${name}: ${attempt} tries failed, the last after ${ms} ms`,
          {
            cause: err,
          },
        );
    }
  }
};

export const canonical = (state: Uint8Array): Uint8Array => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const out = Y.encodeStateAsUpdate(doc);
  doc.destroy();
  return out;
};

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

export interface Comparison {
  /** Same state vector and canonical bytes everywhere. */
  readonly identical: boolean;
  /** Same raw bytes everywhere (stricter; for the record). */
  readonly rawIdentical: boolean;
  /** Replicas whose canonical bytes differ from the first one, each with how (state vector). */
  readonly differing: string[];
  readonly bytes: number;
}

export const compareReplicas = (replicas: readonly Replica[]): Comparison => {
  const [first, ...rest] = replicas;
  if (!first) return { identical: true, rawIdentical: true, differing: [], bytes: 0 };
  const reference = hex(canonical(first.state));
  const vector = hex(Y.encodeStateVectorFromUpdate(first.state));
  const differing = rest
    .filter(
      (r) =>
        hex(canonical(r.state)) !== reference ||
        hex(Y.encodeStateVectorFromUpdate(r.state)) !== vector,
    )
    .map((r) => `${r.name} [${vectorDifference(first.state, r.state)}]`);
  const raw = hex(first.state);
  return {
    identical: differing.length === 0,
    rawIdentical: rest.every((r) => hex(r.state) === raw),
    differing,
    bytes: first.state.byteLength,
  };
};

/**
 * How `other`'s state vector differs from `reference`'s: `client: theirs/ours`
 * for every client whose clock differs, or `same vector` (then the content
 * differs, e.g. in delete sets).
 */
export const vectorDifference = (reference: Uint8Array, other: Uint8Array): string => {
  const ours = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(reference));
  const theirs = Y.decodeStateVector(Y.encodeStateVectorFromUpdate(other));
  const clients = new Set([...ours.keys(), ...theirs.keys()]);
  const parts = [...clients]
    .filter((c) => (ours.get(c) ?? 0) !== (theirs.get(c) ?? 0))
    .map((c) => `${c}: ${theirs.get(c) ?? 0}/${ours.get(c) ?? 0}`);
  return parts.length === 0 ? 'same vector' : parts.join(', ');
};

/** The keys of `wanted` that the Y.Map `mapName` of `state` lacks. */
export const missingKeys = (
  state: Uint8Array,
  mapName: string,
  wanted: Iterable<string>,
): string[] => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  const map = doc.getMap(mapName);
  const missing = [...wanted].filter((key) => !map.has(key));
  doc.destroy();
  return missing;
};
