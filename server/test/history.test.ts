/**
 * A document's history (docs/history.md): versions that survive compactions and
 * restarts, `?at=` by version id and by time, restore seen live by a stock
 * y-websocket client, retention that drops old history and keeps named
 * versions. Real LevelDB, nodes as child processes of the CLI.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import * as Y from 'yjs';
import { mintToken } from '../src/auth/tokens.js';
import { stockClient } from './helpers/clients.js';
import { runCli } from './helpers/cli.js';
import { createClient } from '@stateweave/client';
import { WebSocket } from 'ws';
import { getJson, httpEditor, postJson, readFeed } from './helpers/history.js';
import { spawnNode, startNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const SECRET = 'history-test-secret-of-32-bytes-or-more';

const withSecret = async <T>(run: () => Promise<T>): Promise<T> => {
  process.env.STATEWEAVE_AUTH_SECRET = SECRET;
  try {
    return await run();
  } finally {
    delete process.env.STATEWEAVE_AUTH_SECRET;
  }
};

interface Version {
  id: string;
  time: string;
  writers: string[];
  size: number;
  changes: number;
  name?: string;
}

describe('document history', { timeout: 240_000 }, () => {
  const dirs: Array<{ path: string; remove: () => Promise<void> }> = [];
  const nodes: ChildNode[] = [];
  const freshDir = async (): Promise<string> => {
    const dir = await tempDir();
    dirs.push(dir);
    return dir.path;
  };
  const start = async (dir: string, args: string[], secured = false): Promise<ChildNode> => {
    const node = secured
      ? await withSecret(() => spawnNode(dir, args))
      : await spawnNode(dir, args);
    nodes.push(node);
    return node;
  };
  let alice: string;

  before(async () => {
    alice = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write'],
      subject: 'alice',
      ttl: '10m',
    });
  });
  after(async () => {
    for (const node of nodes) await stopChild(node);
    for (const dir of dirs) await dir.remove();
  });

  it('reads every version by id and by time, across compactions and restarts', async () => {
    const dir = await freshDir();
    let node = await start(dir, ['--compact-after-updates', '3'], true);
    const editor = httpEditor(node.url, 'notes', alice);
    const expected: Array<Record<string, number>> = [];
    let midTime = '';
    for (let i = 0; i < 12; i++) {
      await editor.edit((doc) => doc.getMap('m').set(`k${i}`, i));
      expected.push(editor.doc.getMap('m').toJSON() as Record<string, number>);
      if (i === 5) {
        await sleep(30);
        midTime = new Date().toISOString();
        await sleep(30);
      }
    }
    const events = await readFeed(node.url, '/v1/docs/notes/changes', '0', alice);
    assert.equal(events.length, 12, 'one stored change per edit');
    for (const e of events) assert.deepEqual(e.writers, ['user:alice']);

    const check = async (url: string): Promise<void> => {
      for (let i = 0; i < 12; i++) {
        const { status, body, headers } = await getJson(
          url,
          `/v1/docs/notes?at=${events[i]!.cursor}`,
          alice,
        );
        assert.equal(status, 200, JSON.stringify(body));
        assert.deepEqual(body, { m: expected[i] }, `version ${i}`);
        assert.equal(headers.get('x-stateweave-version'), events[i]!.cursor);
      }
      const byTime = await getJson(url, `/v1/docs/notes?at=${midTime}`, alice);
      assert.deepEqual(byTime.body, { m: expected[5] }, 'the state at a time between two edits');
      const binary = await fetch(`${url}/v1/docs/notes?at=${events[3]!.cursor}`, {
        headers: { accept: 'application/octet-stream', authorization: `Bearer ${alice}` },
      });
      const doc = new Y.Doc();
      Y.applyUpdate(doc, new Uint8Array(await binary.arrayBuffer()));
      assert.deepEqual(doc.getMap('m').toJSON(), expected[3]);
    };
    await check(node.url);

    const { body } = await getJson(node.url, '/v1/docs/notes/versions', alice);
    const versions = (body as { versions: Version[] }).versions;
    assert.equal(versions[0]!.id, events.at(-1)!.cursor, 'the newest version first');
    assert.deepEqual(versions[0]!.writers, ['user:alice']);
    assert.equal(
      versions.reduce((n, v) => n + v.changes, 0),
      12,
      'the versions cover every change',
    );

    await stopChild(node);
    node = await start(dir, ['--compact-after-updates', '3'], true);
    await check(node.url);
    await stopChild(node, 'SIGKILL');
    node = await start(dir, ['--compact-after-updates', '3'], true);
    await check(node.url);

    const diff = await getJson(
      node.url,
      `/v1/docs/notes/diff?from=${events[0]!.cursor}&to=${events[2]!.cursor}`,
      alice,
    );
    assert.deepEqual((diff.body as { changes: unknown[] }).changes, [
      { op: 'add', path: ['m', 'k1'], value: 1 },
      { op: 'add', path: ['m', 'k2'], value: 2 },
    ]);
    const toNewest = await getJson(
      node.url,
      `/v1/docs/notes/diff?from=${events[10]!.cursor}`,
      alice,
    );
    assert.deepEqual(toNewest.body, {
      from: events[10]!.cursor,
      to: events[11]!.cursor,
      changes: [{ op: 'add', path: ['m', 'k11'], value: 11 }],
    });
  });

  it('needs read for history and write for restore', async () => {
    const node = await start(await freshDir(), [], true);
    const editor = httpEditor(node.url, 'guarded', alice);
    await editor.edit((doc) => doc.getText('t').insert(0, 'x'));
    const reader = await mintToken({
      secret: SECRET,
      docs: ['guarded'],
      rights: ['read'],
      ttl: '10m',
    });
    const stranger = await mintToken({
      secret: SECRET,
      docs: ['other'],
      rights: ['read', 'write'],
      ttl: '10m',
    });
    assert.equal((await getJson(node.url, '/v1/docs/guarded/versions', reader)).status, 200);
    assert.equal((await getJson(node.url, '/v1/docs/guarded/versions', stranger)).status, 403);
    assert.equal((await getJson(node.url, '/v1/docs/guarded/versions')).status, 401);
    assert.equal(
      (await postJson(node.url, '/v1/docs/guarded/restore', { version: '1' }, reader)).status,
      403,
    );
    assert.equal(
      (await postJson(node.url, '/v1/docs/guarded/versions', { name: 'v' }, reader)).status,
      403,
    );
  });

  it('restores a version as a new change that a stock y-websocket client receives', async () => {
    const node = await start(await freshDir(), []);
    const editor = httpEditor(node.url, 'story');
    await editor.edit((doc) => {
      doc.getText('t').insert(0, 'hello world');
      doc.getMap('meta').set('title', 'first');
    });
    const [first] = await readFeed(node.url, '/v1/docs/story/changes');
    const client = await stockClient(node.wsUrl, 'story');
    try {
      const text = client.doc.getText('t');
      await waitFor(() => text.toString() === 'hello world', 'the client to have the text');
      text.delete(0, 5);
      text.insert(0, 'goodbye');
      client.doc.getMap('meta').set('title', 'second');
      client.doc.getArray('later').push(['added after']);
      const edited = { t: 'goodbye world', meta: { title: 'second' }, later: ['added after'] };
      // The client sends its four edits as four updates, which may reach the node in
      // separate turns and be stored as separate changes: wait for the one holding all.
      const changed = await waitFor(async () => {
        const events = await readFeed(node.url, '/v1/docs/story/changes', first!.cursor);
        if (events.length === 0) return undefined;
        const at = await getJson(node.url, `/v1/docs/story?at=${events.at(-1)!.cursor}`);
        return isDeepStrictEqual(at.body, edited) ? events : undefined;
      }, 'the client edits to be stored');
      const res = await postJson(node.url, '/v1/docs/story/restore', { version: first!.cursor });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      await waitFor(
        () =>
          text.toString() === 'hello world' && client.doc.getMap('meta').get('title') === 'first',
        'the restore to reach the client',
      );
      assert.deepEqual(client.doc.getArray('later').toJSON(), []);
      // What was there before the restore is still in the history.
      const before = await getJson(node.url, `/v1/docs/story?at=${changed.at(-1)!.cursor}`);
      assert.deepEqual(before.body, edited);
      const now = await getJson(node.url, '/v1/docs/story');
      assert.deepEqual(now.body, { t: 'hello world', meta: { title: 'first' }, later: [] });
    } finally {
      client.destroy();
    }
  });

  it('lists, names and restores versions with the CLI', async () => {
    const node = await start(await freshDir(), []);
    const editor = httpEditor(node.url, 'cli/doc');
    await editor.edit((doc) => doc.getText('t').insert(0, 'draft one'));
    const [first] = await readFeed(node.url, '/v1/docs/cli/doc/changes');
    await editor.edit((doc) => doc.getText('t').insert(9, ', then more'));
    const named = await runCli(['versions', 'cli/doc', '--url', node.url, '--name', 'both edits']);
    assert.equal(named.code, 0, named.stderr);
    const listed = await runCli(['versions', 'cli/doc', '--url', node.url]);
    assert.equal(listed.code, 0, listed.stderr);
    const rows = listed.stdout
      .trim()
      .split('\n')
      .map((line) => line.split('\t'));
    assert.ok(
      rows.some((row) => row[4] === 'both edits'),
      listed.stdout,
    );
    assert.ok(
      rows.some((row) => row[2] === 'anonymous' && row[4] === '2 changes'),
      listed.stdout,
    );
    const restored = await runCli(['restore', 'cli/doc', first!.cursor, '--url', node.url]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stderr, new RegExp(`restored cli/doc to version ${first!.cursor}`));
    assert.deepEqual((await getJson(node.url, '/v1/docs/cli/doc')).body, { t: 'draft one' });
    const refused = await runCli(['restore', 'cli/doc', '--url', node.url]);
    assert.equal(refused.code, 2);
  });

  it('serves the history through the SDK (client.history)', async () => {
    const node = await start(await freshDir(), [], true);
    const client = createClient({ url: node.wsUrl, token: alice, WebSocket });
    try {
      const editor = httpEditor(node.url, 'sdk/doc', alice);
      await editor.edit((doc) => doc.getMap('m').set('a', 1));
      const first = await client.history.changes('sdk/doc', { wait: 0 });
      assert.equal(first.changes.length, 1);
      assert.deepEqual(first.changes[0]!.writers, ['user:alice']);
      // A long poll that a later edit answers.
      const next = client.history.changes('sdk/doc', { since: first.cursor, wait: 20 });
      await editor.edit((doc) => doc.getMap('m').set('b', 2));
      const second = await next;
      assert.equal(second.changes.length, 1);
      const named = await client.history.nameVersion('sdk/doc', 'a and b');
      assert.equal(named.name, 'a and b');
      const { versions } = await client.history.versions('sdk/doc');
      assert.ok(versions.some((v) => v.name === 'a and b'));
      assert.deepEqual(await client.history.at('sdk/doc', first.cursor), { m: { a: 1 } });
      const diff = await client.history.diff('sdk/doc', first.cursor, second.cursor);
      assert.deepEqual(diff.changes, [{ op: 'add', path: ['m', 'b'], value: 2 }]);
      assert.deepEqual(await client.history.restore('sdk/doc', first.cursor), {
        restored: first.cursor,
        changed: true,
      });
      assert.deepEqual((await getJson(node.url, '/v1/docs/sdk/doc', alice)).body, { m: { a: 1 } });
      await assert.rejects(client.history.at('sdk/doc', '1970-01-01T00:00:00Z'), {
        code: 'NOT_FOUND',
      });
    } finally {
      await client.destroy();
    }
  });

  it('drops history older than the retention window and keeps named versions', async () => {
    const node = await start(await freshDir(), [
      '--history-retention',
      '1',
      '--compact-after-updates',
      '2',
    ]);
    const editor = httpEditor(node.url, 'retained');
    for (let i = 0; i < 4; i++) await editor.edit((doc) => doc.getMap('m').set(`old${i}`, i));
    const named = await postJson(node.url, '/v1/docs/retained/versions', { name: 'keep me' });
    assert.equal(named.status, 201, JSON.stringify(named.body));
    const namedId = (named.body as Version).id;
    const old = await readFeed(node.url, '/v1/docs/retained/changes');
    assert.equal(old.length, 4);
    assert.equal((await getJson(node.url, `/v1/docs/retained?at=${old[0]!.cursor}`)).status, 200);
    await sleep(1200);
    // Compactions after the window has passed trim what lies before it.
    let i = 0;
    await waitFor(
      async () => {
        await editor.edit((doc) => doc.getMap('m').set(`new${i}`, i++));
        return (await getJson(node.url, `/v1/docs/retained?at=${old[0]!.cursor}`)).status === 404;
      },
      'the old history to be trimmed',
      10_000,
    );
    assert.ok(i <= 6, `trimmed after ${i} compacting edits`);
    const feed = await readFeed(node.url, '/v1/docs/retained/changes');
    assert.ok(
      feed.every((e) => Number(e.cursor) > Number(old[0]!.cursor)),
      'the change feed is trimmed with the history',
    );
    const kept = await getJson(node.url, `/v1/docs/retained?at=${namedId}`);
    assert.equal(kept.status, 200);
    assert.deepEqual(kept.body, { m: { old0: 0, old1: 1, old2: 2, old3: 3 } });
    const { body } = await getJson(node.url, '/v1/docs/retained/versions');
    const versions = (body as { versions: Version[] }).versions;
    assert.ok(versions.some((v) => v.name === 'keep me' && v.id === namedId));
  });

  it('trims the old history of a document nobody writes to any more (the sweep)', async () => {
    const node = await startNode({
      dataDir: await freshDir(),
      historyRetentionMs: 500,
      historySweepMs: 100,
      compactAfterUpdates: 2,
    });
    try {
      const editor = httpEditor(node.url, 'idle');
      for (let i = 0; i < 4; i++) await editor.edit((doc) => doc.getMap('m').set(`k${i}`, i));
      const [oldest] = await readFeed(node.url, '/v1/docs/idle/changes');
      assert.equal((await getJson(node.url, `/v1/docs/idle?at=${oldest!.cursor}`)).status, 200);
      // No more writes: only the sweep can trim now.
      await waitFor(
        async () => (await getJson(node.url, `/v1/docs/idle?at=${oldest!.cursor}`)).status === 404,
        'the sweep to trim the idle document',
        10_000,
        50,
      );
      assert.deepEqual((await getJson(node.url, '/v1/docs/idle')).body, {
        m: { k0: 0, k1: 1, k2: 2, k3: 3 },
      });
    } finally {
      await node.close();
    }
  });

  it('keeps no history with --history-retention 0: compaction drops the log as before', async () => {
    const node = await start(await freshDir(), [
      '--history-retention',
      '0',
      '--compact-after-updates',
      '2',
    ]);
    const editor = httpEditor(node.url, 'no-history');
    for (let i = 0; i < 5; i++) await editor.edit((doc) => doc.getMap('m').set(`k${i}`, i));
    const versions = await getJson(node.url, '/v1/docs/no-history/versions');
    assert.equal(versions.status, 404, JSON.stringify(versions.body));
    assert.equal((await getJson(node.url, '/v1/docs/no-history?at=1')).status, 404);
    // Only what compaction has not merged yet is left for the feed.
    await waitFor(
      async () => (await readFeed(node.url, '/v1/docs/no-history/changes')).length < 5,
      'compaction to drop merged entries',
    );
    assert.deepEqual((await getJson(node.url, '/v1/docs/no-history')).body, {
      m: { k0: 0, k1: 1, k2: 2, k3: 3, k4: 4 },
    });
  });
});
