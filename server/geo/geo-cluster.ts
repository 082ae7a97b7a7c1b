/**
 * Regions on one machine: `stateweave serve` processes in each region, and a
 * delaying proxy (delay-proxy.ts) on every path: node → node (mesh peer links,
 * and `owner` calls forwarded over them; 1 ms inside a region), node → Redis,
 * and client → node (1 ms). The harness itself (checks, figures)
 * talks to nodes directly. Processes are stopped by pid; `close` ends everything.
 */
import { rmSync } from 'node:fs';
import type { ChildNode } from '../test/helpers/node.js';
import { spawnNode, stopChild, tempDir } from '../test/helpers/node.js';
import { clusterArgs, freePorts, waitConnected } from '../test/helpers/cluster.js';
import { startRedis, waitMembers, type TestRedis } from '../test/helpers/redis.js';
import { FIXTURE_FUNCTIONS } from '../test/helpers/functions.js';
import { startDelayProxy, type DelayProxy } from './delay-proxy.js';
import { oneWayMs, REGIONS, type Region } from './regions.js';

export type BackplaneKind = 'mesh' | 'redis';

/** Home nodes per document: two of three, so each document has a region that is not a home. */
export const REPLICATION_FACTOR = 2;
/** Redis lives in this region. */
export const REDIS_REGION: Region = 'eu';

export interface GeoNode {
  readonly region: Region;
  readonly id: string;
  /** Direct, for the harness's own checks. */
  readonly url: string;
  /** Through the region's 1 ms proxy: what the region's users connect to. */
  readonly userWsUrl: string;
  readonly userHttpUrl: string;
  readonly child: ChildNode;
}

export interface GeoCluster {
  readonly backplane: BackplaneKind;
  readonly nodes: readonly GeoNode[];
  /** The `index`th node of `region` (wrapping: a region with one node gives it for any index). */
  nodeIn(region: Region, index?: number): GeoNode;
  /** Cuts every path between `region` and the others (its users stay connected to it). */
  cut(region: Region): void;
  heal(region: Region): void;
  close(): Promise<void>;
}

interface Path {
  readonly from: Region;
  readonly to: Region;
  readonly proxy: DelayProxy;
}

interface NodeSpec {
  readonly region: Region;
  readonly id: string;
  readonly port: number;
}

export interface GeoClusterOptions {
  readonly backplane: BackplaneKind;
  /** Nodes in each region (`eu1`, `eu2`, …); the first serves the region's users. @default 1 */
  readonly nodesPerRegion?: number;
  /**
   * `--placement presence` on every node, with this dwell time (ms): a
   * document's first home and primary follow its users' region. @default hash placement
   */
  readonly presenceDwellMs?: number;
}

export const startGeoCluster = async (options: GeoClusterOptions): Promise<GeoCluster> => {
  const { backplane } = options;
  const perRegion = options.nodesPerRegion ?? 1;
  const paths: Path[] = [];
  const nodes: GeoNode[] = [];
  const dirs: Array<{ path: string; remove(): Promise<void> }> = [];
  let redis: TestRedis | undefined;
  // If the harness dies before `close` (a crash, the watchdog), its children die with it.
  const killOnExit = (): void => {
    for (const n of nodes) if (n.child.child.exitCode === null) n.child.child.kill('SIGKILL');
    const redisPid = redis?.pid();
    try {
      if (redisPid !== undefined) process.kill(redisPid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err; // already gone
    }
    for (const dir of dirs) rmSync(dir.path, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);
  const close = async (): Promise<void> => {
    process.off('exit', killOnExit);
    await Promise.all(nodes.map((n) => stopChild(n.child, 'SIGKILL')));
    await Promise.all(paths.map((p) => p.proxy.close()));
    await redis?.close();
    await Promise.all(dirs.map((d) => d.remove()));
  };
  const path = async (from: Region, to: Region, targetPort: number): Promise<DelayProxy> => {
    const proxy = await startDelayProxy({ targetPort, delayMs: oneWayMs(from, to) });
    paths.push({ from, to, proxy });
    return proxy;
  };
  try {
    const ports = await freePorts(REGIONS.length * perRegion);
    const specs: NodeSpec[] = REGIONS.flatMap((region, r) =>
      Array.from({ length: perRegion }, (_, i) => ({
        region,
        id: `${region}${i + 1}`,
        port: ports[r * perRegion + i]!,
      })),
    );
    let backplaneArgs: (spec: NodeSpec) => Promise<string[]>;
    if (backplane === 'mesh') {
      backplaneArgs = async (spec) => {
        const peers: string[] = [];
        for (const other of specs.filter((o) => o !== spec))
          peers.push(`ws://127.0.0.1:${(await path(spec.region, other.region, other.port)).port}`);
        return clusterArgs(spec.id, peers);
      };
    } else {
      const started = await startRedis();
      redis = started;
      backplaneArgs = async (spec) => {
        const proxy = await path(spec.region, REDIS_REGION, started.port);
        return ['--node-id', spec.id, '--redis', `redis://127.0.0.1:${proxy.port}`];
      };
    }
    for (const spec of specs) {
      const dir = await tempDir();
      dirs.push(dir);
      const args = [
        ...(await backplaneArgs(spec)),
        '--replication-factor',
        String(REPLICATION_FACTOR),
        '--functions',
        FIXTURE_FUNCTIONS,
        '--region',
        spec.region,
        ...(options.presenceDwellMs !== undefined
          ? ['--placement', 'presence', '--presence-dwell-ms', String(options.presenceDwellMs)]
          : []),
      ];
      const child = await spawnNode(dir.path, args, spec.port);
      const user = await path(spec.region, spec.region, spec.port);
      nodes.push({
        region: spec.region,
        id: spec.id,
        url: child.url,
        userWsUrl: `ws://127.0.0.1:${user.port}`,
        userHttpUrl: `http://127.0.0.1:${user.port}`,
        child,
      });
    }
    if (backplane === 'mesh') await waitConnected(nodes, 30_000);
    else
      await waitMembers(
        nodes,
        nodes.map((n) => n.id),
        30_000,
      );
  } catch (err) {
    await close();
    throw err;
  }
  // A path crosses the cut when exactly one of its ends is in the region.
  const crossing = (region: Region): DelayProxy[] =>
    paths.filter((p) => (p.from === region) !== (p.to === region)).map((p) => p.proxy);
  return {
    backplane,
    nodes,
    nodeIn: (region, index = 0) => {
      const local = nodes.filter((n) => n.region === region);
      return local[index % local.length]!;
    },
    cut: (region) => crossing(region).forEach((p) => p.cut()),
    heal: (region) => crossing(region).forEach((p) => p.heal()),
    close,
  };
};
