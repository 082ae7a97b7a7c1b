/**
 * When a mesh link comes back, the two nodes exchange state vectors once, not
 * twice: both ask at the same moment (each has clients on the document), and
 * each side's missed edits must cross the link once. Two in-process nodes on
 * the mesh adapter (real authenticated WebSocket links through cuttable TCP
 * proxies), stock clients on both, edits on both sides of a partition; the
 * replicator's directed frames after the heal are counted where they leave.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeChannelFrame } from '../src/cluster/channel-codec.js';
import { createClusterMetrics } from '../src/cluster/cluster-metrics.js';
import { createMeshBackplane, type MeshBackplane } from '../src/cluster/mesh/mesh-backplane.js';
import { createMetrics } from '../src/metrics.js';
import { validateNodeId } from '../src/node-id.js';
import { startProxy, type CuttableProxy } from './helpers/cluster.js';
import { stockClient, type StockClient } from './helpers/clients.js';
import { silentLogger, startNode, type TestNode } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const DOC = 'link-return';

/** A directed frame of the replicator, as counted: its type and its sync message's type. */
interface Sent {
  readonly from: string;
  readonly type: string;
  /** y-protocols sync message type: 0 step 1, 1 step 2, 2 update. */
  readonly sync: number | undefined;
}

describe('mesh: a link that comes back', () => {
  const servers: Server[] = [];
  const proxies: CuttableProxy[] = [];
  const meshes: MeshBackplane[] = [];
  const nodes: TestNode[] = [];
  const clients: StockClient[] = [];
  const sent: Sent[] = [];

  before(async () => {
    for (let i = 0; i < 2; i++) {
      const server = createServer((_req, res) => res.writeHead(404).end());
      server.on('upgrade', (req, socket, head) => meshes[i]!.handleUpgrade(req, socket, head));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      servers.push(server);
      proxies.push(await startProxy((server.address() as AddressInfo).port));
    }
    for (const [i, id] of ['n1', 'n2'].entries()) {
      const mesh = createMeshBackplane({
        nodeId: validateNodeId(id),
        peers: [proxies[1 - i]!.url],
        peerSecret: 'link-return-secret-of-the-mesh',
        logger: silentLogger(),
        metrics: createClusterMetrics(createMetrics({ collectDefault: false })),
        maxFrameBytes: 1024 * 1024,
        heartbeatMs: 1000,
        backoffMaxMs: 200,
      });
      // Count the replicator's directed frames of the document as they leave this node.
      const send = mesh.send.bind(mesh);
      mesh.send = (to, frame) => {
        try {
          const parsed = decodeChannelFrame(frame);
          if (parsed.doc === DOC)
            sent.push({
              from: id,
              type: parsed.type,
              sync: parsed.type === 'leave' ? undefined : parsed.message[1],
            });
        } catch {
          // not a channel frame (a request of the stored catch-up): not counted
        }
        return send(to, frame);
      };
      meshes.push(mesh);
      nodes.push(await startNode({ nodeId: id, backplane: mesh }));
    }
  });

  after(async () => {
    for (const c of clients) c.destroy();
    for (const n of nodes) await n.close();
    for (const p of proxies) await p.close();
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  it('exchanges state vectors once: each side sends what it missed once', async () => {
    const [n1, n2] = nodes as [TestNode, TestNode];
    const [m1, m2] = meshes as [MeshBackplane, MeshBackplane];
    await waitFor(
      () => m1.isLive(validateNodeId('n2')) && m2.isLive(validateNodeId('n1')),
      'the link',
    );
    const a = await stockClient(n1.wsUrl, DOC);
    const b = await stockClient(n2.wsUrl, DOC);
    clients.push(a, b);
    a.doc.getText('t').insert(0, 'before;');
    await waitFor(() => b.doc.getText('t').toString() === 'before;', 'b to see a');

    for (const p of proxies) p.cut();
    await waitFor(
      () => !m1.isLive(validateNodeId('n2')) && !m2.isLive(validateNodeId('n1')),
      'both nodes to see the link down',
    );
    for (let i = 0; i < 20; i++) {
      a.doc.getText('t').insert(0, `a${i};`);
      b.doc.getText('t').insert(0, `b${i};`);
    }
    const expected = a.doc.getText('t').length + b.doc.getText('t').length - 'before;'.length;
    sent.length = 0;
    // The link n1 dials comes back first (n1 is the pair's preferred dialer). Were n2's dial
    // up first, n1's would replace it, and a replacement is exchanged over again on purpose
    // (frames in flight on the replaced link are dropped, peer-links.ts): a second exchange
    // that is not the one counted here, and made this test fail in about one run of four.
    proxies[1]!.heal();
    await waitFor(
      () => m1.isLive(validateNodeId('n2')) && m2.isLive(validateNodeId('n1')),
      'the link n1 dials',
    );
    proxies[0]!.heal();
    await waitFor(
      () =>
        a.doc.getText('t').toString() === b.doc.getText('t').toString() &&
        a.doc.getText('t').length === expected,
      'both clients to hold every edit',
      20_000,
    );
    // A write each way after that: frames sent on the link before it (a step 1 answer and
    // the step 2 it asks for) have been handled once both writes arrived.
    a.doc.getMap('m').set('a', 1);
    b.doc.getMap('m').set('b', 1);
    await waitFor(
      () => a.doc.getMap('m').has('b') && b.doc.getMap('m').has('a'),
      'a write each way after the exchange',
    );
    const step2 = sent.filter((s) => s.type === 'message' && s.sync === 1);
    // One step 2 each way carries each side's missed edits; with a double ask there are four.
    assert.deepEqual(step2.map((s) => s.from).sort(), ['n1', 'n2'], JSON.stringify(sent));
  });
});
