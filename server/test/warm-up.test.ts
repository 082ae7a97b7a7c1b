/**
 * The start's warm-up of the load path (hub/warm-up.ts), on real LevelDB:
 *
 * - it loads a small stored document WARM_ROUNDS times, passing over a larger one
 *   before it in the list, and writes nothing: every key and value of the
 *   database is the same after it, also for a document whose log is past the
 *   compaction threshold (a real room would compact it);
 * - with no small document (an empty store, or only a large one) it runs no load;
 * - a failing store does not stop it (nor the start): it resolves 0;
 * - a store whose reads hang holds it no longer than its budget;
 * - a node started on a data directory warms up unseen: no room open, no load in its
 *   metrics, and a client then gets the stored document.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { MAX_WARM_BYTES, WARM_BUDGET_MS, WARM_ROUNDS, warmLoadPath } from '../src/hub/warm-up.js';
import { createLevelStore } from '../src/storage/level-store.js';
import type { Store } from '../src/storage/store.js';
import { docName } from './helpers/doc-name.js';
import { silentLogger, startNode, tempDir } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';

const parts = () => ({ logger: silentLogger() });

const dumpOf = async (store: Store): Promise<Map<string, string>> => {
  const out = new Map<string, string>();
  for await (const [key, value] of store.dump!()) out.set(key, Buffer.from(value).toString('hex'));
  return out;
};

/** `count` one-character edits as log entries of `name`. */
const writeEdits = async (store: Store, name: string, count: number): Promise<void> => {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < count; i++) doc.getText('t').insert(0, String.fromCharCode(97 + (i % 26)));
  for (const u of updates) await store.append(docName(name), u);
};

/** One update larger than MAX_WARM_BYTES. */
const writeLarge = async (store: Store, name: string): Promise<void> => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, 'x'.repeat(MAX_WARM_BYTES * 2));
  await store.append(docName(name), Y.encodeStateAsUpdate(doc));
};

describe('warm-up of the load path', () => {
  it('loads a small stored document and writes nothing', async () => {
    const dir = await tempDir();
    const store = await createLevelStore(dir.path);
    try {
      await writeLarge(store, 'a-large');
      // Past the default compaction threshold (500): a hub room would compact it.
      await writeEdits(store, 'b-small', 600);
      const before = await dumpOf(store);
      const loads: string[] = [];
      const counting: Store = {
        ...store,
        load: (name) => {
          loads.push(name);
          return store.load(name);
        },
      };
      // A budget no loaded test machine reaches: every round runs.
      const budgetMs = 60_000;
      assert.equal(await warmLoadPath({ store: counting, ...parts(), budgetMs }), WARM_ROUNDS);
      assert.deepEqual(loads, Array(WARM_ROUNDS).fill('b-small'));
      // Let anything the rooms might have started settle before comparing.
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(await dumpOf(store), before);
      assert.equal((await store.load(docName('b-small'))).logLength, 600);
    } finally {
      await store.close();
      await dir.remove();
    }
  });

  it('runs no load without a small stored document', async () => {
    const dir = await tempDir();
    const store = await createLevelStore(dir.path);
    try {
      assert.equal(await warmLoadPath({ store, ...parts() }), 0);
      await writeLarge(store, 'only-large');
      assert.equal(await warmLoadPath({ store, ...parts() }), 0);
    } finally {
      await store.close();
      await dir.remove();
    }
  });

  it('resolves 0 when the store fails', async () => {
    const dir = await tempDir();
    const store = await createLevelStore(dir.path);
    try {
      await writeEdits(store, 'small', 3);
      const failing: Store = {
        ...store,
        load: () => Promise.reject(new Error('disk on fire')),
      };
      assert.equal(await warmLoadPath({ store: failing, ...parts() }), 0);
    } finally {
      await store.close();
      await dir.remove();
    }
  });

  it('waits no longer than its budget for a store whose reads hang', async () => {
    const dir = await tempDir();
    const store = await createLevelStore(dir.path);
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => (release = resolve));
    try {
      await writeEdits(store, 'small', 3);
      const hanging: Store = {
        ...store,
        load: async (name) => {
          await held;
          return store.load(name);
        },
      };
      const started = performance.now();
      assert.equal(await warmLoadPath({ store: hanging, ...parts(), budgetMs: 100 }), 0);
      const took = performance.now() - started;
      assert.ok(took >= 90 && took < 100 + WARM_BUDGET_MS * 20, `returned after ${took} ms`);
    } finally {
      release();
      await new Promise((resolve) => setTimeout(resolve, 20));
      await store.close();
      await dir.remove();
    }
  });

  it('leaves no trace in a node started on a data directory', async () => {
    const dir = await tempDir();
    try {
      const filler = await createLevelStore(dir.path);
      await writeEdits(filler, 'small', 3);
      await filler.close();
      const node = await startNode({ dataDir: dir.path });
      try {
        const loadsOf = async (): Promise<string | undefined> =>
          /^stateweave_document_load_seconds_count (\d+)$/m.exec(
            await (await fetch(`${node.url}/metrics`)).text(),
          )?.[1];
        assert.equal(node.server.hub.openDocuments, 0);
        assert.equal(await loadsOf(), '0');
        const client = await stockClient(node.wsUrl, 'small');
        try {
          assert.equal(client.doc.getText('t').length, 3);
          assert.equal(await loadsOf(), '1');
        } finally {
          client.destroy();
        }
      } finally {
        await node.close();
      }
    } finally {
      await dir.remove();
    }
  });
});
