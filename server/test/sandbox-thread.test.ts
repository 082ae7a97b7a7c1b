/**
 * What a sandbox must not run on its caller's thread. The pool hosts sandboxes in
 * the node's thread (in-thread-worker.ts), so guest code reached by a host call
 * other than an invocation must enter the isolate asynchronously too: dropping a
 * warm copy destroys its Y.Doc, and a destroy handler is the guest's code.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { createSandbox, type Sandbox } from '../src/functions/sandbox.js';
import { guestScript } from '../src/functions/guest-script.js';

/** A mutation that leaves a destroy handler that never returns on its document. */
const BUNDLE = `
const { defineFunction } = require('@stateweave/server');
exports.trap = defineFunction({
  name: 'trap',
  doc: () => 'thread/trap',
  handler({ doc }) {
    doc.on('destroy', () => { for (;;) {} });
    return 1;
  },
});
`;

describe('a sandbox and its caller thread', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await createSandbox(
      { code: await guestScript() },
      BUNDLE,
      { memoryMb: 32, maxResultBytes: 1024 },
      5000,
    );
  });
  after(() => sandbox.dispose());

  it('forgets a copy without running its destroy handler on this thread', async () => {
    const [answer] = await sandbox.invoke(
      [
        {
          docs: [{ name: 'thread/trap', reset: true, diff: Y.encodeStateAsUpdate(new Y.Doc()) }],
          calls: [
            {
              version: 'v1',
              name: 'trap',
              input: null,
              auth: { subject: 'test', rights: ['invoke'] },
              id: 'trap-1',
              now: 0,
              kind: 'mutation',
            },
          ],
        },
      ],
      [],
      1000,
      () => Promise.reject(new Error('no ctx.read here')),
    );
    assert.deepEqual(answer?.results, ['1']);
    assert.ok(sandbox.has(['thread/trap']));
    const started = performance.now();
    const forgotten = sandbox.forget(['thread/trap']);
    const heldMs = performance.now() - started;
    await forgotten;
    // Synchronously this was the handler's 100 ms limit on the node's thread.
    assert.ok(heldMs < 50, `forget held the calling thread ${heldMs.toFixed(0)} ms`);
    assert.equal(sandbox.has(['thread/trap']), false);
    assert.equal(sandbox.disposed, true, 'a forget that timed out starts the sandbox afresh');
  });
});
