/**
 * One entry into a sandbox runs the batches (groups) of many documents. Past half
 * of the entry's time limit the guest starts no further group, so groups that are
 * slow, not stuck, are answered over several entries instead of being cut off by
 * one deadline (which would dispose the sandbox and its warm copies).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import type { Sandbox, SandboxGroup } from '../src/functions/sandbox.js';
import type { WorkerCall } from '../src/functions/worker-protocol.js';
import { noRead, testSandbox } from './helpers/sandbox.js';

/** A CommonJS bundle as deploy compiles it: a mutation that busy-waits `input.ms` first. */
const BUNDLE = `
const { defineFunction } = require('@stateweave/server');
exports.slowBump = defineFunction({
  name: 'slowBump',
  doc: (input) => 'groups/' + input.doc,
  handler({ doc }, input) {
    const until = Date.now() + input.ms;
    while (Date.now() < until) {}
    const map = doc.getMap('c');
    map.set('n', (map.get('n') ?? 0) + 1);
    return map.get('n');
  },
});
`;

const call = (doc: number, ms: number): WorkerCall => ({
  version: 'v1',
  name: 'slowBump',
  input: { doc, ms },
  auth: { subject: 'test', rights: ['invoke'] },
  id: `call-${doc}`,
  now: 0,
  kind: 'mutation',
});

const empty = Y.encodeStateAsUpdate(new Y.Doc());
const group = (doc: number, ms: number): SandboxGroup => ({
  docs: [{ name: `groups/${doc}`, reset: true, diff: empty }],
  calls: [call(doc, ms)],
});

describe('groups of many documents in one sandbox entry', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await testSandbox(BUNDLE);
  });
  after(() => sandbox.dispose());

  it('answers every group of a quick entry', async () => {
    const groups = Array.from({ length: 20 }, (_, i) => group(i, 0));
    const answers = await sandbox.invoke(groups, [], 1000, noRead);
    assert.equal(answers.length, 20);
    for (const answer of answers) {
      assert.equal(answer.failure, undefined);
      assert.deepEqual(answer.results, ['1']);
      assert.ok(answer.updates[0] instanceof Uint8Array);
    }
    assert.ok(sandbox.has(groups.map((g) => g.docs[0]!.name)));
  });

  it('stops starting groups past half its limit; the rest run in the next entry on their copies', async () => {
    // 25 groups of 60 ms under 1 s: together past the limit, each well within it.
    const groups = Array.from({ length: 25 }, (_, i) => group(100 + i, 60));
    const first = await sandbox.invoke(groups, [], 1000, noRead);
    assert.ok(first.length >= 1 && first.length < groups.length, `${first.length} answered`);
    assert.equal(sandbox.disposed, false, 'no deadline was hit');
    for (const answer of first) assert.deepEqual(answer.results, ['1']);
    // A group not started keeps nothing it lacked and loses nothing it had.
    const warm = groups[0]!.docs[0]!.name;
    assert.ok(sandbox.has([warm]));
    let rest = groups.slice(first.length);
    let entries = 1;
    while (rest.length > 0 && entries < groups.length) {
      const answers = await sandbox.invoke(rest, [], 1000, noRead);
      for (const answer of answers) assert.deepEqual(answer.results, ['1']);
      rest = rest.slice(answers.length);
      entries++;
    }
    assert.equal(rest.length, 0);
    assert.equal(sandbox.disposed, false);
    // The first group's copy stayed warm: a further call on it sees its write.
    const again = await sandbox.invoke(
      [{ docs: [{ name: warm, reset: false, diff: empty }], calls: [call(100, 0)] }],
      [],
      1000,
      noRead,
    );
    assert.deepEqual(again[0]!.results, ['2']);
  });
});
