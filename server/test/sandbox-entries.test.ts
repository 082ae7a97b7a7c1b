/**
 * How an invocation enters its sandbox: one synchronous entry answers when every
 * handler returns a plain value (or awaits only promises the sandbox settles
 * itself); a handler that awaits ctx.read leaves the entry pending, and the host
 * waits for it under the same deadline. Either way a batch answers in order, and
 * a handler that never ends fails with TIMEOUT.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import type { Sandbox, SandboxGroup } from '../src/functions/sandbox.js';
import type { WorkerCall } from '../src/functions/worker-protocol.js';
import { noRead, testSandbox } from './helpers/sandbox.js';

/** A CommonJS bundle as deploy compiles it: plain, awaiting, thenable and reading handlers. */
const BUNDLE = `
const { defineFunction } = require('@stateweave/server');
const bump = (doc) => {
  const map = doc.getMap('c');
  map.set('n', (map.get('n') ?? 0) + 1);
  return map.get('n');
};
exports.plain = defineFunction({ name: 'plain', doc: () => 'e/a', handler: ({ doc }) => bump(doc) });
exports.awaits = defineFunction({
  name: 'awaits',
  doc: () => 'e/a',
  async handler({ doc }) {
    await null;
    await Promise.resolve();
    return bump(doc);
  },
});
exports.thenable = defineFunction({
  name: 'thenable',
  doc: () => 'e/a',
  handler: ({ doc }) => ({ then: (resolve) => resolve(bump(doc)) }),
});
exports.reads = defineFunction({
  name: 'reads',
  doc: () => 'e/a',
  async handler({ doc, read }) {
    const other = await read('e/other');
    return bump(doc) * 100 + other.getMap('c').get('n');
  },
});
exports.readsThenSpins = defineFunction({
  name: 'readsThenSpins',
  doc: () => 'e/a',
  async handler({ read }) {
    await read('e/other');
    for (;;) await null;
  },
});
`;

const call = (name: string, i: number): WorkerCall => ({
  version: 'v1',
  name,
  input: null,
  auth: { subject: 'test', rights: ['invoke', 'read'] },
  id: `call-${i}`,
  now: 0,
  kind: 'mutation',
});

const stateOf = (n: number): Uint8Array => {
  const doc = new Y.Doc();
  doc.getMap('c').set('n', n);
  return Y.encodeStateAsUpdate(doc);
};
const empty = Y.encodeStateAsUpdate(new Y.Doc());
const group = (doc: string, names: readonly string[]): SandboxGroup => ({
  docs: [{ name: doc, reset: true, diff: empty }],
  calls: names.map((name, i) => call(name, i)),
});
/** ctx.read answered on a later turn, as the node answers it. */
const readOther = (): Promise<Uint8Array> =>
  new Promise((resolve) => setImmediate(() => resolve(stateOf(7))));

describe('entries into a sandbox', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await testSandbox(BUNDLE);
  });
  after(() => sandbox.dispose());

  it('answers plain, awaiting and thenable handlers in order, in one entry', async () => {
    const answers = await sandbox.invoke(
      [group('e/1', ['plain', 'awaits', 'thenable', 'plain']), group('e/2', ['awaits'])],
      [],
      1000,
      noRead,
    );
    assert.deepEqual(
      answers.map((a) => a.results),
      [['1', '2', '3', '4'], ['1']],
    );
    assert.ok(answers.every((a) => a.failure === undefined && a.stateVectors !== null));
  });

  it('waits for a handler that awaits ctx.read, and runs the calls and groups after it', async () => {
    const answers = await sandbox.invoke(
      [group('e/3', ['plain', 'reads', 'plain']), group('e/4', ['plain'])],
      [],
      1000,
      readOther,
    );
    assert.deepEqual(
      answers.map((a) => a.results),
      [['1', '207', '3'], ['1']],
    );
    // The next entry is synchronous again, on the copy the awaited one left.
    const next = await sandbox.invoke(
      [{ docs: [{ name: 'e/3', reset: false, diff: empty }], calls: [call('plain', 9)] }],
      [],
      1000,
      readOther,
    );
    assert.deepEqual(next[0]!.results, ['4']);
  });

  it('ends a handler that spins in promise callbacks after its read with TIMEOUT', async () => {
    const started = Date.now();
    await assert.rejects(
      sandbox.invoke([group('e/5', ['readsThenSpins'])], [], 300, readOther),
      (err: Error & { code?: string }) => err.code === 'TIMEOUT',
    );
    assert.ok(Date.now() - started < 2000, `took ${Date.now() - started} ms`);
    assert.equal(sandbox.disposed, true);
  });
});
