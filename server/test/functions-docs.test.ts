/**
 * Functions that work on several documents (`docs`: written atomically, all or
 * none, also across a crash) and read others (`ctx.read`, with the caller's rights).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken } from '../src/auth/tokens.js';
import { spawnNode, startNode, stopChild, tempDir, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { waitFor } from './helpers/wait.js';
import { errorCode, FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';

const secret = 'functions-docs-test-secret-that-is-long-enough-0123';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const balanceOf = async (
  url: string,
  id: string,
  headers: Record<string, string> = {},
): Promise<unknown> => {
  const res = await fetch(`${url}/v1/docs/accounts/${id}`, { headers });
  return res.status === 404
    ? undefined
    : ((await res.json()) as { account?: { balance?: number } }).account?.balance;
};

describe('functions on several documents', () => {
  let node: TestNode;
  let admin: Record<string, string>;
  before(async () => {
    node = await startNode({ auth: { secret }, functionsDir: FIXTURE_FUNCTIONS });
    admin = bearer(
      await mintToken({ secret, docs: ['*'], rights: ['read', 'write', 'invoke', 'admin'] }),
    );
  });
  after(async () => {
    await node.close();
  });

  it('writes both documents of a transfer, and clients of each see their half', async () => {
    await invoke(node.url, 'openAccount', { id: 'alice', balance: 100 }, admin);
    await invoke(node.url, 'openAccount', { id: 'bob', balance: 0 }, admin);
    const token = await mintToken({ secret, docs: ['accounts/*'], rights: ['read'] });
    const watcher = await stockClient(node.wsUrl, `accounts/bob?token=${token}`);
    const moved = await invoke(
      node.url,
      'transfer',
      { from: 'alice', to: 'bob', amount: 30 },
      admin,
    );
    assert.equal(moved.status, 200);
    assert.deepEqual(moved.body, { from: 70 });
    assert.equal(await balanceOf(node.url, 'alice', admin), 70);
    assert.equal(await balanceOf(node.url, 'bob', admin), 30);
    await waitFor(
      () => watcher.doc.getMap('account').get('balance') === 30,
      'the client of bob to see 30',
    );
    watcher.destroy();
  });

  it('keeps 100 concurrent transfers in both directions consistent: the total never changes', async () => {
    await invoke(node.url, 'openAccount', { id: 'c1', balance: 500 }, admin);
    await invoke(node.url, 'openAccount', { id: 'c2', balance: 500 }, admin);
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        invoke(
          node.url,
          'transfer',
          i % 2 ? { from: 'c1', to: 'c2', amount: 7 } : { from: 'c2', to: 'c1', amount: 3 },
          admin,
        ),
      ),
    );
    assert.deepEqual(
      results.filter((r) => r.status !== 200).map((r) => r.body),
      [],
    );
    assert.equal(await balanceOf(node.url, 'c1', admin), 500 - 50 * 7 + 50 * 3);
    assert.equal(await balanceOf(node.url, 'c2', admin), 500 + 50 * 7 - 50 * 3);
  });

  it('leaves both documents untouched when the handler throws after writing both', async () => {
    await invoke(node.url, 'openAccount', { id: 'poor', balance: 5 }, admin);
    await invoke(node.url, 'openAccount', { id: 'rich', balance: 1000 }, admin);
    const refused = await invoke(
      node.url,
      'transfer',
      { from: 'poor', to: 'rich', amount: 10 },
      admin,
    );
    assert.equal(refused.status, 500);
    assert.match(
      (refused.body as { error: { message: string } }).error.message,
      /insufficient funds/,
    );
    assert.equal(await balanceOf(node.url, 'poor', admin), 5);
    assert.equal(await balanceOf(node.url, 'rich', admin), 1000);
  });

  it('needs the invoke right on every document it names', async () => {
    const onlyAlice = await mintToken({
      secret,
      docs: ['accounts/alice'],
      rights: ['invoke', 'read'],
    });
    const res = await invoke(
      node.url,
      'transfer',
      { from: 'alice', to: 'bob', amount: 1 },
      bearer(onlyAlice),
    );
    assert.equal(res.status, 403);
    assert.equal(await balanceOf(node.url, 'alice', admin), 70);
  });

  it("reads another document with ctx.read, checked against the caller's rights", async () => {
    const writer = await mintToken({ secret, docs: ['acl/*'], rights: ['read', 'write'] });
    const acl = await stockClient(node.wsUrl, `acl/lobby?token=${writer}`);
    acl.doc.getMap('allow').set('ada', true);
    const saved = await mintToken({ secret, docs: ['*'], rights: ['read'] });
    await waitFor(async () => {
      const res = await fetch(`${node.url}/v1/docs/acl/lobby`, { headers: bearer(saved) });
      return (
        res.status === 200 &&
        ((await res.json()) as { allow?: Record<string, boolean> }).allow?.ada === true
      );
    }, 'the ACL to reach the node');
    const reader = bearer(
      await mintToken({ secret, docs: ['counters/*', 'acl/*'], rights: ['invoke', 'read'] }),
    );
    assert.deepEqual(
      (await invoke(node.url, 'admit', { room: 'lobby', user: 'ada' }, reader)).body,
      { allowed: true },
    );
    assert.deepEqual(
      (await invoke(node.url, 'admit', { room: 'lobby', user: 'eve' }, reader)).body,
      { allowed: false },
    );
    const blind = bearer(await mintToken({ secret, docs: ['counters/*'], rights: ['invoke'] }));
    const refused = await invoke(node.url, 'admit', { room: 'lobby', user: 'ada' }, blind);
    assert.equal(refused.status, 403, 'no read right on acl/lobby');
    assert.equal(errorCode(refused), 'FORBIDDEN');
    const counted = (await (
      await fetch(`${node.url}/v1/docs/counters/lobby`, { headers: bearer(saved) })
    ).json()) as { c: { n: number } };
    assert.equal(counted.c.n, 1, 'only the admitted call wrote');
    const wrote = await invoke(node.url, 'writeToCopy', { room: 'lobby' }, reader);
    assert.equal(wrote.status, 500);
    assert.match((wrote.body as { error: { message: string } }).error.message, /read-only copy/);
    assert.equal(acl.doc.getMap('allow').get('mallory'), undefined);
    acl.destroy();
  });
});

describe('a transfer across a crash', () => {
  it('never stores one half of a transfer: after kill -9 the total is intact', async () => {
    const dir = await tempDir();
    try {
      const first = await spawnNode(dir.path, ['--functions', FIXTURE_FUNCTIONS]);
      const url = first.url;
      await invoke(url, 'openAccount', { id: 'x', balance: 10_000 });
      await invoke(url, 'openAccount', { id: 'y', balance: 0 });
      // Transfers in flight when the node is killed: some stored, some not, none by half.
      const load = Promise.all(
        Array.from({ length: 400 }, () =>
          invoke(url, 'transfer', { from: 'x', to: 'y', amount: 1 }).catch(() => undefined),
        ),
      );
      await waitFor(
        async () => (((await balanceOf(url, 'y')) as number | undefined) ?? 0) > 0,
        'some transfers to be stored',
      );
      await stopChild(first, 'SIGKILL');
      await load;
      const second = await spawnNode(dir.path, ['--functions', FIXTURE_FUNCTIONS]);
      try {
        const x = (await balanceOf(second.url, 'x')) as number;
        const y = ((await balanceOf(second.url, 'y')) as number | undefined) ?? 0;
        assert.equal(x + y, 10_000, `x = ${x}, y = ${y}`);
        assert.ok(y > 0 && y < 400, `the node was killed while transfers were running (y = ${y})`);
      } finally {
        await stopChild(second);
      }
    } finally {
      await dir.remove();
    }
  });
});
