/**
 * Peer authentication between node processes: a node with the wrong peer secret
 * is refused (and learns why), a forged or missing peer header never opens a
 * link, and nothing the refused node is given reaches the cluster.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { clusterArgs, clusterStatus, nodeDoc } from './helpers/cluster.js';
import { stockClient } from './helpers/clients.js';
import { scrape, sample } from './helpers/metrics.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { sleep, waitFor } from './helpers/wait.js';

const upgradeStatus = (url: string, headers: Record<string, string>): Promise<number> =>
  new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      ws.terminate();
    });
    ws.once('open', () => {
      ws.terminate();
      reject(new Error('the forged peer was accepted'));
    });
    ws.once('error', () => undefined);
  });

describe('cluster: peer authentication', () => {
  let good: ChildNode;
  let bad: ChildNode;
  const dirs: Array<{ remove(): Promise<void> }> = [];

  before(async () => {
    const [d1, d2] = [await tempDir(), await tempDir()];
    dirs.push(d1, d2);
    good = await spawnNode(d1.path, clusterArgs('good', []));
    bad = await spawnNode(
      d2.path,
      clusterArgs('bad', [good.wsUrl], 'a-different-secret-0123456789'),
    );
  });

  after(async () => {
    await Promise.all([stopChild(good, 'SIGKILL'), stopChild(bad, 'SIGKILL')]);
    await Promise.all(dirs.map((d) => d.remove()));
  });

  it('refuses a peer with the wrong secret, and the refused node reports why', async () => {
    await waitFor(
      async () =>
        sample(await scrape(good.url), 'stateweave_peer_refused_total{reason="UNAUTHORIZED"}') > 0,
      'the good node to refuse the bad one',
    );
    assert.deepEqual((await clusterStatus(good.url)).members, ['good']);
    const seen = await clusterStatus(bad.url);
    assert.deepEqual(seen.members, ['bad']);
    const peer = seen.peers[0];
    assert.equal(peer?.nodeId, undefined);
    assert.notEqual(peer?.state, 'connected');
    assert.match(peer?.lastError ?? '', /401/);
  });

  it('lets nothing written on the refused node reach the cluster', async () => {
    const client = await stockClient(bad.wsUrl, 'secret-doc');
    try {
      client.doc.getText('t').insert(0, 'must stay on the bad node');
      await sleep(500);
      assert.equal(await nodeDoc(good.url, 'secret-doc'), undefined);
    } finally {
      client.destroy();
    }
  });

  it('answers a forged, stale or missing-signature peer header with 401', async () => {
    const url = `${good.wsUrl}/_stateweave/peer`;
    assert.equal(await upgradeStatus(url, { 'x-stateweave-peer': 'garbage' }), 401);
    assert.equal(
      await upgradeStatus(url, { 'x-stateweave-peer': `v1.mallory.${Date.now()}.nonce.AAAA` }),
      401,
    );
    assert.equal(await upgradeStatus(url, { 'x-stateweave-peer': `v1.mallory.1.nonce.AAAA` }), 401);
  });
});
