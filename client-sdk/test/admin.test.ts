/**
 * `client.admin` against real nodes (in-process, real LevelDB in temp
 * directories, authentication on): listing a page at a time with size and last
 * change, deleting (the report, and the FORBIDDEN of a token without `admin`),
 * and export → import between two nodes giving the same documents.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { StateweaveClientError, type StateweaveClient } from '@stateweave/client';
import { startNode, tempDir, type TestNode } from '../../server/dist/test/helpers/node.js';
import { mintToken } from '../../server/dist/src/auth/tokens.js';
import { sdkClient } from './helpers.js';

const SECRET = 'sdk-admin-test-secret-of-32-bytes-or-more';

const token = (rights: Array<'read' | 'write' | 'admin'>, docs = ['*']) =>
  mintToken({ secret: SECRET, docs, rights, ttl: '10m' });

const update = (text: string): Uint8Array => {
  const doc = new Y.Doc();
  doc.getText('t').insert(0, text);
  return Y.encodeStateAsUpdate(doc);
};

const textOf = (state: Uint8Array): string => {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, state);
  return doc.getText('t').toString();
};

/** Fails unless `work` rejects with a StateweaveClientError of `code` (and `status`). */
const rejectsWith = async (work: Promise<unknown>, code: string, status?: number) => {
  await assert.rejects(work, (err: unknown) => {
    assert.ok(err instanceof StateweaveClientError, String(err));
    assert.equal(err.code, code);
    if (status !== undefined) assert.equal(err.status, status);
    return true;
  });
};

describe('client.admin', { timeout: 120_000 }, () => {
  const dirs: Array<{ path: string; remove: () => Promise<void> }> = [];
  const clients: StateweaveClient[] = [];
  let source: TestNode;
  let target: TestNode;
  let admin: string;

  const client = (node: TestNode, tok: string): StateweaveClient => {
    const c = sdkClient({ url: node.wsUrl, token: tok });
    clients.push(c);
    return c;
  };

  before(async () => {
    dirs.push(await tempDir(), await tempDir());
    source = await startNode({ dataDir: dirs[0]!.path, auth: { secret: SECRET } });
    target = await startNode({ dataDir: dirs[1]!.path, auth: { secret: SECRET } });
    admin = await token(['read', 'write', 'admin']);
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.destroy()));
    await source?.close();
    await target?.close();
    for (const d of dirs) await d.remove();
  });

  it('lists a page at a time with size and last change, and all of a prefix', async () => {
    const sdk = client(source, admin);
    const before = Date.now();
    for (const name of ['app/a', 'app/b', 'app/c', 'other/x'])
      await sdk.admin.import(name, update(`text of ${name}`));
    const first = await sdk.admin.list({ prefix: 'app/', limit: 2 });
    assert.deepEqual(
      first.docs.map((d) => d.name),
      ['app/a', 'app/b'],
    );
    assert.equal(first.next, 'app/b');
    for (const doc of first.docs) {
      assert.ok(doc.bytes > 0);
      const time = Date.parse(doc.lastChange ?? '');
      assert.ok(time >= before && time <= Date.now(), `${doc.lastChange} is when it was written`);
    }
    const second = await sdk.admin.list({ prefix: 'app/', limit: 2, cursor: first.next! });
    assert.deepEqual(
      second.docs.map((d) => d.name),
      ['app/c'],
    );
    assert.equal(second.next, null);
    const all: string[] = [];
    for await (const doc of sdk.admin.listAll()) all.push(doc.name);
    assert.deepEqual(all, ['app/a', 'app/b', 'app/c', 'other/x']);

    // Only what the token may read.
    const appOnly = client(source, await token(['read'], ['app/*']));
    const seen: string[] = [];
    for await (const doc of appOnly.admin.listAll()) seen.push(doc.name);
    assert.deepEqual(seen, ['app/a', 'app/b', 'app/c']);
    await rejectsWith(sdk.admin.list({ limit: 0 }), 'INVALID_OPTIONS');
  });

  it('deletes with the admin right, and answers FORBIDDEN without it', async () => {
    const sdk = client(source, admin);
    const old = update('bye');
    await sdk.admin.import('doomed', old);
    const reader = client(source, await token(['read', 'write']));
    await rejectsWith(reader.admin.delete('doomed'), 'FORBIDDEN', 403);
    assert.deepEqual(await sdk.admin.delete('doomed'), {
      deleted: true,
      replicatedTo: [],
      pending: [],
    });
    await rejectsWith(sdk.admin.exportDoc('doomed'), 'NOT_FOUND', 404);
    const names: string[] = [];
    for await (const doc of sdk.admin.listAll()) names.push(doc.name);
    assert.ok(!names.includes('doomed'));
    // Its old content cannot be written back (the tombstone refuses it); new content can.
    await rejectsWith(sdk.admin.import('doomed', old), 'DOC_DELETED', 410);
    await sdk.admin.import('doomed', update('a new one'));
    assert.equal(textOf(await sdk.admin.exportDoc('doomed')), 'a new one');
    await sdk.admin.delete('doomed');
  });

  it('exports every document of a prefix and imports them into another node, the same state', async () => {
    const from = client(source, admin);
    const to = client(target, admin);
    const exported = [];
    for await (const doc of from.admin.export({ prefix: 'app/' })) exported.push(doc);
    assert.deepEqual(
      exported.map((d) => d.name),
      ['app/a', 'app/b', 'app/c'],
    );
    for (const { name, update: state } of exported) await to.admin.import(name, state);
    for (const { name, update: state } of exported) {
      const copy = await to.admin.exportDoc(name);
      assert.deepEqual(copy, state, `${name}: byte-equal state`);
      assert.equal(textOf(copy), `text of ${name}`);
    }
    const listed = await to.admin.list();
    assert.deepEqual(
      listed.docs.map((d) => d.name),
      ['app/a', 'app/b', 'app/c'],
    );
    const anonymous = sdkClient({ url: target.wsUrl });
    clients.push(anonymous);
    await rejectsWith(anonymous.admin.list(), 'UNAUTHORIZED', 401);
  });
});
