/**
 * The history compactor's running count of the log since its newest checkpoint
 * (history/log-bytes.ts): checkpoints land exactly where a count read back from
 * the log would put them — across compactions, a restart and a document deleted
 * and written anew — while a compaction reads only what was appended since the
 * one before.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { validateDocName, type DocName } from '../src/doc-name.js';
import { createHistoryCompactor, type HistoryCompactor } from '../src/history/compactor.js';
import { createLogBytes } from '../src/history/log-bytes.js';
import { createLogger } from '../src/log.js';
import { createLevelStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { tempDir } from './helpers/node.js';

const DOC = validateDocName('counted');
const DAY_MS = 86_400_000;

/** `store` with the log entries its readChanges returned counted. */
const counting = (store: Store): { store: Store; read: () => number } => {
  let read = 0;
  const wrapped: Store = Object.assign(Object.create(store) as Store, {
    readChanges: async (query: Parameters<Store['readChanges']>[0]) => {
      const page = await store.readChanges(query);
      read += page.changes.length;
      return page;
    },
  });
  return { store: wrapped, read: () => read };
};

/** The reference: the log's bytes in (afterSeq, throughSeq], read back entry by entry. */
const loggedBytes = async (
  store: Store,
  doc: DocName,
  afterSeq: number,
  throughSeq: number,
): Promise<number> => {
  const { changes } = await store.readChanges({ doc, afterSeq, throughSeq, limit: 100_000 });
  return changes.reduce((sum, c) => sum + c.update.byteLength, 0);
};

const newestBase = async (store: Store, doc: DocName) =>
  (await store.checkpoints(doc)).filter((c) => c.label === undefined).at(-1);

/** A writer whose document has a large value and gets small edits (many compactions per checkpoint). */
const writer = (store: () => Store) => {
  let ydoc = new Y.Doc();
  let throughSeq = 0;
  let edits = 0;
  return {
    get throughSeq() {
      return throughSeq;
    },
    snapshot: () => Y.encodeStateAsUpdate(ydoc),
    anew: () => {
      ydoc.destroy();
      ydoc = new Y.Doc();
    },
    async write(value: string, key = `k${edits++ % 3}`): Promise<void> {
      const before = Y.encodeStateVector(ydoc);
      ydoc.getMap('m').set(key, value);
      throughSeq = await store().append(DOC, Y.encodeStateAsUpdate(ydoc, before));
    },
  };
};

describe('the history compactor’s running count of log bytes', () => {
  let dir: { path: string; remove: () => Promise<void> };
  before(async () => {
    dir = await tempDir();
  });
  after(() => dir.remove());

  it('checkpoints where the log says, across compactions, a restart and a new start', async () => {
    let raw = await createLevelStore(dir.path);
    let counted = counting(raw);
    const logger = createLogger('silent');
    let compactor: HistoryCompactor = createHistoryCompactor({
      store: counted.store,
      retentionMs: DAY_MS,
      logger,
    });
    const w = writer(() => raw);
    let compactions = 0;
    let checkpoints = 0;
    let wasCompacted = false;
    /** Writes `edits` small values, compacts, and checks the outcome against the log read back. */
    const round = async (edits: number, valueChars: number, readsOnlyNew: boolean) => {
      const from = w.throughSeq;
      for (let i = 0; i < edits; i++) await w.write(`${i}`.padEnd(valueChars, 'x'));
      const snapshot = w.snapshot();
      const base = await newestBase(raw, DOC);
      const expected =
        base === undefined ||
        (await loggedBytes(raw, DOC, base.seq, w.throughSeq)) >= snapshot.byteLength;
      const readBefore = counted.read();
      await compactor.compact(DOC, snapshot, w.throughSeq, true, wasCompacted);
      wasCompacted = true;
      compactions++;
      const made = (await newestBase(raw, DOC))?.seq === w.throughSeq;
      assert.equal(made, expected, `compaction ${compactions}: a checkpoint iff the log weighs it`);
      if (made) checkpoints++;
      if (readsOnlyNew)
        assert.equal(
          counted.read() - readBefore,
          (await raw.readChanges({ doc: DOC, afterSeq: from, limit: 100_000 })).changes.length,
          `compaction ${compactions} reads only the entries appended since the one before`,
        );
    };

    await w.write('big'.repeat(1000), 'big'); // a snapshot several compactions of edits weigh
    await round(1, 10, false);
    for (let i = 0; i < 16; i++) await round(10, 40, true);
    const beforeRestart = checkpoints;
    assert.ok(beforeRestart >= 2, `checkpoints made: ${beforeRestart} of ${compactions}`);
    assert.ok(
      compactions - beforeRestart >= 5,
      `checkpoints made: ${beforeRestart} of ${compactions}`,
    );

    // A restart: a new compactor over the reopened store counts from the log once.
    await raw.close();
    raw = await createLevelStore(dir.path);
    counted = counting(raw);
    compactor = createHistoryCompactor({ store: counted.store, retentionMs: DAY_MS, logger });
    const lastBase = await newestBase(raw, DOC);
    assert.ok(lastBase !== undefined && lastBase.seq < w.throughSeq, 'log left after a checkpoint');
    await round(10, 40, false);
    for (let i = 0; i < 6; i++) await round(10, 40, true);

    // Deleted and written anew: its history starts again at the new first compaction.
    await raw.remove(DOC);
    w.anew();
    wasCompacted = false;
    await w.write('big'.repeat(1000), 'big');
    await round(1, 10, false);
    for (let i = 0; i < 8; i++) await round(10, 40, true);
    assert.ok(checkpoints > beforeRestart, 'checkpoints after the restart and the new start');
    await raw.close();
  });

  it('forgets the least recently counted document past its bound, and reads it back', async () => {
    const raw = await createLevelStore(`${dir.path}-bound`);
    try {
      const counted = counting(raw);
      const logBytes = createLogBytes({ store: counted.store, maxDocs: 1 });
      const [a, b] = [validateDocName('a'), validateDocName('b')];
      const base = { seq: 0, time: 0 };
      const seqA = await raw.append(a, new Uint8Array(7));
      const seqB = await raw.append(b, new Uint8Array(5));
      assert.equal((await logBytes.since(a, base, seqA)).bytes, 7);
      assert.equal((await logBytes.since(b, base, seqB)).bytes, 5); // a is forgotten
      const seqA2 = await raw.append(a, new Uint8Array(3));
      const read = counted.read();
      assert.equal((await logBytes.since(a, base, seqA2)).bytes, 10);
      assert.equal(counted.read() - read, 2, 'a read back from its base');
      const seqA3 = await raw.append(a, new Uint8Array(1));
      assert.equal((await logBytes.since(a, base, seqA3)).bytes, 11);
      assert.equal(counted.read() - read, 3, 'then only what is new');
    } finally {
      await raw.close();
    }
  });
});
