/**
 * The processes of `npm run bench:cluster`: node processes on 127.0.0.1 with
 * fresh data directories, a redis-server, and the three setups measured side by
 * side — one node alone (the baseline), three on the WebSocket mesh, three on
 * Redis. n3 reaches everything through proxies (cluster-proxy.ts) so it can be
 * cut off and its bytes counted.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCaptured, type BenchChild } from './child.js';
import { freePort, proxyTo, type Proxy } from './cluster-proxy.js';
import { MAIN_JS } from './paths.js';
import { until } from './wait.js';

export type Backplane = 'single' | 'mesh' | 'redis';
export const BACKPLANES: readonly Backplane[] = ['single', 'mesh', 'redis'];
export const isBackplane = (s: string): s is Backplane => (BACKPLANES as string[]).includes(s);

const SECRET = 'bench-peer-secret-0123456789abcdef';
/** A node starts in about a second; on a loaded shared machine in up to tens of seconds. */
const START_MS = 45_000;

export interface ClusterNode {
  readonly id: string;
  readonly port: number;
  readonly child: BenchChild;
}

export interface BenchRedis {
  readonly port: number;
  readonly pid: () => number | undefined;
  /** kill -9, and wait for it to be gone. */
  kill(): Promise<void>;
  /** A new redis-server on the same port, with the old data or without. */
  start(keepData: boolean): Promise<void>;
}

export interface BenchCluster {
  readonly backplane: Backplane;
  readonly nodes: ClusterNode[];
  /** Every link of n3 (to the other nodes, or to Redis). */
  readonly proxies: readonly Proxy[];
  readonly redis: BenchRedis | undefined;
  /** Every live server process (nodes and redis-server) by name, for CPU time. */
  processes(): Array<{ readonly name: string; readonly pid: number }>;
  /** One more node (n4 …) that joins at run time. */
  addNode(): Promise<ClusterNode>;
  close(): Promise<void>;
}

/**
 * Where the servers run: `undefined` anywhere; otherwise a taskset CPU list
 * (e.g. '0' while the clients run on core 1).
 */
export interface SetupOptions {
  readonly serverCpus: string | undefined;
  /** The node's CLI to run (another build's, to compare). @default this build's */
  readonly mainJs?: string;
  /** Flags of node itself (before the script), e.g. `--cpu-prof`. */
  readonly nodeFlags?: readonly string[];
}

const pinned = (cpus: string | undefined, command: string, args: string[]): [string, string[]] =>
  cpus === undefined ? [command, args] : ['taskset', ['-c', cpus, command, ...args]];

export async function setUp(backplane: Backplane, options: SetupOptions): Promise<BenchCluster> {
  const dirs: string[] = [];
  const nodes: ClusterNode[] = [];
  const proxies: Proxy[] = [];
  let redisChild: BenchChild | undefined;
  let redis: BenchRedis | undefined;
  const tempDir = async (name: string): Promise<string> => {
    const dir = await mkdtemp(join(tmpdir(), `stateweave-bench-${name}-`));
    dirs.push(dir);
    return dir;
  };

  const startNode = async (id: string, port: number, links: string[]): Promise<ClusterNode> => {
    const dir = await tempDir(id);
    const [command, args] = pinned(options.serverCpus, process.execPath, [
      '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
      ...(options.nodeFlags ?? []),
      options.mainJs ?? MAIN_JS,
      'serve',
      ...['--host', '127.0.0.1', '--port', String(port), '--data', dir, '--node-id', id],
      ...links,
      ...['--log-level', 'warn'],
    ]);
    const child = spawnCaptured(command, args, {
      env: { ...process.env, STATEWEAVE_PEER_SECRET: SECRET },
    });
    const node = { id, port, child };
    nodes.push(node);
    await until(
      async () => {
        if (child.dead()) throw new Error(`${id} exited: ${child.output().slice(-500)}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true;
      },
      `${id} to start`,
      START_MS,
    );
    return node;
  };

  const startRedis = async (): Promise<BenchRedis> => {
    const port = await freePort();
    let dir = await tempDir('redis');
    const spawnRedis = async (): Promise<void> => {
      const [command, args] = pinned(options.serverCpus, 'redis-server', [
        ...['--port', String(port), '--bind', '127.0.0.1', '--dir', dir],
        // No persistence, as the script this replaced: the rows compare with its figures.
        ...['--save', '', '--appendonly', 'no'],
      ]);
      const child = spawnCaptured(command, args, {});
      redisChild = child;
      await until(
        () => {
          if (child.dead()) throw new Error(`redis-server exited: ${child.output()}`);
          return child.output().includes('Ready to accept connections');
        },
        'redis-server to start',
        START_MS,
      );
    };
    await spawnRedis();
    return {
      port,
      pid: () => redisChild?.pid,
      async kill() {
        const pid = redisChild?.pid;
        if (pid !== undefined) process.kill(pid, 'SIGKILL');
        await until(() => redisChild?.dead() ?? true, 'redis-server to die', START_MS);
      },
      async start(keepData) {
        if (!keepData) dir = await tempDir('redis');
        await spawnRedis();
      },
    };
  };

  const clusterStatus = async (port: number): Promise<{ members: string[] }> =>
    (await (await fetch(`http://127.0.0.1:${port}/v1/cluster`)).json()) as { members: string[] };

  const close = async (): Promise<void> => {
    await Promise.all(proxies.map((p) => p.close()));
    // SIGTERM first: a node stops cleanly (and writes a CPU profile when asked for one).
    await Promise.all(nodes.map((n) => n.child.stop()));
    await redisChild?.stop();
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  };

  let addNode: () => Promise<ClusterNode> = () =>
    Promise.reject(new Error('a single node takes no other'));

  try {
    await start();
  } catch (err) {
    await close(); // what did start
    throw err;
  }
  async function start(): Promise<void> {
    if (backplane === 'single') {
      await startNode('n1', await freePort(), []);
    } else if (backplane === 'mesh') {
      const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
      const toN3 = await proxyTo(p3);
      const n3ToN1 = await proxyTo(p1);
      const n3ToN2 = await proxyTo(p2);
      proxies.push(toN3, n3ToN1, n3ToN2);
      const peers = (urls: string[]): string[] => ['--peers', urls.join(',')];
      await startNode('n1', p1, peers([`ws://127.0.0.1:${p2}`, `ws://${toN3.address}`]));
      await startNode('n2', p2, peers([`ws://127.0.0.1:${p1}`, `ws://${toN3.address}`]));
      await startNode('n3', p3, peers([`ws://${n3ToN1.address}`, `ws://${n3ToN2.address}`]));
      await until(
        async () => {
          const status = (await (await fetch(`http://127.0.0.1:${p3}/v1/cluster`)).json()) as {
            peers: Array<{ state: string }>;
          };
          return status.peers.filter((p) => p.state === 'connected').length === 2;
        },
        'n3 to link with n1 and n2',
        START_MS,
      );
      // A mesh node links with any node of the secret that dials it: n4 dials the three.
      addNode = async () => {
        const id = `n${nodes.length + 1}`;
        const urls = nodes.map((n) => `ws://127.0.0.1:${n.port}`);
        return startNode(id, await freePort(), peers(urls));
      };
    } else {
      redis = await startRedis();
      const n3ToRedis = await proxyTo(redis.port);
      proxies.push(n3ToRedis);
      const direct = ['--redis', `redis://127.0.0.1:${redis.port}`];
      await startNode('n1', await freePort(), direct);
      await startNode('n2', await freePort(), direct);
      const n3 = await startNode('n3', await freePort(), [
        '--redis',
        `redis://${n3ToRedis.address}`,
      ]);
      await until(
        async () => (await clusterStatus(n3.port)).members.length === 3,
        'n3 to see n1 and n2 on Redis',
        START_MS,
      );
      addNode = async () => startNode(`n${nodes.length + 1}`, await freePort(), direct);
    }
  }

  return {
    backplane,
    nodes,
    proxies,
    redis,
    processes: () =>
      [
        ...nodes.map((n) => ({ name: n.id, child: n.child })),
        ...(redisChild ? [{ name: 'redis', child: redisChild }] : []),
      ]
        .filter(({ child }) => !child.dead() && child.pid !== undefined)
        .map(({ name, child }) => ({ name, pid: child.pid! })),
    addNode: () => addNode(),
    close,
  };
}
