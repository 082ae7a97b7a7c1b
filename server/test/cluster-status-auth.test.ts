/**
 * `--private-cluster-status` (issue 17, item 6): `GET /v1/cluster` shows peers and
 * their addresses only to a token with the `admin` right; without a token it
 * answers the node id alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mintToken } from '../src/auth/tokens.js';
import { startNode, tempDir, type TestNode } from './helpers/node.js';

const SECRET = 'c'.repeat(32);

const status = async (node: TestNode, token?: string) => {
  const res = await fetch(`${node.url}/v1/cluster`, {
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe('a private cluster status', () => {
  let dir: Awaited<ReturnType<typeof tempDir>>;
  let open: TestNode;
  let closed: TestNode;
  before(async () => {
    dir = await tempDir();
    const auth = { secret: SECRET };
    // A peer URL that is never reachable: the status lists it with its address.
    const cluster = {
      nodeId: 'n1',
      peers: ['ws://127.0.0.1:9'],
      peerSecret: 'p'.repeat(16),
      auth,
    };
    open = await startNode({ ...cluster, dataDir: `${dir.path}/open` });
    closed = await startNode({
      ...cluster,
      dataDir: `${dir.path}/closed`,
      privateClusterStatus: true,
    });
  });
  after(async () => {
    await open.close();
    await closed.close();
    await dir.remove();
  });

  it('answers the node id alone without a token, and everything to an admin token', async () => {
    const anonymous = await status(closed);
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.body, { nodeId: 'n1' });
    assert.ok(!JSON.stringify(anonymous.body).includes('127.0.0.1:9'), 'no peer address');
    const admin = await mintToken({ secret: SECRET, docs: ['*'], rights: ['admin'] });
    const full = await status(closed, admin);
    assert.equal(full.status, 200);
    assert.ok(JSON.stringify(full.body).includes('127.0.0.1:9'), 'the admin sees the peers');
  });

  it('refuses a token without the admin right (403) and a bad one (401)', async () => {
    const reader = await mintToken({ secret: SECRET, docs: ['*'], rights: ['read', 'write'] });
    assert.equal((await status(closed, reader)).status, 403);
    assert.equal((await status(closed, 'not.a.token')).status, 401);
  });

  it('stays public without the option', async () => {
    const result = await status(open);
    assert.equal(result.status, 200);
    assert.ok(JSON.stringify(result.body).includes('127.0.0.1:9'));
  });
});
