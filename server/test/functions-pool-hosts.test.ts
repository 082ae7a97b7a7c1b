/**
 * The pool's two kinds of sandbox host answer alike: in the node's thread (the
 * default, in-thread-worker.ts) and in worker threads (`workerThreads`, worker.ts).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { createWorkerPool } from '../src/functions/pool.js';
import { guestScript } from '../src/functions/guest-script.js';
import { versionOf } from '../src/functions/registry.js';
import type { WorkerCall } from '../src/functions/worker-protocol.js';
import { silentLogger } from './helpers/node.js';

const CODE = `
const { defineFunction } = require('@stateweave/server');
exports.bump = defineFunction({
  name: 'bump',
  doc: (input) => 'hosts/' + input.doc,
  handler({ doc }) {
    const map = doc.getMap('c');
    map.set('n', (map.get('n') ?? 0) + 1);
    return map.get('n');
  },
});
`;
const bundle = { version: versionOf(CODE), code: CODE };

for (const workerThreads of [false, true]) {
  describe(workerThreads ? 'a pool of worker threads' : 'a pool hosted in this thread', () => {
    it('prepares, then runs calls on a warm copy that follows the live document', async () => {
      const pool = createWorkerPool({
        size: 2,
        memoryMb: 32,
        maxResultBytes: 1024,
        guest: guestScript(),
        warmDocsPerWorker: 16,
        maxWaiting: 100,
        logger: silentLogger(),
        workerThreads,
      });
      try {
        const [meta] = await pool.describe(bundle, 5000);
        assert.equal(meta?.name, 'bump');
        const prepared = await pool.prepare(bundle, 'bump', { doc: 'a' }, 5000);
        assert.deepEqual(prepared.docs, ['hosts/a']);
        const live = new Y.Doc();
        const doc = {
          name: 'hosts/a',
          diffSince: (sv?: Uint8Array) => Y.encodeStateAsUpdate(live, sv),
        };
        const call = (i: number): WorkerCall => ({
          version: bundle.version,
          name: 'bump',
          input: prepared.input,
          auth: { subject: 'test', rights: ['invoke'] },
          id: `call-${i}`,
          now: 0,
          kind: 'mutation',
        });
        for (let i = 1; i <= 3; i++) {
          const outcome = await pool.invoke(doc, bundle, call(i), 1000);
          assert.equal(outcome.result, String(i));
          assert.ok(outcome.update);
          Y.applyUpdate(live, outcome.update);
          outcome.settle(true);
        }
        // A write the worker did not make reaches its copy as a diff.
        live.getMap('c').set('n', 10);
        const outcome = await pool.invoke(doc, bundle, call(4), 1000);
        assert.equal(outcome.result, '11');
        outcome.settle(true);
        assert.equal(pool.respawns, 0);
      } finally {
        await pool.close();
      }
    });
  });
}
