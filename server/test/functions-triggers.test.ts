/** Change triggers (`on`) and schedules (`every`). */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import * as Y from 'yjs';
import { startNode, tempDir } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';
import { FIXTURE_FUNCTIONS } from './helpers/functions.js';

const TRIGGERS = fileURLToPath(new URL('../../test/fixtures/triggers', import.meta.url));

const postEvents = async (
  url: string,
  doc: string,
  base: Y.Doc,
  events: string[],
): Promise<void> => {
  const before = Y.encodeStateVector(base);
  base.getArray<string>('events').push(events);
  const res = await fetch(`${url}/v1/docs/${doc}/updates`, {
    method: 'POST',
    body: Y.encodeStateAsUpdate(base, before),
  });
  assert.equal(res.status, 200);
};

describe('change triggers', () => {
  it('runs after changes of matching documents and is never re-triggered by its own writes', async () => {
    const node = await startNode({ functionsDir: TRIGGERS });
    try {
      const client = await stockClient(node.wsUrl, 'feed/a');
      for (let i = 0; i < 5; i++) client.doc.getArray<string>('events').push([`e${i}`]);
      await waitFor(
        () => client.doc.getMap('derived').get('seen') === 5,
        'the trigger to see all 5 events',
      );
      assert.equal(client.doc.getMap('derived').get('doc'), 'feed/a');
      await node.server.functions.triggersIdle();
      const runs = client.doc.getArray('runs').length;
      await sleep(300);
      assert.equal(
        client.doc.getArray('runs').length,
        runs,
        'its own writes did not trigger it again',
      );
      assert.ok(runs >= 1 && runs <= 5, `coalesced runs: ${runs}`);
      // A document that does not match the pattern is left alone.
      const other = await stockClient(node.wsUrl, 'elsewhere/a');
      other.doc.getArray<string>('events').push(['x']);
      await sleep(200);
      assert.equal(other.doc.getMap('derived').get('seen'), undefined);
      client.destroy();
      other.destroy();
    } finally {
      await node.close();
    }
  });

  it('resumes from its stored cursor after a restart, without skipping or repeating', async () => {
    const dir = await tempDir();
    try {
      const base = new Y.Doc();
      // Changes made while the trigger is not deployed are caught up at deployment.
      // A node stores its deployment and serves it after a restart, so the nodes
      // "without the trigger" start with another directory (a deployment without it).
      const plain = await startNode({ dataDir: dir.path, functionsDir: FIXTURE_FUNCTIONS });
      await postEvents(plain.url, 'feed/r', base, ['a', 'b', 'c']);
      await plain.close();
      const withTrigger = await startNode({ dataDir: dir.path, functionsDir: TRIGGERS });
      await waitFor(async () => {
        const doc = (await (await fetch(`${withTrigger.url}/v1/docs/feed/r`)).json()) as {
          derived?: { seen: number };
        };
        return doc.derived?.seen === 3;
      }, 'the trigger to catch up on 3 stored events');
      await withTrigger.server.functions.triggersIdle();
      const runsBefore = (
        (await (await fetch(`${withTrigger.url}/v1/docs/feed/r`)).json()) as { runs: number[] }
      ).runs.length;
      await withTrigger.close();
      // More changes while it is down; the restart sees exactly those, from its cursor.
      const plainAgain = await startNode({ dataDir: dir.path, functionsDir: FIXTURE_FUNCTIONS });
      assert.equal(
        plainAgain.server.functions.list().some((f) => f.on !== undefined),
        false,
        'no trigger runs meanwhile',
      );
      await postEvents(plainAgain.url, 'feed/r', base, ['d', 'e']);
      await plainAgain.close();
      const again = await startNode({ dataDir: dir.path, functionsDir: TRIGGERS });
      try {
        await waitFor(async () => {
          const doc = (await (await fetch(`${again.url}/v1/docs/feed/r`)).json()) as {
            derived?: { seen: number };
          };
          return doc.derived?.seen === 5;
        }, 'the trigger to resume and see 5 events');
        await again.server.functions.triggersIdle();
        const doc = (await (await fetch(`${again.url}/v1/docs/feed/r`)).json()) as {
          runs: number[];
        };
        assert.equal(doc.runs.length, runsBefore + 1, 'one more run, not a recount from the start');
        assert.equal(
          doc.runs.at(-1),
          1,
          'that run was given only the new changes (one struct: the two pushed events)',
        );
      } finally {
        await again.close();
      }
    } finally {
      await dir.remove();
    }
  });
});

describe('schedules', () => {
  it('runs a function every interval, once per time slot', async () => {
    const node = await startNode({ functionsDir: TRIGGERS });
    try {
      const client = await stockClient(node.wsUrl, 'ticks');
      await waitFor(() => client.doc.getArray('ticks').length >= 3, 'three ticks', 3000);
      const ticks = client.doc.getArray<number>('ticks').toArray();
      assert.equal(new Set(ticks).size, ticks.length, 'no slot ran twice');
      assert.ok(
        ticks.every((at) => at % 100 === 0),
        'each tick carries its slot start',
      );
      client.destroy();
    } finally {
      await node.close();
    }
  });
});
