/**
 * Prepares in the node's own thread (local-prepare.ts): a version's sandbox here
 * validates inputs and names documents without a worker message; what this thread
 * must not run (a prepare past its short limit) goes to the workers, which keep
 * the function's own time limit and errors.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalPrepares, type LocalPrepares } from '../src/functions/local-prepare.js';
import { guestScript } from '../src/functions/guest-script.js';
import { versionOf } from '../src/functions/registry.js';
import { StateweaveError } from '../src/errors.js';
import { silentLogger } from './helpers/node.js';
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
    offMs: 1000,
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
    // After the off period the version is built here again.
    clock += 1001;
    await ready();
    assert.deepEqual(local.prepare(bundle, 'pick', { doc: 'b' }, 5000)?.docs, ['local/b']);
  });
});
