/**
 * Peer authentication between node processes: a node with the wrong peer secret
 * is refused (and learns why), a forged or missing peer header never opens a
 * link, and nothing the refused node is given reaches the cluster.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createPeerAuth } from '../src/cluster/peer-auth.js';
import { clusterArgs, clusterStatus, nodeDoc, PEER_SECRET } from './helpers/cluster.js';
import { stockClient } from './helpers/clients.js';
import { scrape, sample } from './helpers/metrics.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './helpers/node.js';
import { tryUpgrade } from './helpers/upgrade.js';
import { sleep, waitFor } from './helpers/wait.js';
import { validateNodeId as nid } from '../src/node-id.js';

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

  it('refuses a captured dial header replayed inside the clock window (401, counted)', async () => {
    const url = `${good.wsUrl}/_stateweave/peer`;
    // A genuine dial, signed with the secret for this very node, as captured off the wire.
    const { header } = createPeerAuth({ nodeId: nid('n9'), secret: PEER_SECRET }).dial('good');
    const first = await tryUpgrade(url, { 'x-stateweave-peer': header });
    assert.ok(first.open, 'the genuine dial opens a link');
    first.ws.close();
    const replayed = await tryUpgrade(url, { 'x-stateweave-peer': header });
    assert.deepEqual(replayed, { open: false, status: 401, code: 'UNAUTHORIZED' });
    assert.ok(
      sample(await scrape(good.url), 'stateweave_peer_refused_total{reason="replayed"}') >= 1,
      'the replay is counted',
    );
  });

  it('refuses a dial signed for another node, and tells a dialer who it reached', async () => {
    const url = `${good.wsUrl}/_stateweave/peer`;
    const dialer = createPeerAuth({ nodeId: nid('n9'), secret: PEER_SECRET });
    const forOther = dialer.dial('someone-else');
    assert.deepEqual(await tryUpgrade(url, { 'x-stateweave-peer': forOther.header }), {
      open: false,
      status: 401,
      code: 'UNAUTHORIZED',
    });
    assert.ok(
      sample(await scrape(good.url), 'stateweave_peer_refused_total{reason="receiver"}') >= 1,
      'the misdirected dial is counted',
    );
    // A first contact names no receiver: refused, with the node's id signed over the nonce.
    const hello = dialer.dial('*');
    const ack = await new Promise<string | undefined>((resolve) => {
      const ws = new WebSocket(url, { headers: { 'x-stateweave-peer': hello.header } });
      ws.on('error', () => undefined);
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        ws.terminate();
        const value = res.headers['x-stateweave-peer-ack'];
        resolve(Array.isArray(value) ? value[0] : value);
      });
    });
    assert.equal(dialer.verifyAck(ack, hello.nonce), 'good');
  });
});
