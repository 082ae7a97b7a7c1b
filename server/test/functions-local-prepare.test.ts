/**
 * Prepares in the node's own thread (local-prepare.ts): a version's sandbox here
 * validates inputs and names documents without a worker message; what this thread
 * must not run (a prepare past its short limit) goes to the workers, which keep
 * the function's own time limit and errors.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { createLocalPrepares, type LocalPrepares } from '../src/functions/local-prepare.js';
import { guestScript } from '../src/functions/guest-script.js';
import { versionOf } from '../src/functions/registry.js';
import { StateweaveError } from '../src/errors.js';
import { errorCode, invoke } from './helpers/functions.js';
import { silentLogger, startNode, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

/** A CommonJS bundle as deploy compiles it: `doc` loops when asked to. */
const CODE = `
const { defineFunction } = require('@stateweave/server');
exports.pick = defineFunction({
  name: 'pick',
  input: { parse: (x) => { if (typeof x?.doc !== 'string') throw new Error('doc: expected string'); return x; } },
  doc: (input) => { if (input.loop) for (;;) {} return 'local/' + input.doc; },
  handler: () => null,
});
`;
const bundle = { version: versionOf(CODE), code: CODE };

describe('prepares in the node thread', () => {
  let clock = 0;
  const local: LocalPrepares = createLocalPrepares({
    guest: guestScript(),
    memoryMb: 32,
    logger: silentLogger(),
    limitMs: 200,
    offMs: 4000,
    now: () => clock,
  });
  after(() => local.close());
  const ready = (): Promise<unknown> =>
    waitFor(
      () => local.prepare(bundle, 'pick', { doc: 'probe' }, 5000) !== undefined,
      'the version built here',
      10_000,
    );

  it('answers once the version is built here; until then the workers do', async () => {
    assert.equal(local.prepare(bundle, 'pick', { doc: 'a' }, 5000), undefined, 'not built yet');
    await ready();
    assert.deepEqual(local.prepare(bundle, 'pick', { doc: 'a', n: 1 }, 5000), {
      input: { doc: 'a', n: 1 },
      docs: ['local/a'],
    });
  });

  it('refuses an invalid input as a worker would', () => {
    assert.throws(
      () => local.prepare(bundle, 'pick', { doc: 7 }, 5000),
      (err: unknown) =>
        err instanceof StateweaveError &&
        err.code === 'INVALID_INPUT' &&
        /expected string/.test(err.message),
    );
    assert.throws(
      () => local.prepare(bundle, 'nope', {}, 5000),
      (err: unknown) => err instanceof StateweaveError && err.code === 'BAD_REQUEST',
    );
  });

  it('holds this thread at most its short limit for a loop, then leaves the version to the workers', async () => {
    const started = performance.now();
    assert.equal(local.prepare(bundle, 'pick', { doc: 'x', loop: true }, 5000), undefined);
    const heldMs = performance.now() - started;
    assert.ok(heldMs < 1000, `held the thread ${heldMs.toFixed(0)} ms (the call's limit is 5 s)`);
    // Off: even a good input goes to the workers, and the loop costs this thread nothing more.
    const offStarted = performance.now();
    assert.equal(local.prepare(bundle, 'pick', { doc: 'a' }, 5000), undefined);
    assert.equal(local.prepare(bundle, 'pick', { doc: 'x', loop: true }, 5000), undefined);
    const offMs = performance.now() - offStarted;
    assert.ok(offMs < 100, `an off version held the thread ${offMs.toFixed(0)} ms`);
    // After the first off period (1 s) the version is built here again.
    clock += 1001;
    await ready();
    assert.deepEqual(local.prepare(bundle, 'pick', { doc: 'b' }, 5000)?.docs, ['local/b']);
    // A second failure in a row keeps it off twice as long.
    assert.equal(local.prepare(bundle, 'pick', { doc: 'x', loop: true }, 5000), undefined);
    clock += 1001;
    assert.equal(local.prepare(bundle, 'pick', { doc: 'c' }, 5000), undefined, 'still off');
    clock += 1000;
    await ready();
    assert.deepEqual(local.prepare(bundle, 'pick', { doc: 'c' }, 5000)?.docs, ['local/c']);
  });
});

describe('a prepare that loops, on a node', () => {
  const PREPARE = fileURLToPath(new URL('../../test/fixtures/prepare', import.meta.url));
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: PREPARE });
  });
  after(() => node.close());

  it('fails alone with TIMEOUT under its own limit; calls beside it and after it succeed', async () => {
    // Twice: once while the version may still be prepared in the workers (its sandbox
    // here is built after deploy), once on the node's thread, which hands it on.
    for (const round of [1, 2]) {
      let gaps = 0;
      let last = performance.now();
      const ticker = setInterval(() => {
        const now = performance.now();
        gaps = Math.max(gaps, now - last);
        last = now;
      }, 5);
      const [looped, ...others] = await Promise.all([
        invoke(node.url, 'pick', { doc: 'a', loop: true }),
        ...Array.from({ length: 4 }, (_, i) => invoke(node.url, 'pick', { doc: `b${i}` })),
      ]);
      clearInterval(ticker);
      assert.equal(looped.status, 504, `round ${round}: ${JSON.stringify(looped.body)}`);
      assert.equal(errorCode(looped), 'TIMEOUT');
      for (const other of others) assert.equal(other.status, 200, JSON.stringify(other.body));
      // The loop's 400 ms ran in a worker's sandbox entry, not on this thread.
      assert.ok(gaps < 300, `round ${round}: the node's thread stalled ${gaps.toFixed(0)} ms`);
      await waitFor(
        async () => (await invoke(node.url, 'pick', { doc: 'c' })).status === 200,
        'a call after the loop',
      );
    }
  });
});
