/**
 * The membership and outage rows of `npm run bench:cluster`, run on a cluster
 * after its steady load:
 *
 * - Redis restarts (Redis only): kill -9 of redis-server, both clients write
 *   for a while, then a new one without the old data; the bytes over n3's Redis
 *   link from the restart until both clients hold everything, and the time
 *   (Redis's start and the nodes' reconnect backoff included).
 * - A node joins: documents written before, a 4th node started; how many
 *   documents it became a home of (rendezvous hashing: about R/N), and the time
 *   until it stored them all (by state-vector catch-up, nobody opens them).
 * - A node is killed (kill -9 of n2): the time until the survivors stop counting
 *   it as live — from then its documents' primary is another node (owner calls,
 *   leases) and its homes' share is served by the others — and a write on n1 to
 *   a document n2 was the first home of reaches a client on n3.
 */
import * as Y from 'yjs';
import { rank } from '../src/cluster/placement.js';
import type { BenchCluster, ClusterNode } from './cluster-setup.js';
import { connectClient, type BenchClient } from './cluster-load.js';
import { sleep, until } from './wait.js';

export interface RedisRestartFigures {
  readonly catchUpMs: number;
  readonly catchUpBytes: number;
  readonly writesPerSide: number;
}

export interface JoinFigures {
  readonly docs: number;
  /** Documents the new node became a home of. */
  readonly moved: number;
  readonly members: number;
  /** From the new node's start until it stored every document it is a home of. */
  readonly storedMs: number;
}

export interface KillFigures {
  /** From kill -9 until n1 and n3 no longer count n2 as live. */
  readonly notLiveMs: number;
  /** From kill -9 until a write on n1 to a document of n2 reached a client on n3. */
  readonly servedMs: number;
}

const REPLICATION_FACTOR = 3;
const http = (node: ClusterNode): string => `http://127.0.0.1:${node.port}`;

interface ClusterView {
  members: string[];
  peers?: Array<{ nodeId?: string; state: string }>;
  backplane?: { members?: string[] };
}
const view = async (node: ClusterNode): Promise<ClusterView> =>
  (await (await fetch(`${http(node)}/v1/cluster`)).json()) as ClusterView;

/** `id` is live for `node`: a connected link on the mesh, a member on Redis. */
const sees = async (node: ClusterNode, id: string, backplane: string): Promise<boolean> => {
  const v = await view(node);
  if (backplane === 'mesh')
    return v.peers?.some((p) => p.nodeId === id && p.state === 'connected') ?? false;
  return (v.backplane?.members ?? v.members).includes(id);
};

const peerUpdatesIn = async (node: ClusterNode): Promise<number> => {
  const text = await (await fetch(`${http(node)}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith('stateweave_updates_in_total{origin="peer"}'));
  return Number(line?.split(' ').pop() ?? 0);
};

const writeOver = async (node: ClusterNode, doc: string, text: string): Promise<void> => {
  const ydoc = new Y.Doc();
  ydoc.getText('t').insert(0, text);
  const res = await fetch(`${http(node)}/v1/docs/${doc}/updates`, {
    method: 'POST',
    headers: { 'content-type': 'application/octet-stream' },
    body: Y.encodeStateAsUpdate(ydoc),
  });
  if (!res.ok) throw new Error(`write ${doc} on ${node.id}: HTTP ${res.status}`);
};

/** Writes/s on each side while Redis is away (one client each). */
const OUTAGE_RATE = 100;

export async function measureRedisRestart(
  cluster: BenchCluster,
  writer: BenchClient,
  reader: BenchClient,
  outageMs: number,
): Promise<RedisRestartFigures> {
  const redis = cluster.redis;
  if (!redis) throw new Error('no Redis to restart');
  await redis.kill();
  let i = 0;
  const end = performance.now() + outageMs;
  while (performance.now() < end) {
    writer.ydoc.getMap('ra').set(`a${i}`, i);
    reader.ydoc.getMap('rb').set(`b${i}`, i);
    i++;
    await sleep(1000 / OUTAGE_RATE);
  }
  const writes = i;
  const last = writes - 1;
  cluster.proxies.forEach((p) => p.resetBytes());
  const restarted = performance.now();
  await redis.start(false);
  await until(
    () =>
      reader.ydoc.getMap('ra').get(`a${last}`) === last &&
      writer.ydoc.getMap('rb').get(`b${last}`) === last,
    'convergence after the Redis restart',
    60_000,
  );
  return {
    catchUpMs: performance.now() - restarted,
    catchUpBytes: cluster.proxies.reduce((s, p) => s + p.bytes(), 0),
    writesPerSide: writes,
  };
}

export async function measureJoin(cluster: BenchCluster, docs: number): Promise<JoinFigures> {
  const names = Array.from({ length: docs }, (_, i) => `join-${i}`);
  const first = cluster.nodes[0]!;
  for (const doc of names) await writeOver(first, doc, `text of ${doc}`);
  const before = cluster.nodes.map((n) => n.id);
  const started = performance.now();
  const joined = await cluster.addNode();
  const members = [...before, joined.id];
  const moved = names.filter((doc) =>
    rank(doc, members).slice(0, REPLICATION_FACTOR).includes(joined.id),
  ).length;
  // Every write to a document it now homes arrives as one peer update at least.
  await until(
    async () => (await peerUpdatesIn(joined)) >= moved,
    `${joined.id} to store its share`,
    60_000,
  );
  return { docs, moved, members: members.length, storedMs: performance.now() - started };
}

export async function measureKill(cluster: BenchCluster): Promise<KillFigures> {
  const [n1, n2, n3] = cluster.nodes as [ClusterNode, ClusterNode, ClusterNode];
  const members = cluster.nodes.map((n) => n.id);
  const doc =
    Array.from({ length: 1000 }, (_, i) => `killed-${i}`).find(
      (d) => rank(d, members)[0] === n2.id,
    ) ?? 'killed-0';
  const reader = await connectClient(n3.port, doc);
  try {
    const killed = performance.now();
    if (n2.child.pid !== undefined) process.kill(n2.child.pid, 'SIGKILL');
    await writeOver(n1, doc, 'after the kill');
    await until(
      () => reader.ydoc.getText('t').toString() === 'after the kill',
      `a write to ${doc} to reach n3`,
      60_000,
    );
    const servedMs = performance.now() - killed;
    await until(
      async () =>
        !(await sees(n1, n2.id, cluster.backplane)) && !(await sees(n3, n2.id, cluster.backplane)),
      'n1 and n3 to drop n2',
      60_000,
    );
    return { notLiveMs: performance.now() - killed, servedMs };
  } finally {
    reader.destroy();
  }
}
