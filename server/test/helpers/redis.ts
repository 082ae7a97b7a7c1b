/**
 * Real redis-server processes for tests: each on a free port of 127.0.0.1 in a
 * temp directory of its own, stopped by the pid we started (never by name: a
 * system Redis may run on this machine).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rm } from 'node:fs/promises';
import { freePorts } from './cluster.js';
import { spawnNode, stopChild, tempDir, type ChildNode } from './node.js';
import { waitFor } from './wait.js';

export interface TestRedis {
  readonly port: number;
  readonly url: string;
  readonly pid: () => number | undefined;
  /** Ends the process with `signal` (SIGKILL: a crash) and waits for it. */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port; `keepData: false` empties its directory first. */
  restart(options?: { keepData?: boolean }): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 10_000;

/** One redis-server on `port` in `dir`, resolved once it accepts connections; `extra` adds arguments. */
export const spawnRedis = async (
  port: number,
  dir: string,
  extra: readonly string[] = [],
): Promise<ChildProcess> => {
  // appendfsync always: a SIGKILL of Redis loses nothing it answered (what
  // --ack replicated would rely on); the default test doesn't need it, but
  // the restart-with-data test then restarts with everything it was sent.
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--protected-mode',
      'no',
      ...extra,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`redis-server did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (!output.includes('Ready to accept connections')) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      child.stdout!.resume();
      resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited (${code ?? signal}):\n${output}`));
    });
  });
  return child;
};

/** Ends `child` with `signal` and waits for it (nothing when it already ended). */
export const stopProcess = async (child: ChildProcess, signal: NodeJS.Signals): Promise<void> => {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  await exited;
};

export const startRedis = async (): Promise<TestRedis> => {
  const [port] = (await freePorts(1)) as [number];
  const dir = await tempDir();
  let child = await spawnRedis(port, dir.path);
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    pid: () => child.pid,
    stop: (signal = 'SIGTERM') => stopProcess(child, signal),
    async restart(options = {}) {
      await stopProcess(child, 'SIGKILL');
      if (options.keepData === false) {
        await rm(dir.path, { recursive: true, force: true });
        await mkdir(dir.path, { recursive: true });
      }
      child = await spawnRedis(port, dir.path);
    },
    async close() {
      await stopProcess(child, 'SIGKILL');
      await dir.remove();
    },
  };
};

export interface RedisNode {
  readonly id: string;
  readonly port: number;
  readonly dataDir: string;
  node: ChildNode;
  readonly url: string;
  readonly wsUrl: string;
}

export interface RedisNodes {
  readonly nodes: RedisNode[];
  /** Starts one more node (id n<count+1>) on the same Redis. */
  add(): Promise<RedisNode>;
  /** Starts node `i` again on its port and data. */
  restart(i: number): Promise<RedisNode>;
  /** Kills every node still running and removes the data directories. */
  close(): Promise<void>;
}

/**
 * `count` `stateweave serve --redis` processes, ids n1…, each on its own free port and data
 * directory; `redisUrl` may give each node (by index) its own URL, e.g. another node of a Redis Cluster.
 */
export const startRedisNodes = async (
  count: number,
  redisUrl: string | ((index: number) => string),
  extraArgs: string[] = [],
  /** The nodes' environment. @default this process's */
  env: NodeJS.ProcessEnv = process.env,
): Promise<RedisNodes> => {
  const urlOf = (index: number): string =>
    typeof redisUrl === 'string' ? redisUrl : redisUrl(index);
  const nodes: RedisNode[] = [];
  const dirs: Array<{ remove: () => Promise<void> }> = [];
  const spawnOne = async (id: string, dataDir: string, port: number): Promise<RedisNode> => {
    const index = Number(id.slice(1)) - 1;
    const node = await spawnNode(
      dataDir,
      ['--node-id', id, '--redis', urlOf(index), ...extraArgs],
      port,
      env,
    );
    return { id, port: node.port, dataDir, node, url: node.url, wsUrl: node.wsUrl };
  };
  const add = async (): Promise<RedisNode> => {
    const dir = await tempDir();
    dirs.push(dir);
    const [port] = (await freePorts(1)) as [number];
    const node = await spawnOne(`n${nodes.length + 1}`, dir.path, port);
    nodes.push(node);
    return node;
  };
  try {
    for (let i = 0; i < count; i++) await add();
  } catch (err) {
    await Promise.all(nodes.map((n) => stopChild(n.node, 'SIGKILL')));
    await Promise.all(dirs.map((d) => d.remove()));
    throw err;
  }
  return {
    nodes,
    add,
    async restart(i) {
      const old = nodes[i]!;
      const fresh = await spawnOne(old.id, old.dataDir, old.port);
      nodes[i] = fresh;
      return fresh;
    },
    async close() {
      await Promise.all(nodes.map((n) => stopChild(n.node, 'SIGKILL')));
      await Promise.all(dirs.map((d) => d.remove()));
    },
  };
};

interface BackplaneInfo {
  state: string;
  members: string[];
  /** Document streams the node reads. */
  channels: number;
  outages: number;
  messagesDropped: number;
  /** Times the node found its position in a document stream trimmed. */
  gaps?: number;
}

/** The node's backplane status from GET /v1/cluster. */
export const backplaneStatus = async (url: string): Promise<BackplaneInfo> => {
  const res = await fetch(`${url}/v1/cluster`);
  if (!res.ok) throw new Error(`GET /v1/cluster answered ${res.status}`);
  const body = (await res.json()) as { backplane?: BackplaneInfo };
  if (!body.backplane) throw new Error('the node reports no backplane');
  return body.backplane;
};

/** Waits until every node sees exactly `ids` as live members, connected to Redis. */
export const waitMembers = async (
  nodes: readonly { url: string; id?: string; node?: ChildNode }[],
  ids: readonly string[],
  timeoutMs = 15_000,
): Promise<void> => {
  const want = [...ids].sort().join(',');
  await waitFor(
    async () => {
      for (const node of nodes) {
        const status = await backplaneStatus(node.url).catch((err: Error) => {
          // A refused or reset poll of a live node (undici may reuse a keep-alive socket the
          // node just closed) is asked again; a node that exited fails the wait, with why.
          const child = node.node?.child;
          if (!child || (child.exitCode === null && child.signalCode === null)) return undefined;
          throw new Error(
            `${node.id ?? node.url} exited (${child.exitCode ?? child.signalCode}): ${err.message}; ` +
              `its last output:\n${node.node!.output().slice(-3000)}`,
          );
        });
        if (!status) return false;
        if (status.state !== 'connected' || status.members.join(',') !== want) return false;
      }
      return true;
    },
    `every node to see members ${want}`,
    timeoutMs,
    50,
  );
};
