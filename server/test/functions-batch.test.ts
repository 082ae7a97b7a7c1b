/**
 * Invocations waiting for one document run as a batch: one worker message and
 * one store write. Each call must still behave as if it ran alone: a call that
 * throws or loops inside a batch fails alone and leaves no trace, the others apply.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { waitFor } from './helpers/wait.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';
import { sample, scrape } from './helpers/metrics.js';

describe('batched invocations on one document', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: FIXTURE_FUNCTIONS });
  });
  after(async () => {
    await node.close();
  });

  const readN = async (counter: string): Promise<unknown> =>
    (
      (await (await fetch(`${node.url}/v1/docs/counters/${counter}`)).json()) as {
        c?: { n?: number };
      }
    ).c?.n;

  it('shares worker messages and store writes among concurrent calls', async () => {
    const before = sample(await scrape(node.url), 'stateweave_function_batch_size_count');
    const results = await Promise.all(
      Array.from({ length: 300 }, () => invoke(node.url, 'bump', { counter: 'shared' })),
    );
    assert.deepEqual(
      results.filter((r) => r.status !== 200),
      [],
    );
    assert.deepEqual(
      results.map((r) => (r.body as { n: number }).n).sort((a, b) => a - b),
      Array.from({ length: 300 }, (_, i) => i + 1),
      'each call saw every call before it',
    );
    const batches = sample(await scrape(node.url), 'stateweave_function_batch_size_count') - before;
    assert.ok(batches < 300, `300 calls ran in ${batches} batches`);
    assert.equal(await readN('shared'), 300);
  });

  it('fails a call that throws inside a batch alone: the calls around it apply, it leaves no trace', async () => {
    const client = await stockClient(node.wsUrl, 'counters/thrown-in-batch');
    const calls = Array.from({ length: 61 }, (_, i) =>
      invoke(node.url, 'bump', { counter: 'thrown-in-batch', fail: i === 30 }),
    );
    const results = await Promise.all(calls);
    assert.equal(results[30]!.status, 500);
    assert.equal(errorCode(results[30]!), 'FUNCTION_ERROR');
    const ok = results.filter((r) => r.status === 200);
    assert.equal(ok.length, 60);
    assert.deepEqual(
      ok.map((r) => (r.body as { n: number }).n).sort((a, b) => a - b),
      Array.from({ length: 60 }, (_, i) => i + 1),
      "no call saw the failed call's write",
    );
    await waitFor(() => client.doc.getMap('c').get('n') === 60, 'the client to see n = 60');
    assert.equal(client.doc.getText('t').toString(), '', 'the failed write never reached a client');
    assert.equal(await readN('thrown-in-batch'), 60);
    client.destroy();
  });

  it('times out a call that loops inside a batch alone; the rest of its batch applies', async () => {
    const results = await Promise.all(
      Array.from({ length: 21 }, (_, i) =>
        invoke(node.url, 'bump', { counter: 'spun-in-batch', spin: i === 10 }),
      ),
    );
    assert.equal(results[10]!.status, 504);
    assert.equal(errorCode(results[10]!), 'TIMEOUT');
    assert.equal(results.filter((r) => r.status === 200).length, 20);
    assert.equal(await readN('spun-in-batch'), 20);
  });

  it('sends batches of many documents in shared worker messages; a throwing and a looping call among them fail alone', async () => {
    const metrics0 = await scrape(node.url);
    const groups0 = sample(metrics0, 'stateweave_function_message_groups_sum');
    const messages0 = sample(metrics0, 'stateweave_function_message_groups_count');
    const docs = 40;
    const results = await Promise.all(
      Array.from({ length: docs }, (_, i) =>
        invoke(node.url, 'bump', { counter: `spread-${i}`, fail: i === 10, spin: i === 20 }),
      ),
    );
    assert.equal(results[10]!.status, 500);
    assert.equal(errorCode(results[10]!), 'FUNCTION_ERROR');
    assert.equal(results[20]!.status, 504);
    assert.equal(errorCode(results[20]!), 'TIMEOUT');
    for (const [i, r] of results.entries()) {
      if (i === 10 || i === 20) continue;
      assert.equal(r.status, 200, `call ${i}`);
      assert.deepEqual(r.body, { n: 1 }, `call ${i}`);
    }
    const metrics1 = await scrape(node.url);
    const groups = sample(metrics1, 'stateweave_function_message_groups_sum') - groups0;
    const messages = sample(metrics1, 'stateweave_function_message_groups_count') - messages0;
    assert.ok(groups >= docs, `${groups} batches for ${docs} documents`);
    assert.ok(messages < groups, `${groups} batches went in ${messages} worker messages`);
    assert.equal(await readN('spread-10'), undefined, 'the throwing call left no trace');
    assert.equal(await readN('spread-20'), undefined, 'the looping call left no trace');
    assert.equal(await readN('spread-39'), 1);
  });
});
