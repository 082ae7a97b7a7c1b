/**
 * The change feed (docs/history.md, "Change feed"): Server-Sent Events that
 * resume with Last-Event-ID after a kill -9 and a restart of the node, with no
 * gap and no repeat; long-poll JSON that answers when a change arrives; the
 * prefix feed over several documents, only what the token may read. Real
 * LevelDB, the node as a child process of the CLI.
 */
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { mintToken } from '../src/auth/tokens.js';
import { getJson, httpEditor, readFeed, readSse } from './helpers/history.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';

const SECRET = 'change-feed-secret-of-32-bytes-or-more';

describe('change feed', { timeout: 180_000 }, () => {
  const dirs: Array<{ remove: () => Promise<void> }> = [];
  const nodes: ChildNode[] = [];
  after(async () => {
    for (const node of nodes) await stopChild(node);
    for (const dir of dirs) await dir.remove();
  });
  const start = async (path: string, env?: NodeJS.ProcessEnv): Promise<ChildNode> => {
    const node = await spawnNode(path, ['--compact-after-updates', '4'], 0, env);
    nodes.push(node);
    return node;
  };

  it('resumes after a kill -9 and restart from Last-Event-ID, with no gap and no repeat', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    let node = await start(dir.path);
    const editor = httpEditor(node.url, 'feed/a');
    for (let i = 0; i < 6; i++) await editor.edit((d) => d.getArray('xs').push([i]));
    const first = await readSse(node.url, '/v1/docs/feed/a/changes', 6);
    assert.deepEqual(
      first.map((e) => e.doc),
      Array(6).fill('feed/a'),
    );
    const cursors = first.map((e) => Number(e.cursor));
    assert.deepEqual(
      cursors,
      [...cursors].sort((a, b) => a - b),
      'in order',
    );

    await stopChild(node, 'SIGKILL');
    node = await start(dir.path);
    const again = httpEditor(node.url, 'feed/a');
    Y.applyUpdate(again.doc, Y.encodeStateAsUpdate(editor.doc));
    for (let i = 6; i < 10; i++) await again.edit((d) => d.getArray('xs').push([i]));

    // An EventSource that reconnects sends its URL again with the last id it saw.
    const resumed = await readSse(node.url, '/v1/docs/feed/a/changes?since=0', 4, {
      'last-event-id': first.at(-1)!.cursor,
    });
    const all = await readFeed(node.url, '/v1/docs/feed/a/changes');
    assert.deepEqual(
      [...first, ...resumed].map((e) => e.cursor),
      all.map((e) => e.cursor),
      'the two streams together are the whole feed, each change once',
    );
    assert.ok(Number(resumed[0]!.cursor) > cursors.at(-1)!, 'cursors grow across the restart');
    // The updates rebuild the document.
    const rebuilt = new Y.Doc();
    for (const e of all) Y.applyUpdate(rebuilt, Buffer.from(e.update, 'base64'));
    assert.deepEqual(rebuilt.getArray('xs').toJSON(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('answers a long poll when a change arrives, and feeds a prefix with only readable documents', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    const node = await start(dir.path, { ...process.env, STATEWEAVE_AUTH_SECRET: SECRET });
    const admin = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write'],
      ttl: '10m',
    });
    const teamA = await mintToken({
      secret: SECRET,
      docs: ['team/a/*'],
      rights: ['read'],
      ttl: '10m',
    });
    await httpEditor(node.url, 'team/a/1', admin).edit((d) => d.getText('t').insert(0, 'a1'));
    await httpEditor(node.url, 'team/b/1', admin).edit((d) => d.getText('t').insert(0, 'b1'));
    await httpEditor(node.url, 'other', admin).edit((d) => d.getText('t').insert(0, 'o'));

    const everything = await readFeed(node.url, '/v1/changes?prefix=team/', '0', admin);
    assert.deepEqual(
      everything.map((e) => e.doc),
      ['team/a/1', 'team/b/1'],
    );
    const mine = await readFeed(node.url, '/v1/changes?prefix=team/', '0', teamA);
    assert.deepEqual(
      mine.map((e) => e.doc),
      ['team/a/1'],
    );
    assert.equal((await getJson(node.url, '/v1/docs/team/b/1/changes?wait=0', teamA)).status, 403);

    // A long poll from the end waits for the next change.
    const since = everything.at(-1)!.cursor;
    const started = Date.now();
    const waiting = getJson(node.url, `/v1/changes?prefix=team/&since=${since}&wait=20`, admin);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await httpEditor(node.url, 'team/a/2', admin).edit((d) => d.getText('t').insert(0, 'a2'));
    const { status, body } = await waiting;
    assert.equal(status, 200);
    const { changes, cursor } = body as {
      changes: Array<{ doc: string; cursor: string }>;
      cursor: string;
    };
    assert.deepEqual(
      changes.map((c) => c.doc),
      ['team/a/2'],
    );
    assert.equal(cursor, changes[0]!.cursor);
    assert.ok(Date.now() - started < 20_000, 'answered by the change, not by the timeout');
    const empty = await getJson(node.url, `/v1/changes?prefix=team/&since=${cursor}&wait=0`, admin);
    assert.deepEqual((empty.body as { changes: unknown[] }).changes, []);
  });
});
