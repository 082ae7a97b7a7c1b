/**
 * Every Backplane adapter passes one contract (backplane-contract.ts): the
 * in-memory medium, Redis on a real redis-server started for this file, Redis
 * on a real 3-master Redis Cluster (each backplane seeded with another master),
 * and the WebSocket mesh on real WebSocket servers on 127.0.0.1; all but the
 * mesh pass the leases part too. Plus the channel replicator's and the mesh's frame codecs.
 */
import { docName } from './helpers/doc-name.js';
import { validateNodeId } from '../src/node-id.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ProtocolError } from '@stateweave/client/protocol';
import { decodeChannelFrame, encodeChannelFrame } from '../src/cluster/channel-codec.js';
import type { LeasingBackplane } from '../src/cluster/backplane.js';
import { createBackplaneMetrics } from '../src/cluster/backplane-metrics.js';
import { createClusterMetrics } from '../src/cluster/cluster-metrics.js';
import { createMeshBackplane, type MeshBackplane } from '../src/cluster/mesh/mesh-backplane.js';
import {
  decodePeerFrame,
  encodePeerFrame,
  isPeerFrame,
  type PeerFrame,
} from '../src/cluster/peer-codec.js';
import { encodeRpcFrame } from '../src/cluster/rpc-codec.js';
import { createMemoryBackplaneMedium } from '../src/cluster/memory-backplane.js';
import { createRedisBackplane } from '../src/cluster/redis/redis-backplane.js';
import { createMetrics } from '../src/metrics.js';
import {
  backplaneContract,
  leasingBackplaneContract,
  type ContractMedium,
} from './backplane-contract.js';
import { silentLogger } from './helpers/node.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { startRedisCluster, type TestRedisCluster } from './helpers/redis-cluster.js';
import { validateNodeId as nid } from '../src/node-id.js';

const memory = async (ids: string[]): Promise<ContractMedium<LeasingBackplane>> => {
  const medium = createMemoryBackplaneMedium();
  return { backplanes: ids.map((id) => medium.join(id)), close: async () => {} };
};
backplaneContract('in-memory', memory);
leasingBackplaneContract('in-memory', memory);

// Once every test is done the file should exit; if something still holds it open (a
// backplane's connection left reconnecting), say what, rather than time out silently.
after(() => {
  setTimeout(
    () =>
      console.log(
        `# still open 10 s after the last test: ${process.getActiveResourcesInfo().join(', ')}`,
      ),
    10_000,
  ).unref();
});

let redis: Promise<TestRedis> | undefined;
let media = 0;
after(async () => (await redis)?.close());

const onRedis = async (ids: string[]): Promise<ContractMedium<LeasingBackplane>> => {
  redis ??= startRedis();
  const { url } = await redis;
  // A key prefix per medium: the tests share one Redis without seeing each other.
  const keyPrefix = `contract${++media}`;
  return {
    backplanes: ids.map((nodeId) =>
      createRedisBackplane({
        url,
        nodeId: nid(nodeId),
        keyPrefix,
        logger: silentLogger(),
        metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      }),
    ),
    close: async () => {},
  };
};
backplaneContract('Redis', onRedis);
leasingBackplaneContract('Redis', onRedis);

let redisCluster: Promise<TestRedisCluster> | undefined;
after(async () => (await redisCluster)?.close());

const onRedisCluster = async (ids: string[]): Promise<ContractMedium<LeasingBackplane>> => {
  redisCluster ??= startRedisCluster(3);
  const cluster = await redisCluster;
  const keyPrefix = `contract${++media}`;
  return {
    backplanes: ids.map((nodeId, i) =>
      createRedisBackplane({
        url: cluster.urlOf(cluster.ports[i % cluster.ports.length]!),
        nodeId: nid(nodeId),
        keyPrefix,
        logger: silentLogger(),
        metrics: createBackplaneMetrics(createMetrics({ collectDefault: false })),
      }),
    ),
    close: async () => {},
  };
};
backplaneContract('Redis Cluster', onRedisCluster);
leasingBackplaneContract('Redis Cluster', onRedisCluster);

/** One HTTP server per node on 127.0.0.1 port 0, its peer upgrades routed to its mesh backplane. */
backplaneContract('WebSocket mesh', async (ids) => {
  const servers: Server[] = [];
  const meshes: MeshBackplane[] = [];
  for (const [i] of ids.entries()) {
    const server = createServer((_req, res) => res.writeHead(404).end());
    server.on('upgrade', (req, socket, head) => meshes[i]!.handleUpgrade(req, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
  }
  const urls = servers.map((s) => `ws://127.0.0.1:${(s.address() as AddressInfo).port}`);
  for (const [i, nodeId] of ids.entries())
    meshes.push(
      createMeshBackplane({
        nodeId: validateNodeId(nodeId),
        peers: urls.filter((_, j) => j !== i),
        peerSecret: 'contract-secret-of-the-mesh',
        logger: silentLogger(),
        metrics: createClusterMetrics(createMetrics({ collectDefault: false })),
        maxFrameBytes: 1024 * 1024,
        heartbeatMs: 1000,
      }),
    );
  return {
    backplanes: meshes,
    close: async () => {
      for (const server of servers) server.closeAllConnections();
      await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
    },
  };
});

describe('channel frames', () => {
  it('round-trip every kind and refuse anything malformed', () => {
    const message = Uint8Array.from([0, 0, 1, 255]);
    for (const frame of [
      { type: 'ask', doc: docName('a/b'), message },
      { type: 'message', doc: docName('x'), message },
      { type: 'leave', doc: docName('y') },
    ] as const) {
      const bytes = encodeChannelFrame(frame);
      const back = decodeChannelFrame(bytes);
      assert.equal(back.type, frame.type);
      assert.equal(back.doc, frame.doc);
      assert.deepEqual([...encodeChannelFrame(back)], [...bytes]);
    }
    const good = encodeChannelFrame({ type: 'message', doc: docName('x'), message });
    assert.throws(() => decodeChannelFrame(good.subarray(0, good.length - 1)), ProtocolError);
    assert.throws(() => decodeChannelFrame(Uint8Array.from([...good, 0])), ProtocolError);
    assert.throws(() => decodeChannelFrame(Uint8Array.from([9, 0])), ProtocolError);
  });
});

describe('mesh peer frames', () => {
  it('round-trip every kind, stay apart from directed frames and refuse anything malformed', () => {
    const message = Uint8Array.from([0, 0, 1, 255]);
    const frames: PeerFrame[] = [
      { type: 'doc', doc: docName('a/b'), message },
      { type: 'leave', doc: docName('a/b') },
      { type: 'publish', doc: docName('x'), seq: Date.now() * 1000, message },
      { type: 'subscribe', doc: docName('x'), after: 17 },
      { type: 'links', nodes: ['n1', 'n-2'] },
      {
        type: 'record',
        name: 'deployment',
        writtenAt: 1_800_000_000_000,
        writer: 'n1',
        value: message,
      },
      { type: 'direct', frame: Uint8Array.from([112, 0]) },
    ];
    for (const frame of frames) {
      const bytes = encodePeerFrame(frame);
      assert.ok(isPeerFrame(bytes), frame.type);
      assert.deepEqual(decodePeerFrame(bytes), frame);
    }
    // The layer above's directed frames pass the mesh untouched.
    assert.ok(!isPeerFrame(encodeChannelFrame({ type: 'ask', doc: docName('x'), message })));
    assert.ok(
      !isPeerFrame(
        encodeRpcFrame({ kind: 'request', id: 1, request: { type: 'deployment-meta' } }),
      ),
    );
    const good = encodePeerFrame({ type: 'subscribe', doc: docName('x'), after: 3 });
    assert.throws(() => decodePeerFrame(good.subarray(0, good.length - 1)), ProtocolError);
    assert.throws(() => decodePeerFrame(Uint8Array.from([...good, 0])), ProtocolError);
    assert.throws(() => decodePeerFrame(Uint8Array.from([119])), ProtocolError);
  });
});
