/**
 * Reading the history: which positions of a document's log can be rebuilt, the
 * state at a position or a time, and the versions a user picks from.
 *
 * A position is a log seq: "the state at seq X" holds exactly the document's
 * log entries with seq ≤ X. It is rebuilt from the newest unnamed checkpoint at
 * or before X plus the entries after it. A named checkpoint is returned as
 * stored when X is its own seq (it may outlive the log around it).
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import { StateweaveError } from '../errors.js';
import type { ChangeEntry, Checkpoint, Store } from '../storage/store.js';

/** Consecutive changes with less quiet than this between them form one version. */
export const VERSION_GAP_MS = 60_000;
/** ... unless the version would span more than this. */
export const VERSION_SPAN_MS = 10 * 60_000;
const PAGE = 1000;

export interface Version {
  /** The log seq after the version's last change; what `?at=` takes. */
  readonly id: string;
  /** ISO time of the version's last change (of its naming, for a named one). */
  readonly time: string;
  /** ISO time of its first change. */
  readonly from: string;
  readonly writers: readonly string[];
  /** Bytes of the updates in it (of the stored state, for a named one). */
  readonly size: number;
  readonly changes: number;
  /** Set on a named version. */
  readonly name?: string;
}

/** Where the rebuildable history of a document begins. */
interface HistoryStart {
  readonly checkpoints: readonly Checkpoint[];
  /** Positions before this cannot be rebuilt (except named ones). */
  readonly firstSeq: number;
}

const historyStart = async (
  store: Store,
  doc: DocName,
  compacted: boolean,
): Promise<HistoryStart> => {
  const checkpoints = await store.checkpoints(doc);
  const base = checkpoints.find((c) => c.label === undefined);
  // No base: only a document never compacted has its whole log, from empty.
  const firstSeq = base ? base.seq : compacted ? Number.POSITIVE_INFINITY : 0;
  return { checkpoints, firstSeq };
};

/** Every kept entry after `afterSeq` up to `throughSeq`, page by page. */
export async function* entriesOf(
  store: Store,
  doc: DocName,
  afterSeq: number,
  throughSeq?: number,
): AsyncGenerator<ChangeEntry> {
  for (let after = afterSeq; ;) {
    const { changes } = await store.readChanges({
      doc,
      afterSeq: after,
      limit: PAGE,
      ...(throughSeq !== undefined ? { throughSeq } : {}),
    });
    yield* changes;
    if (changes.length < PAGE) return;
    after = changes.at(-1)!.seq;
  }
}

const outsideHistory = (doc: DocName, at: string): StateweaveError =>
  new StateweaveError(
    'NOT_FOUND',
    `${doc} has no version at ${at}: it is older than the history (or the document did not exist)`,
  );

/**
 * The document as it was at log position `seq` (a Y.Doc the caller destroys).
 * `compacted`: the live document has a snapshot (hub Room.compacted).
 */
export const docAtSeq = async (
  store: Store,
  doc: DocName,
  seq: number,
  compacted: boolean,
): Promise<Y.Doc> => {
  const start = await historyStart(store, doc, compacted);
  const named = start.checkpoints.find((c) => c.seq === seq && c.label !== undefined);
  const out = new Y.Doc();
  if (named && seq < start.firstSeq) {
    Y.applyUpdate(out, (await store.checkpointState(doc, named.seq))!);
    return out;
  }
  if (seq < start.firstSeq) throw outsideHistory(doc, String(seq));
  const base = start.checkpoints.filter((c) => c.label === undefined && c.seq <= seq).at(-1);
  const updates: Uint8Array[] = [];
  if (base) {
    const state = await store.checkpointState(doc, base.seq);
    if (state) updates.push(state);
  }
  for await (const entry of entriesOf(store, doc, base?.seq ?? 0, seq)) updates.push(entry.update);
  // In one transaction (Y.mergeUpdates first was several times slower).
  out.transact(() => {
    for (const update of updates) Y.applyUpdate(out, update);
  });
  return out;
};

/** The log position of the state at `time` (epoch ms): its last entry at or before it. */
export const seqAtTime = async (
  store: Store,
  doc: DocName,
  time: number,
  compacted: boolean,
): Promise<number> => {
  const start = await historyStart(store, doc, compacted);
  const base = start.checkpoints.filter((c) => c.label === undefined && c.time <= time).at(-1);
  if (!base && start.firstSeq !== 0) throw outsideHistory(doc, new Date(time).toISOString());
  let seq = base?.seq ?? 0;
  for await (const entry of entriesOf(store, doc, seq)) {
    if (entry.time > time) break;
    seq = entry.seq;
  }
  if (seq === 0) throw outsideHistory(doc, new Date(time).toISOString());
  return seq;
};

/** A `?at=` value: a version id (a seq) or an ISO time; resolves to a seq. */
export const resolveAt = async (
  store: Store,
  doc: DocName,
  at: string,
  compacted: boolean,
): Promise<number> => {
  if (/^\d+$/.test(at)) return Number(at);
  const time = /^\d{4}-\d\d-\d\d/.test(at) ? Date.parse(at) : NaN;
  if (Number.isNaN(time))
    throw new StateweaveError('BAD_REQUEST', `at: expected a version id or an ISO time, got ${at}`);
  return seqAtTime(store, doc, time, compacted);
};

/**
 * The document's versions, newest first: its kept changes grouped by quiet
 * gaps (VERSION_GAP_MS, at most VERSION_SPAN_MS each), and its named versions.
 * A page holds at most `limit`, all with an id below `before` when given.
 */
export const listVersions = async (
  store: Store,
  doc: DocName,
  compacted: boolean,
  page: { readonly limit: number; readonly before?: number },
): Promise<Version[]> => {
  const start = await historyStart(store, doc, compacted);
  const groups: Array<{
    first: ChangeEntry;
    last: ChangeEntry;
    writers: Set<string>;
    size: number;
    n: number;
  }> = [];
  if (Number.isFinite(start.firstSeq)) {
    for await (const entry of entriesOf(store, doc, start.firstSeq)) {
      const open = groups.at(-1);
      if (
        open &&
        entry.time - open.last.time < VERSION_GAP_MS &&
        entry.time - open.first.time < VERSION_SPAN_MS
      ) {
        open.last = entry;
        open.size += entry.update.byteLength;
        open.n++;
        for (const w of entry.writers) open.writers.add(w);
      } else
        groups.push({
          first: entry,
          last: entry,
          writers: new Set(entry.writers),
          size: entry.update.byteLength,
          n: 1,
        });
    }
  }
  const iso = (ms: number): string => new Date(ms).toISOString();
  const versions: Version[] = groups.map((g) => ({
    id: String(g.last.seq),
    time: iso(g.last.time),
    from: iso(g.first.time),
    writers: [...g.writers],
    size: g.size,
    changes: g.n,
  }));
  for (const c of start.checkpoints)
    if (c.label !== undefined)
      versions.push({
        id: String(c.seq),
        time: iso(c.time),
        from: iso(c.time),
        writers: c.by !== undefined ? [c.by] : [],
        size: c.bytes,
        changes: 0,
        name: c.label,
      });
  versions.sort((a, b) => Number(b.id) - Number(a.id) || (a.name ? -1 : 1));
  return versions
    .filter((v) => page.before === undefined || Number(v.id) < page.before)
    .slice(0, page.limit);
};
