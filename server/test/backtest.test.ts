/**
 * `stateweave backtest` (docs/history.md, "Backtest"): the history of a document
 * replayed through the deployed version of a function and a local one; the
 * versions where they differ, and only those, are reported; without --local it
 * is a query at each past version, with ctx.read of another document at the
 * same moment. The node and the CLI are child processes; real LevelDB.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { runCli } from './helpers/cli.js';
import { httpEditor } from './helpers/history.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const DEPLOYED = fileURLToPath(new URL('../../test/fixtures/backtest', import.meta.url));
const LOCAL = fileURLToPath(
  new URL('../../test/fixtures/backtest-local/tally.js', import.meta.url),
);

interface Row {
  version: string;
  time: string;
  deployed: { result?: { items: number; price: number }; doc?: unknown; error?: string };
  local?: unknown;
  same?: boolean;
}

const rows = (stdout: string): Row[] =>
  stdout
    .trim()
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Row);

describe('stateweave backtest', { timeout: 180_000 }, () => {
  const cleanup: Array<() => Promise<unknown>> = [];
  after(async () => {
    for (const step of cleanup.reverse()) await step();
  });

  it('replays history through the deployed and a local version and reports where they differ', async () => {
    const dir = await tempDir();
    cleanup.push(() => dir.remove());
    const node: ChildNode = await spawnNode(join(dir.path, 'data'), ['--functions', DEPLOYED]);
    cleanup.push(() => stopChild(node));
    const prices = httpEditor(node.url, 'bt/prices');
    await prices.edit((d) => d.getMap('p').set('unit', 10));
    const items = httpEditor(node.url, 'bt/items');
    for (let i = 0; i < 6; i++) {
      await items.edit((d) => d.getArray('xs').push([i]));
      if (i === 2) await prices.edit((d) => d.getMap('p').set('unit', 20));
      // Versions are told apart by time as well: keep the edits a few ms apart.
      await new Promise((r) => setTimeout(r, 20));
    }

    // Without --local: the deployed query at each past version.
    const past = await runCli([
      'backtest',
      'tally',
      '--doc',
      'bt/items',
      '--url',
      node.url,
      '--json',
    ]);
    assert.equal(past.code, 0, past.stderr);
    const history = rows(past.stdout);
    assert.ok(history.length >= 2, `several versions (${history.length})`);
    const counts = history.map((r) => r.deployed.result!.items);
    assert.deepEqual(
      counts,
      [...counts].sort((a, b) => a - b),
      'oldest first',
    );
    assert.equal(counts.at(-1), 6, 'the newest version has every item');
    // ctx.read saw the other document as it was then: the price changed after the third item.
    for (const r of history) {
      const { items: n, price } = r.deployed.result!;
      assert.equal(price, n <= 3 ? 10 : 20, `price at ${n} items`);
    }
    // Each answer is the document as ?at= gives it.
    for (const r of history) {
      const res = await fetch(`${node.url}/v1/docs/bt/items?at=${r.version}`);
      const body = (await res.json()) as { xs: unknown[] };
      assert.equal(r.deployed.result!.items, body.xs.length, `version ${r.version}`);
    }

    // With --local: exit 1 and exactly the versions with four items or more.
    const diff = await runCli([
      'backtest',
      'tally',
      '--doc',
      'bt/items',
      '--url',
      node.url,
      '--local',
      LOCAL,
      '--json',
    ]);
    assert.equal(diff.code, 1, diff.stderr);
    const compared = rows(diff.stdout);
    assert.equal(compared.length, history.length);
    for (const r of compared)
      assert.equal(
        r.same,
        r.deployed.result!.items < 4,
        `version ${r.version} (${r.deployed.result!.items} items)`,
      );
    assert.match(diff.stderr, new RegExp(`${compared.filter((r) => !r.same).length} differ`));

    const text = await runCli([
      'backtest',
      'tally',
      '--doc',
      'bt/items',
      '--url',
      node.url,
      '--local',
      LOCAL,
    ]);
    assert.equal(text.code, 1);
    assert.match(
      text.stdout,
      /differ\n {2}deployed [0-9a-f]+: \{"result":\{"items":4,"price":20\}\}\n {2}local: {4}\{"result":\{"items":5,"price":20\}\}/,
    );

    // A mutation: its output is its result and the document it would leave; the same code agrees.
    const same = await runCli([
      'backtest',
      'stamp',
      '--doc',
      'bt/items',
      '--url',
      node.url,
      '--local',
      LOCAL,
      '--json',
    ]);
    assert.equal(same.code, 0, same.stderr);
    for (const r of rows(same.stdout)) {
      assert.equal(r.same, true);
      const doc = r.deployed.doc as { meta: { stamped: number }; xs: unknown[] };
      assert.equal(doc.meta.stamped, doc.xs.length);
    }
    // ... and nothing was written.
    const now = (await (await fetch(`${node.url}/v1/docs/bt/items`)).json()) as Record<
      string,
      unknown
    >;
    assert.equal(now.meta, undefined, 'a backtest writes nothing');
  });

  it('runs a query at a past version over HTTP, reading other documents at the same moment', async () => {
    const dir = await tempDir();
    cleanup.push(() => dir.remove());
    const node: ChildNode = await spawnNode(join(dir.path, 'data'), ['--functions', DEPLOYED]);
    cleanup.push(() => stopChild(node));
    const prices = httpEditor(node.url, 'bt/prices');
    await prices.edit((d) => d.getMap('p').set('unit', 10));
    const items = httpEditor(node.url, 'bt/items');
    for (let i = 0; i < 4; i++) {
      await items.edit((d) => d.getArray('xs').push([i]));
      if (i === 1) await prices.edit((d) => d.getMap('p').set('unit', 20));
    }
    const feed = (await (
      await fetch(`${node.url}/v1/docs/bt/items/changes?wait=0`, {
        headers: { accept: 'application/json' },
      })
    ).json()) as { changes: Array<{ cursor: string; time: string }> };
    assert.equal(feed.changes.length, 4);
    const invoke = (query: string, name = 'tally') =>
      fetch(`${node.url}/v1/functions/${name}/invoke${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{}',
      });
    for (const [i, change] of feed.changes.entries()) {
      const res = await invoke(`?at=${change.cursor}`);
      assert.equal(res.status, 200, await res.clone().text());
      assert.equal(res.headers.get('x-stateweave-version'), change.cursor);
      assert.deepEqual(
        await res.json(),
        { items: i + 1, price: i <= 1 ? 10 : 20 },
        `at ${change.cursor}`,
      );
    }
    const byTime = await invoke(`?at=${encodeURIComponent(feed.changes[0]!.time)}`);
    assert.deepEqual(await byTime.json(), { items: 1, price: 10 });
    const live = await invoke('');
    assert.deepEqual(await live.json(), { items: 4, price: 20 }, 'without at: the live document');
    const mutation = await invoke(`?at=${feed.changes[0]!.cursor}`, 'stamp');
    assert.equal(mutation.status, 400);
    const before = await invoke('?at=2000-01-01T00:00:00Z');
    assert.equal(before.status, 404, 'nothing to run on before the document existed');
  });
});
