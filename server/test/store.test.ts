import { docName } from './helpers/doc-name.js';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Level } from 'level';
import {
  createAbstractLevelStore,
  createLevelStore,
  createMemoryStore,
} from '../src/storage/level-store.js';
import { StoreError, type Store } from '../src/storage/store.js';
import { tempDir } from './helpers/node.js';
import { bytesOf, listAll, storeContract } from '../src/testing/index.js';

const dirs: Array<{ remove: () => Promise<void> }> = [];
const freshDir = async (): Promise<string> => {
  const dir = await tempDir();
  dirs.push(dir);
  return dir.path;
};
after(async () => {
  await Promise.all(dirs.map((d) => d.remove()));
});

storeContract('in-memory', () => createMemoryStore());
storeContract('LevelDB', async () => createLevelStore(await freshDir()));
storeContract('LevelDB with fsync', async () =>
  createLevelStore(await freshDir(), { fsync: true }),
);

/** Everything a store holds, document by document, as plain data. */
const dump = async (store: Store) => {
  const out: Record<
    string,
    { updates: number[][]; logLength: number; lastSeq: number; bytes: number }
  > = {};
  for (const name of await listAll(store)) {
    const doc = await store.load(name);
    out[name] = {
      updates: doc.updates.map((u) => [...u]),
      logLength: doc.logLength,
      lastSeq: doc.lastSeq,
      bytes: doc.bytes,
    };
  }
  return out;
};

type Db = Parameters<typeof createAbstractLevelStore>[0];

/**
 * A real LevelDB whose batch() records the `sync` option it is given: that
 * option reaching classic-level is the whole point of fsync mode.
 */
const spiedLevel = (path: string): { db: Db; syncFlags: unknown[] } => {
  const level = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
  const db = level as unknown as Db;
  const syncFlags: unknown[] = [];
  type Options = { sync?: boolean } | undefined;
  type Chained = { write: (options?: Options) => Promise<void> };
  const batch = db.batch.bind(db) as (ops?: unknown[], options?: Options) => unknown;
  // The store writes through chained batches (level-batch.ts); the array form is spied too.
  const spy = (ops?: unknown[], options?: Options): unknown => {
    if (ops !== undefined) {
      syncFlags.push(options?.sync);
      return batch(ops, options);
    }
    const chained = batch() as Chained;
    const write = chained.write.bind(chained);
    chained.write = (writeOptions?: Options) => {
      syncFlags.push(writeOptions?.sync);
      return write(writeOptions);
    };
    return chained;
  };
  db.batch = spy as unknown as Db['batch'];
  return { db, syncFlags };
};

describe('LevelDB store on disk', () => {
  it('serves exactly the same state after reopening the directory, and keeps seqs increasing', async () => {
    const path = await freshDir();
    const first = await createLevelStore(path);
    let highest = 0;
    for (let i = 0; i < 30; i++)
      highest = Math.max(
        highest,
        await first.append(docName(`doc-${i % 4}`), bytesOf(`w${i}`, 1 + i)),
      );
    const doc0 = await first.load(docName('doc-0'));
    await first.compact(docName('doc-0'), bytesOf('snap-0', 50), doc0.lastSeq - 1); // keep one log entry
    await first.compact(docName('only-snapshot'), bytesOf('lonely'), 0);
    // The last appends are still in flight when close() is called.
    const inFlight = Array.from({ length: 10 }, (_, i) =>
      first.append(docName('doc-3'), bytesOf(`late${i}`)),
    );
    await first.close();
    highest = Math.max(highest, ...(await Promise.all(inFlight)));

    const second = await createLevelStore(path);
    try {
      const state = await dump(second);
      assert.deepEqual(Object.keys(state), ['doc-0', 'doc-1', 'doc-2', 'doc-3', 'only-snapshot']);
      assert.equal(state['doc-0']!.logLength, 1);
      assert.equal(
        state['doc-3']!.logLength,
        7 + 10,
        'the appends in flight at close were written',
      );
      assert.equal(state['only-snapshot']!.logLength, 0);
      const next = await second.append(docName('doc-1'), bytesOf('after reopen'));
      assert.ok(next > highest, `seq ${next} after reopen must exceed ${highest}`);
      await second.close();

      // A third open sees the second one's write and the same everything else.
      const third = await createLevelStore(path);
      try {
        const again = await dump(third);
        assert.equal(again['doc-1']!.lastSeq, next);
        delete again['doc-1'];
        delete state['doc-1'];
        assert.deepEqual(again, state);
        assert.ok((await third.append(docName('doc-9'), bytesOf('x'))) > next);
      } finally {
        await third.close();
      }
    } finally {
      await second.close();
    }
  });

  it('keeps seqs increasing after a restart even when compaction removed every log entry', async () => {
    // The log is empty after a full compaction, so the high-water mark must come
    // from somewhere else, or a restart would hand out old seqs again.
    const path = await freshDir();
    const first = await createLevelStore(path);
    const seqs = await Promise.all(
      Array.from({ length: 5 }, (_, i) => first.append(docName('d'), bytesOf(`${i}`))),
    );
    await first.compact(docName('d'), bytesOf('all of it'), Math.max(...seqs));
    await first.close();
    const second = await createLevelStore(path);
    try {
      assert.equal((await second.load(docName('d'))).lastSeq, 0);
      assert.ok((await second.append(docName('d'), bytesOf('next'))) > Math.max(...seqs));
    } finally {
      await second.close();
    }
  });

  it('refuses a second open of a directory in use, with a StoreError', async () => {
    const path = await freshDir();
    const first = await createLevelStore(path);
    try {
      await assert.rejects(createLevelStore(path), StoreError);
      await first.append(docName('still-works'), bytesOf('ok'));
    } finally {
      await first.close();
    }
  });

  it('fsync mode passes sync to every LevelDB batch and the data survives a reopen', async () => {
    const path = await freshDir();
    const { db, syncFlags } = spiedLevel(path);
    const batches: number[] = [];
    const store = await createAbstractLevelStore(db, {
      fsync: true,
      onBatch: (ops, _ms, error) => {
        assert.equal(error, undefined);
        batches.push(ops);
      },
    });
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.append(docName('synced'), bytesOf(`f${i}`))),
    );
    await store.compact(docName('synced'), bytesOf('snap'), 0);
    await store.close();
    assert.ok(batches.length > 0);
    assert.equal(syncFlags.length, batches.length);
    assert.ok(
      syncFlags.every((flag) => flag === true),
      `every batch synced: ${JSON.stringify(syncFlags)}`,
    );

    const reopened = await createLevelStore(path, { fsync: true });
    try {
      const doc = await reopened.load(docName('synced'));
      assert.equal(doc.logLength, 20);
      assert.deepEqual([...doc.updates[0]!], [...bytesOf('snap')]);
    } finally {
      await reopened.close();
    }
  });

  it('summarizes the documents of a directory written before summaries, once, at its first open', async () => {
    const path = await freshDir();
    const first = await createLevelStore(path);
    const x = [
      await first.append(docName('x'), bytesOf('x1', 20)),
      await first.append(docName('x'), bytesOf('x2', 9)),
    ];
    await first.compact(docName('x'), bytesOf('snap', 12), x[0]!, true); // history kept: x1 stays in the log
    await first.append(docName('y'), bytesOf('y1', 5));
    await first.compact(docName('y'), bytesOf('y-snap', 4), Number.MAX_SAFE_INTEGER); // no history: no log left
    await first.append(docName('z'), bytesOf('z1', 7));
    const expected = await first.docs({ limit: 10 });
    const times = new Map(
      (await first.readChanges({ afterSeq: 0, limit: 100 })).changes.map((c) => [c.doc, c.time]),
    );
    await first.close();
    // What an older version left: no summaries, no marker.
    const raw = new Level<string, Uint8Array>(path, { keyEncoding: 'utf8', valueEncoding: 'view' });
    const keys: string[] = [];
    for await (const key of raw.keys())
      if (key.startsWith('d\0') || key === 'm\0docs') keys.push(key);
    assert.equal(keys.length, 4, 'three summaries and the marker');
    await raw.batch(keys.map((key) => ({ type: 'del' as const, key })));
    await raw.close();

    const second = await createLevelStore(path);
    try {
      const summarized = await second.docs({ limit: 10 });
      assert.deepEqual(
        summarized.map(({ name, bytes }) => ({ name, bytes })),
        expected.map(({ name, bytes }) => ({ name, bytes })),
      );
      for (const s of summarized) assert.equal(s.bytes, (await second.load(s.name)).bytes);
      const byName = new Map(summarized.map((s) => [s.name, s.lastChange]));
      assert.equal(byName.get(docName('x')), times.get(docName('x')), 'its newest kept entry');
      assert.equal(byName.get(docName('y')), 0, 'compacted without history: unknown');
      assert.equal(byName.get(docName('z')), times.get(docName('z')));
      // A load (which caches the summary it reads) and then writes: the sizes stay exact.
      await second.load(docName('y'));
      await second.append(docName('y'), bytesOf('y2', 3));
      await second.append(docName('y'), bytesOf('y3', 2));
      const [y] = await second.docs({ prefix: 'y', limit: 1 });
      assert.ok(y!.lastChange > 0);
      assert.equal(y!.bytes, (await second.load(docName('y'))).bytes);
    } finally {
      await second.close();
    }
  });

  it('without fsync, batches are not synced', async () => {
    const path = await freshDir();
    const { db, syncFlags } = spiedLevel(path);
    const store = await createAbstractLevelStore(db);
    await store.append(docName('plain'), bytesOf('p'));
    await store.close();
    assert.deepEqual(syncFlags, [false]);
  });
});
