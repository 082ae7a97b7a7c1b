/**
 * Starts and stops the benchmarked systems for run.ts, one process each on
 * 127.0.0.1 (pinned to core 0 when pinning): our node through its CLI for LevelDB,
 * everything else through systems.ts. Every start is bounded (20 s).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUR_EXTRA_NODE_ARGS, PIN } from './config.js';
import type { SystemEndpoint } from './light-client.js';
import { BENCH_DIR, MAIN_JS, benchScript } from './paths.js';
import { spawnCaptured } from './child.js';
import { until } from './wait.js';

/** A system run.ts started: where it listens, its pid (for /proc), its output, stop(). */
export interface RunningSystem extends SystemEndpoint {
  pid: number;
  output(): string;
  stop(): Promise<void>;
}

const CLIENT_OF: Record<string, SystemEndpoint['client']> = {
  'ours-memory': 'y-websocket',
  'ours-leveldb': 'y-websocket',
  'ours-fsync': 'y-websocket',
  reference: 'y-websocket',
  hocuspocus: 'hocuspocus',
  relay: 'y-websocket',
};

/**
 * Our per-IP connection cap and per-connection message rate limit would otherwise be
 * what scenarios 4 and 6 measure (every client comes from 127.0.0.1); the peers have none.
 */
export const OUR_LIMITS = [
  '--max-connections-per-ip',
  '1000000',
  '--max-messages-per-second',
  '100000',
  '--message-burst',
  '100000',
];

/** --no-node-snapshot: isolated-vm needs it on Node 20 and later (docs/functions.md). */
const OUR_NODE_ARGS = ['--no-node-snapshot', ...OUR_EXTRA_NODE_ARGS];

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createTcpServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export async function startSystem(name: string): Promise<RunningSystem> {
  const client = CLIENT_OF[name];
  if (!client) throw new Error(`unknown system ${name}`);
  const port = await freePort();
  const pin = PIN ? ['taskset', '-c', '0'] : [];
  const viaCli = name === 'ours-leveldb' || name === 'ours-fsync';
  const dir = viaCli ? await mkdtemp(join(tmpdir(), `stateweave-bench-${name}-`)) : undefined;
  const argv = dir
    ? [
        process.execPath,
        ...OUR_NODE_ARGS,
        MAIN_JS,
        'serve',
        '--host',
        '127.0.0.1',
        '--port',
        String(port),
        '--data',
        dir,
        '--log-level',
        'warn',
        ...OUR_LIMITS,
        name === 'ours-fsync' ? '--fsync' : '--no-fsync',
      ]
    : [
        process.execPath,
        ...(name.startsWith('ours') ? OUR_NODE_ARGS : []),
        benchScript('systems'),
        name,
        String(port),
      ];
  const [command = process.execPath, ...args] = [...pin, ...argv];
  const child = spawnCaptured(command, args, { cwd: BENCH_DIR });
  const out = child.output;
  const stop = async (): Promise<void> => {
    await child.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  };
  try {
    await until(
      async () => {
        if (child.dead()) throw new Error(`${name} exited during start:\n${out()}`);
        if (dir)
          return (
            (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok === true
          );
        return out().includes('READY');
      },
      `${name} to start`,
      20_000,
    );
  } catch (err) {
    await stop(); // a system that never got ready is not left running
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${name}: no pid`);
  return { name, url: `ws://127.0.0.1:${port}`, pid: child.pid, client, output: out, stop };
}

/** Starts `names` in order, runs `fn` with them, and stops them whatever happens. */
export async function withSystems<T>(
  names: readonly string[],
  fn: (systems: RunningSystem[]) => Promise<T>,
): Promise<T> {
  const systems: RunningSystem[] = [];
  try {
    for (const n of names) systems.push(await startSystem(n));
    return await fn(systems);
  } finally {
    for (const s of systems) await s.stop();
  }
}

/** Runs `fn` with one system started fresh for it. */
export const withSystem = <T>(
  name: string,
  fn: (system: RunningSystem) => Promise<T>,
): Promise<T> =>
  withSystems([name], async ([s]) => {
    if (!s) throw new Error(`${name} did not start`);
    return fn(s);
  });

/** `list` rotated by k: run k starts at the k-th system. */
export const rotate = <T>(list: readonly T[], k: number): T[] =>
  list.map((_, i) => list[(i + k) % list.length] as T);
