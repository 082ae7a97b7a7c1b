/**
 * Cluster tests: free ports, several `stateweave serve` processes peered with
 * each other, a cuttable TCP proxy, and reading a node's state over HTTP.
 */
import { createServer, type Server, type Socket } from 'node:net';
import * as Y from 'yjs';
import { spawnNode, stopChild, tempDir, type ChildNode } from './node.js';
import { waitFor } from './wait.js';

export const PEER_SECRET = 'test-peer-secret-0123456789abcdef';

/** Ports that were free a moment ago (listen on 0, note, close). */
export const freePorts = async (count: number): Promise<number[]> => {
  const servers: Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < count; i++) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    ports.push((server.address() as { port: number }).port);
  }
  await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  return ports;
};

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  readonly peers: string[];
  node: ChildNode;
  readonly url: string;
  readonly wsUrl: string;
}

export interface TestCluster {
  readonly nodes: ClusterNode[];
  /** Starts node `i` again (same id, port, data and peers). */
  restart(i: number, extraArgs?: string[]): Promise<ClusterNode>;
  /** Stops every node still running and removes the data directories. */
  close(): Promise<void>;
}

export const clusterArgs = (id: string, peers: string[], secret = PEER_SECRET): string[] => [
  '--node-id',
  id,
  '--peer-secret',
  secret,
  ...(peers.length > 0 ? ['--peers', peers.join(',')] : []),
];

/** `count` nodes on fixed free ports, each listing all the others as peers. */
export const startCluster = async (
  count: number,
  extraArgs: string[] = [],
): Promise<TestCluster> => {
  const ports = await freePorts(count);
  const dirs = await Promise.all(ports.map(() => tempDir()));
  const specs = ports.map((port, i) => ({
    id: `n${i + 1}`,
    port,
    dataDir: dirs[i]!.path,
    peers: ports.filter((p) => p !== port).map((p) => `ws://127.0.0.1:${p}`),
  }));
  const spawnOne = async (
    spec: (typeof specs)[number],
    more: string[] = [],
  ): Promise<ClusterNode> => {
    const node = await spawnNode(
      spec.dataDir,
      [...clusterArgs(spec.id, spec.peers), ...extraArgs, ...more],
      spec.port,
    );
    return { ...spec, node, url: node.url, wsUrl: node.wsUrl };
  };
  const nodes: ClusterNode[] = [];
  try {
    for (const spec of specs) nodes.push(await spawnOne(spec));
  } catch (err) {
    await Promise.all(nodes.map((n) => stopChild(n.node, 'SIGKILL')));
    await Promise.all(dirs.map((d) => d.remove()));
    throw err;
  }
  return {
    nodes,
    async restart(i, more = []) {
      const spec = specs[i]!;
      const fresh = await spawnOne(spec, more);
      nodes[i] = fresh;
      return fresh;
    },
    async close() {
      await Promise.all(nodes.map((n) => stopChild(n.node, 'SIGKILL')));
      await Promise.all(dirs.map((d) => d.remove()));
    },
  };
};

export interface PeerInfo {
  nodeId?: string;
  url?: string;
  state: 'connected' | 'connecting' | 'down';
  bytesIn: number;
  bytesOut: number;
  lagMs?: number;
  lastError?: string;
}

export interface ClusterInfo {
  nodeId: string;
  replicationFactor: number;
  members: string[];
  peers: PeerInfo[];
  replication: { documents: number; channels: number };
}

export const clusterStatus = async (url: string): Promise<ClusterInfo> => {
  const res = await fetch(`${url}/v1/cluster`);
  if (!res.ok) throw new Error(`GET /v1/cluster answered ${res.status}`);
  return (await res.json()) as ClusterInfo;
};

/**
 * Waits until every node reports a connected link to every other, with the
 * node id behind each of its peer URLs known. A link the other node dialed can
 * be up while this node's own dial to that URL is still learning whom it
 * reaches (first contact is refused once, then redialed): until it knows, the
 * URL's entry has no node id, and work addressed by URL (a deploy's report)
 * would call that peer pending.
 */
export const waitConnected = async (
  nodes: readonly { url: string }[],
  timeoutMs = 15_000,
): Promise<void> => {
  const peerUrlOf = (url: string): string => url.replace(/^http/, 'ws');
  await waitFor(
    async () => {
      for (const node of nodes) {
        const status = await clusterStatus(node.url);
        const others = nodes.filter((n) => n !== node).map((n) => peerUrlOf(n.url));
        const ready = others.filter((url) =>
          status.peers.some(
            (p) => p.url === url && p.nodeId !== undefined && p.state === 'connected',
          ),
        );
        // A node configured without a URL for some peer only learns it from that peer's dial.
        const configured = others.filter((url) => status.peers.some((p) => p.url === url));
        const connected = status.peers.filter((p) => p.state === 'connected').length;
        if (ready.length < configured.length || connected < nodes.length - 1) return false;
      }
      return true;
    },
    'every peer link to connect, with every peer URL’s node id known',
    timeoutMs,
    50,
  );
};

/** The node's copy of `doc` as a Y.Doc (undefined when it has nothing). */
export const nodeDoc = async (url: string, doc: string): Promise<Y.Doc | undefined> => {
  const res = await fetch(`${url}/v1/docs/${doc}`, {
    headers: { accept: 'application/octet-stream' },
  });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`GET /v1/docs/${doc} answered ${res.status}`);
  const ydoc = new Y.Doc();
  Y.applyUpdate(ydoc, new Uint8Array(await res.arrayBuffer()));
  return ydoc;
};

/** A comparable fingerprint of a document's state: its state vector and delete set. */
export const fingerprint = (doc: Y.Doc): string =>
  Buffer.from(Y.encodeSnapshot(Y.snapshot(doc))).toString('hex');

/**
 * A TCP proxy in front of `target` that counts bytes both ways and can cut
 * every connection (and refuse new ones) until healed: a network partition.
 */
export interface CuttableProxy {
  readonly port: number;
  readonly url: string;
  /** Bytes relayed (both directions) since the last reset. */
  bytes(): number;
  resetBytes(): void;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

export const startProxy = async (targetPort: number): Promise<CuttableProxy> => {
  const sockets = new Set<Socket>();
  let relayed = 0;
  let cut = false;
  const server = createServer((client) => {
    if (cut) return client.destroy();
    const upstream = new (client.constructor as typeof Socket)();
    upstream.connect(targetPort, '127.0.0.1');
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      sockets.add(from);
      from.on('data', (chunk: Buffer) => {
        relayed += chunk.byteLength;
        to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => {
        sockets.delete(from);
        to.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const cutAll = (): void => {
    cut = true;
    for (const socket of sockets) socket.destroy();
  };
  return {
    port,
    url: `ws://127.0.0.1:${port}`,
    bytes: () => relayed,
    resetBytes() {
      relayed = 0;
    },
    cut: cutAll,
    heal() {
      cut = false;
    },
    async close() {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
};
