/**
 * Document administration and the way out: listing stored documents a page at a
 * time (only what the token may read), deleting one (its clients are closed with
 * DOC_DELETED, the store forgets it), and export → import between two nodes that
 * gives byte-equal documents. Real LevelDB, nodes as child processes of the CLI.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { mintToken } from '../src/auth/tokens.js';
import { runCli } from './helpers/cli.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { waitFor, withTimeout } from './helpers/wait.js';

const SECRET = 'doc-admin-secret-of-32-bytes-or-more';
const LIMIT_MS = 30_000;

const cli = (args: string[], stdin?: string) => runCli(args, { stdin, limitMs: LIMIT_MS });

const write = async (url: string, name: string, text: string, token?: string) => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  const res = await fetch(`${url}/v1/docs/${name}/updates`, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: Y.encodeStateAsUpdate(doc),
  });
  assert.equal(res.status, 200, await res.text());
};

const binary = async (url: string, name: string): Promise<Uint8Array> => {
  const res = await fetch(`${url}/v1/docs/${name}`, {
    headers: { accept: 'application/octet-stream' },
  });
  assert.equal(res.status, 200, name);
  return new Uint8Array(await res.arrayBuffer());
};

describe('document administration', { timeout: 120_000 }, () => {
  let dirs: Array<{ path: string; remove: () => Promise<void> }>;
  let secured: ChildNode;
  let open: ChildNode;
  let admin: string;

  before(async () => {
    dirs = await Promise.all([tempDir(), tempDir(), tempDir()]);
    process.env.STATEWEAVE_AUTH_SECRET = SECRET;
    try {
      secured = await spawnNode(dirs[0]!.path);
    } finally {
      delete process.env.STATEWEAVE_AUTH_SECRET;
    }
    open = await spawnNode(dirs[1]!.path);
    admin = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write', 'admin'],
      ttl: '10m',
    });
  });
  after(async () => {
    await stopChild(secured);
    await stopChild(open);
    for (const d of dirs) await d.remove();
  });

  it('lists only what the token may read, a page at a time, in name order', async () => {
    for (const name of ['team-a/one', 'team-a/two', 'team-a/three', 'team-b/secret'])
      await write(secured.url, name, name, admin);
    const teamA = await mintToken({
      secret: SECRET,
      docs: ['team-a/*'],
      rights: ['read'],
      ttl: '10m',
    });
    const page = async (query: string) => {
      const res = await fetch(`${secured.url}/v1/docs?${query}`, {
        headers: { authorization: `Bearer ${teamA}` },
      });
      assert.equal(res.status, 200);
      return (await res.json()) as { docs: { name: string; bytes: number }[]; next: string | null };
    };
    const first = await page('limit=2');
    assert.deepEqual(
      first.docs.map((d) => d.name),
      ['team-a/one', 'team-a/three'],
    );
    assert.ok(first.docs.every((d) => d.bytes > 0));
    assert.equal(first.next, 'team-a/three');
    const second = await page(`limit=2&cursor=${encodeURIComponent(first.next!)}`);
    assert.deepEqual(
      second.docs.map((d) => d.name),
      ['team-a/two'],
    );
    assert.equal(second.next, null);
    const anonymous = await fetch(`${secured.url}/v1/docs`);
    assert.equal(anonymous.status, 401);
    const bad = await fetch(`${secured.url}/v1/docs?limit=0`, {
      headers: { authorization: `Bearer ${teamA}` },
    });
    assert.equal(bad.status, 400);
  });

  it('deletes a document: admin only, its clients closed with 4410, the store forgets it', async () => {
    await write(secured.url, 'team-a/doomed', 'bye', admin);
    const writer = await mintToken({
      secret: SECRET,
      docs: ['*'],
      rights: ['read', 'write'],
      ttl: '10m',
    });
    const notAdmin = await fetch(`${secured.url}/v1/docs/team-a/doomed`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${writer}` },
    });
    assert.equal(notAdmin.status, 403);

    const ws = new WebSocket(`${secured.wsUrl}/team-a/doomed?token=${admin}`);
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    await new Promise<void>((resolve, reject) => {
      ws.once('message', () => resolve()); // the node's sync step 1: the room is open
      ws.once('error', reject);
    });
    const res = await fetch(`${secured.url}/v1/docs/team-a/doomed`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(res.status, 200);
    const { code, reason } = await withTimeout(
      closed,
      10_000,
      'the deleted document to close its connection',
    );
    assert.equal(code, 4410);
    assert.match(reason, /^DOC_DELETED/);
    const after = await fetch(`${secured.url}/v1/docs/team-a/doomed`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    assert.equal(after.status, 404, 'nothing left to read');
    const listed = await fetch(`${secured.url}/v1/docs?prefix=team-a/`, {
      headers: { authorization: `Bearer ${admin}` },
    });
    const { docs } = (await listed.json()) as { docs: { name: string }[] };
    assert.ok(!docs.some((d) => d.name === 'team-a/doomed'));
  });

  it('export → import gives byte-equal documents on an empty node, with progress on stderr', async () => {
    const names = ['x/a', 'x/b', 'x/c/deep', 'y/other'];
    for (const name of names) await write(open.url, name, `content of ${name}`);
    const exported = await cli(['export', '--url', open.url, '--prefix', 'x/']);
    assert.equal(exported.code, 0, exported.stderr);
    const lines = exported.stdout.trim().split('\n');
    assert.deepEqual(
      lines.map((l) => (JSON.parse(l) as { name: string }).name),
      ['x/a', 'x/b', 'x/c/deep'],
    );
    assert.match(exported.stderr, /exported 3 documents, \d+ bytes/);
    const file = join(dirs[2]!.path, 'docs.ndjson');
    await writeFile(file, exported.stdout);

    const target = await spawnNode(join(dirs[2]!.path, 'target'));
    try {
      const imported = await cli(['import', '--url', target.url], await readFile(file, 'utf8'));
      assert.equal(imported.code, 0, imported.stderr);
      assert.match(imported.stderr, /imported 3 documents/);
      for (const name of ['x/a', 'x/b', 'x/c/deep'])
        assert.deepEqual(await binary(target.url, name), await binary(open.url, name), name);
    } finally {
      await stopChild(target);
    }
  });

  it('exports a stopped node from its data directory, the same bytes as over HTTP', async () => {
    const overHttp = await cli(['export', '--url', open.url, '--prefix', 'y/']);
    assert.equal(overHttp.code, 0, overHttp.stderr);
    await stopChild(open);
    const fromDisk = await cli(['export', '--data', dirs[1]!.path, '--prefix', 'y/']);
    assert.equal(fromDisk.code, 0, fromDisk.stderr);
    const docOf = (out: string) => {
      const { update } = JSON.parse(out.trim()) as { update: string };
      const doc = new Y.Doc();
      Y.applyUpdate(doc, Buffer.from(update, 'base64'));
      return doc.getText('t').toString();
    };
    assert.equal(docOf(fromDisk.stdout), 'content of y/other');
    assert.equal(docOf(fromDisk.stdout), docOf(overHttp.stdout));
    open = await spawnNode(dirs[1]!.path); // for after()
    await waitFor(async () => (await fetch(`${open.url}/readyz`)).ok, 'the node back');
  });

  it('answers mistakes with one sentence', async () => {
    const both = await cli(['export', '--url', open.url, '--data', '/tmp']);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /give exactly one of --url and --data/);
    const garbage = await cli(['import', '--url', open.url], 'not json\n');
    assert.equal(garbage.code, 1);
    assert.match(garbage.stderr, /line 1 is not \{"name": string, "update": base64\}/);
  });
});
