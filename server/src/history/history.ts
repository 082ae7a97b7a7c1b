/**
 * A document's history as the HTTP API and the SDK see it: versions, the state
 * at a version or time, naming the current state, restore and diff. Reads go to
 * the store (checkpoints + kept log, versions.ts); the live room is consulted
 * only for what the store cannot know (whether a snapshot exists, the current
 * state) and restore writes through the hub like every other change.
 */
import type { DocName } from '../doc-name.js';
import * as Y from 'yjs';
import { StateweaveError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import { docToJson, isEmptyDoc } from '../hub/doc-json.js';
import type { Origin } from '../origin.js';
import type { Store } from '../storage/store.js';
import { diffJson, type JsonChange } from './json-diff.js';
import { restoreUpdate } from './restore.js';
import { docAtSeq, listVersions, resolveAt, type Version } from './versions.js';

export interface History {
  /** False when the node keeps no history (`--history-retention 0`). */
  readonly enabled: boolean;
  versions(doc: DocName, page: { limit: number; before?: number }): Promise<Version[]>;
  /** The document at a version id or ISO time, as JSON or as one Yjs update. */
  at(
    doc: DocName,
    at: string,
    as: 'json' | 'update',
  ): Promise<{ seq: number; body: Record<string, unknown> | Uint8Array }>;
  /** Names the current state; named versions outlive the retention window. */
  name(doc: DocName, label: string, by: string | undefined): Promise<Version>;
  /** Brings back the content of a version as a new change; resolves once it is stored. */
  restore(doc: DocName, at: string, origin: Origin): Promise<{ seq: number; changed: boolean }>;
  /** `to` defaults to the newest version. */
  diff(
    doc: DocName,
    from: string,
    to: string | undefined,
  ): Promise<{ from: number; to: number; changes: JsonChange[] }>;
}

export interface HistoryOptions {
  readonly hub: Hub;
  readonly store: Store;
  readonly enabled: boolean;
}

const MAX_LABEL_CHARS = 200;

export const createHistory = (options: HistoryOptions): History => {
  const requireEnabled = (): void => {
    if (!options.enabled)
      throw new StateweaveError('NOT_FOUND', 'this node keeps no history (--history-retention 0)');
  };

  /** Runs `fn` with the document's compacted flag, once its changes so far are stored. */
  const withDoc = <T>(doc: DocName, fn: (compacted: boolean) => Promise<T>): Promise<T> =>
    options.hub.withRoom(doc, async (room) => {
      await room.covered();
      return fn(room.compacted);
    });

  const stateAt = (doc: DocName, at: string): Promise<{ seq: number; ydoc: Y.Doc }> =>
    withDoc(doc, async (compacted) => {
      const store = options.store;
      const seq = await resolveAt(store, doc, at, compacted);
      return { seq, ydoc: await docAtSeq(store, doc, seq, compacted) };
    });

  const jsonAt = async (
    doc: DocName,
    at: string,
  ): Promise<{ seq: number; json: Record<string, unknown> }> => {
    const { seq, ydoc } = await stateAt(doc, at);
    try {
      return { seq, json: docToJson(ydoc) };
    } finally {
      ydoc.destroy();
    }
  };

  return {
    enabled: options.enabled,

    versions(doc, page) {
      requireEnabled();
      return withDoc(doc, (compacted) => listVersions(options.store, doc, compacted, page));
    },

    async at(doc, at, as) {
      requireEnabled();
      const { seq, ydoc } = await stateAt(doc, at);
      try {
        if (isEmptyDoc(ydoc)) throw new StateweaveError('NOT_FOUND', `${doc} was empty at ${at}`);
        return { seq, body: as === 'json' ? docToJson(ydoc) : Y.encodeStateAsUpdate(ydoc) };
      } finally {
        ydoc.destroy();
      }
    },

    name(doc, label, by) {
      requireEnabled();
      if (label.trim() === '' || label.length > MAX_LABEL_CHARS)
        throw new StateweaveError('BAD_REQUEST', `name: 1 to ${MAX_LABEL_CHARS} characters`);
      return options.hub.withRoom(doc, async (room) => {
        await room.covered();
        if (isEmptyDoc(room.doc))
          throw new StateweaveError('NOT_FOUND', `document ${doc} is empty or does not exist`);
        const seq = room.lastSeq;
        const state = room.diffSince();
        const time = Date.now();
        await options.store.putCheckpoint(
          doc,
          { seq, time, label, ...(by !== undefined ? { by } : {}) },
          state,
        );
        const iso = new Date(time).toISOString();
        return {
          id: String(seq),
          time: iso,
          from: iso,
          writers: by !== undefined ? [by] : [],
          size: state.byteLength,
          changes: 0,
          name: label,
        };
      });
    },

    async restore(doc, at, origin) {
      requireEnabled();
      const { seq, ydoc } = await stateAt(doc, at);
      const old = Y.encodeStateAsUpdate(ydoc);
      ydoc.destroy();
      const hub = options.hub;
      const update = await hub.withRoom(doc, (room) => restoreUpdate(room.diffSince(), old));
      if (update === undefined) return { seq, changed: false };
      await hub.applyUpdate(doc, update, origin);
      return { seq, changed: true };
    },

    async diff(doc, from, to) {
      requireEnabled();
      const a = await jsonAt(doc, from);
      const newest = (): Promise<string> =>
        options.hub.withRoom(doc, async (room) => {
          await room.covered();
          return String(room.lastSeq);
        });
      const b = await jsonAt(doc, to ?? (await newest()));
      return { from: a.seq, to: b.seq, changes: diffJson(a.json, b.json) };
    },
  };
};
