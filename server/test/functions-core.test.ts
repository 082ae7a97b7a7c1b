/**
 * Stateful functions on one in-process node: each guarantee of the README's
 * "Functions" section with a test that fails without it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { startNode, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { sleep, waitFor, withTimeout } from './helpers/wait.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';
import { delegateStore } from './helpers/store-wrapper.js';

describe('functions on one node', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({
      functionsDir: FIXTURE_FUNCTIONS,
      functionMemoryMb: 64,
      maxQueuedInvocationsPerDoc: 1000,
    });
  });
  after(async () => {
    await node.close();
  });

  it('lists the deployed functions with kind, consistency and a content-hash version', async () => {
    const res = await fetch(`${node.url}/v1/functions`);
    assert.equal(res.status, 200);
    const { functions } = (await res.json()) as {
      functions: Array<{ name: string; kind: string; consistency: string; version: string }>;
    };
    const increment = functions.find((f) => f.name === 'increment');
    assert.deepEqual(
      { kind: increment?.kind, consistency: increment?.consistency },
      { kind: 'mutation', consistency: 'owner' },
    );
    assert.match(increment!.version, /^[0-9a-f]{16}$/);
    assert.equal(functions.find((f) => f.name === 'peekEnv')?.kind, 'query');
  });

  it('runs 200 concurrent increments of one document one at a time: exactly 200', async () => {
    const results = await Promise.all(
      Array.from({ length: 200 }, () => invoke(node.url, 'increment', { counter: 'c200' })),
    );
    assert.deepEqual(
      results.map((r) => r.status).filter((s) => s !== 200),
      [],
    );
    const ns = results.map((r) => (r.body as { n: number }).n).sort((a, b) => a - b);
    assert.deepEqual(
      ns,
      Array.from({ length: 200 }, (_, i) => i + 1),
      'every invocation saw the one before it',
    );
    const doc = (await (await fetch(`${node.url}/v1/docs/counters/c200`)).json()) as {
      c: { n: number };
    };
    assert.equal(doc.c.n, 200);
  });

  it('leaves no trace on any client when a handler writes and then throws', async () => {
    await invoke(node.url, 'increment', { counter: 'thrown' });
    const client = await stockClient(node.wsUrl, 'counters/thrown');
    await waitFor(() => client.doc.getMap('c').get('n') === 1, 'client to see n = 1');
    let updates = 0;
    client.doc.on('update', () => updates++);
    const failed = await invoke(node.url, 'writeThenThrow', { counter: 'thrown' });
    assert.equal(failed.status, 500);
    assert.equal(errorCode(failed), 'FUNCTION_ERROR');
    assert.match(
      (failed.body as { error: { message: string } }).error.message,
      /refusing after writing/,
    );
    // The next invocation runs after the failed one (per-document queue); once the
    // client sees its effect, anything the failed one broadcast would have arrived.
    const next = await invoke(node.url, 'increment', { counter: 'thrown' });
    assert.deepEqual(
      next.body,
      { n: 2 },
      'the failed attempt left nothing in the worker copy either',
    );
    await waitFor(() => client.doc.getMap('c').get('n') === 2, 'client to see n = 2');
    assert.equal(client.doc.getText('t').toString(), '');
    assert.equal(updates, 1, 'the client received only the successful change');
    client.destroy();
  });

  it('times out an infinite loop (504) while a stock client keeps editing the same node with normal latency', async () => {
    const a = await stockClient(node.wsUrl, 'counters/spin');
    const b = await stockClient(node.wsUrl, 'counters/spin');
    const latencies: number[] = [];
    let editing = true;
    const edits = (async () => {
      for (let i = 0; editing && i < 200; i++) {
        const started = performance.now();
        a.doc.getArray<number>('edits').push([i]);
        await waitFor(
          () => b.doc.getArray('edits').length === i + 1,
          `edit ${i} to arrive`,
          2000,
          1,
        );
        latencies.push(performance.now() - started);
        await sleep(5);
      }
    })();
    const started = Date.now();
    const spun = await invoke(node.url, 'spin', { counter: 'spin' });
    editing = false;
    await edits;
    assert.equal(spun.status, 504);
    assert.equal(errorCode(spun), 'TIMEOUT');
    assert.ok(Date.now() - started < 3000, 'answered near its 300 ms limit');
    assert.ok(latencies.length >= 10, `kept editing during the loop (${latencies.length} edits)`);
    const worst = Math.max(...latencies);
    assert.ok(worst < 150, `edit latency stayed normal (worst ${worst.toFixed(1)} ms)`);
    assert.equal(a.doc.getMap('c').get('n'), undefined, 'the timed-out write is nowhere');
    // The pool replaced the worker: functions still run.
    assert.deepEqual((await invoke(node.url, 'increment', { counter: 'spin' })).body, { n: 1 });
    a.destroy();
    b.destroy();
  });

  it('fails a memory bomb alone with FUNCTION_CRASHED; the node and other functions carry on', async () => {
    const client = await stockClient(node.wsUrl, 'counters/bomb');
    const bombed = await invoke(node.url, 'bomb', { counter: 'bomb' });
    assert.equal(bombed.status, 500);
    assert.equal(errorCode(bombed), 'FUNCTION_CRASHED');
    assert.deepEqual((await invoke(node.url, 'increment', { counter: 'bomb' })).body, { n: 1 });
    await waitFor(() => client.doc.getMap('c').get('n') === 1, 'client to see the next invocation');
    client.destroy();
  });

  it('answers an unknown function with 404 and bad input with 400', async () => {
    const missing = await invoke(node.url, 'noSuchFunction', {});
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing), 'NOT_FOUND');
    const badJson = await fetch(`${node.url}/v1/functions/increment/invoke`, {
      method: 'POST',
      body: '{nope',
    });
    assert.equal(badJson.status, 400);
    // doc(input) cannot name a document from this input: INVALID_INPUT.
    const bad = await invoke(node.url, 'increment', null);
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), 'INVALID_INPUT');
  });

  it('refuses with 503 OVERLOADED past the per-document queue bound', async () => {
    const small = await startNode({
      functionsDir: FIXTURE_FUNCTIONS,
      maxQueuedInvocationsPerDoc: 3,
    });
    try {
      const results = await Promise.all(
        Array.from({ length: 12 }, () => invoke(small.url, 'slow', { counter: 'q' })),
      );
      const statuses = results.map((r) => r.status);
      assert.ok(statuses.includes(200), `some ran: ${statuses.join(',')}`);
      assert.ok(statuses.includes(503), `some were refused: ${statuses.join(',')}`);
      assert.ok(
        results.filter((r) => r.status === 503).every((r) => errorCode(r) === 'OVERLOADED'),
      );
    } finally {
      await small.close();
    }
  });

  it('returns the first result for a repeated idempotency key and applies once', async () => {
    const key = { 'idempotency-key': 'once-1' };
    const [first, concurrent] = await Promise.all([
      invoke(node.url, 'increment', { counter: 'idem' }, key),
      invoke(node.url, 'increment', { counter: 'idem' }, key),
    ]);
    const later = await invoke(node.url, 'increment', { counter: 'idem' }, key);
    assert.deepEqual([first.body, concurrent.body, later.body], [{ n: 1 }, { n: 1 }, { n: 1 }]);
    assert.equal(later.headers.get('idempotent-replayed'), 'true');
    assert.deepEqual((await invoke(node.url, 'increment', { counter: 'idem' })).body, { n: 2 });
  });

  it('refuses a query that writes and keeps the document as it was', async () => {
    await invoke(node.url, 'increment', { counter: 'q-write' });
    const wrote = await invoke(node.url, 'writingQuery', { counter: 'q-write' });
    assert.equal(wrote.status, 500);
    assert.equal(errorCode(wrote), 'FUNCTION_ERROR');
    assert.deepEqual((await invoke(node.url, 'read', { counter: 'q-write' })).body, { n: 1 });
  });

  it('seeds ctx.random() by the invocation id and keeps ctx.now() fixed within one invocation', async () => {
    const other = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
    try {
      type Dice = { rolls: number[]; sameNow: boolean; id: string };
      const roll = async (url: string, key: string) =>
        (await invoke(url, 'dice', {}, { 'idempotency-key': key })).body as Dice;
      // Two nodes that never shared a record: the same key gives the same id, so the same rolls.
      const here = await roll(node.url, 'dice-7');
      const there = await roll(other.url, 'dice-7');
      assert.equal(here.id, there.id);
      assert.deepEqual(here.rolls, there.rolls, 'replayable randomness');
      assert.notDeepEqual((await roll(node.url, 'dice-8')).rolls, here.rolls);
      assert.equal(here.sameNow, true);
      assert.ok(here.rolls.every((r) => r >= 0 && r < 1) && new Set(here.rolls).size === 3);
    } finally {
      await other.close();
    }
  });

  it('gives user code no environment variables', async () => {
    assert.deepEqual((await invoke(node.url, 'peekEnv', {})).body, { keys: 0 });
  });

  it('makes a new deployment current without a restart', async () => {
    const code = `"use strict";
      const { defineFunction } = require('@stateweave/server');
      module.exports = { default: defineFunction({ name: 'increment', doc: (i) => 'counters/' + i.counter,
        handler: ({ doc }) => { const m = doc.getMap('c'); m.set('n', (m.get('n') ?? 0) + 10); return { n: m.get('n'), v: 2 }; } }) };`;
    const before = (await (await fetch(`${node.url}/v1/functions`)).json()) as {
      functions: Array<{ name: string; version: string }>;
    };
    const deployed = await fetch(`${node.url}/v1/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ bundles: [{ file: 'v2.js', code }] }),
    });
    assert.equal(deployed.status, 200);
    const afterList = (await (await fetch(`${node.url}/v1/functions`)).json()) as {
      functions: Array<{ name: string; version: string }>;
    };
    assert.notEqual(
      afterList.functions.find((f) => f.name === 'increment')?.version,
      before.functions.find((f) => f.name === 'increment')?.version,
    );
    const called = await invoke(node.url, 'increment', { counter: 'v2' });
    assert.deepEqual(called.body, { n: 10, v: 2 });
  });
});

describe('the output gate', () => {
  it('sends neither the result nor the broadcast before the change is stored', async () => {
    const { createMemoryStore } = await import('../src/storage/level-store.js');
    const inner = await createMemoryStore();
    let hold = false;
    const held: Array<() => void> = [];
    const release = (): void => {
      hold = false;
      for (const resume of held.splice(0)) resume();
    };
    const store = delegateStore(inner, {
      async append(doc, update, records, writers) {
        if (hold) await new Promise<void>((resolve) => held.push(resolve));
        return inner.append(doc, update, records, writers);
      },
    });
    const node = await startNode({ store, functionsDir: FIXTURE_FUNCTIONS });
    let client: Awaited<ReturnType<typeof stockClient>> | undefined;
    try {
      const joined = await stockClient(node.wsUrl, 'counters/gate');
      client = joined;
      hold = true;
      let answered = false;
      const call = invoke(node.url, 'increment', { counter: 'gate' }).then((r) => {
        answered = true;
        return r;
      });
      await waitFor(() => held.length > 0, 'the function write to reach the store');
      await sleep(100);
      assert.equal(answered, false, 'no result before the write is stored');
      assert.equal(
        joined.doc.getMap('c').get('n'),
        undefined,
        'no broadcast before the write is stored',
      );
      release();
      assert.deepEqual((await withTimeout(call, 10_000, 'the result once stored')).body, { n: 1 });
      await waitFor(() => joined.doc.getMap('c').get('n') === 1, 'the broadcast after the write');
    } finally {
      // A failed assertion above must not leave the write held (close() would wait
      // for it) nor the client reconnecting (it would keep the run alive).
      release();
      client?.destroy();
      await node.close();
    }
  });

  it('keeps a refused write out of the document and off every client', async () => {
    const { createMemoryStore } = await import('../src/storage/level-store.js');
    const { StoreError } = await import('../src/storage/store.js');
    const inner = await createMemoryStore();
    let refuse = false;
    const store = delegateStore(inner, {
      append: (doc, update, records) =>
        refuse && records?.length
          ? Promise.reject(new StoreError('disk full'))
          : inner.append(doc, update, records),
    });
    const node = await startNode({ store, functionsDir: FIXTURE_FUNCTIONS });
    try {
      const client = await stockClient(node.wsUrl, 'counters/refused');
      refuse = true;
      const failed = await invoke(
        node.url,
        'increment',
        { counter: 'refused' },
        { 'idempotency-key': 'r1' },
      );
      assert.ok(failed.status >= 500, `status ${failed.status}`);
      refuse = false;
      const ok = await invoke(
        node.url,
        'increment',
        { counter: 'refused' },
        { 'idempotency-key': 'r1' },
      );
      assert.deepEqual(ok.body, { n: 1 }, 'the refused attempt applied nothing, so the retry runs');
      await waitFor(() => client.doc.getMap('c').get('n') === 1, 'the client to see n = 1');
      assert.equal(Y.encodeStateVector(client.doc).byteLength > 0, true);
      client.destroy();
    } finally {
      await node.close();
    }
  });
});
