/**
 * Starts and stops the benchmarked systems for run.ts, one process each on
 * 127.0.0.1 (pinned to core 0 when pinning): our node through its CLI for LevelDB,
 * everything else through systems.ts. Every start is bounded (20 s). Also how
 * every bench starts our node as a process (`startOurNode`: functions-node.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createTcpServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OUR_EXTRA_NODE_ARGS, PIN } from './config.js';
import type { SystemEndpoint } from './light-client.js';
import { BENCH_DIR, MAIN_JS, benchScript } from './paths.js';
import { spawnCaptured } from './child.js';
import { sleep } from './wait.js';

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

/** A process run.ts or a bench started, once ready: its pid (for /proc), its output, stop(). */
interface Started {
  readonly pid: number;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Spawns `argv` (after `taskset -c 0` when `pin`) and resolves once `ready()`
 * is true, polled every `pollMs`; a process that exits or is not ready within
 * `timeoutMs` is stopped (and `cleanup` run), not left running.
 */
async function startProcess(
  what: string,
  argv: readonly string[],
  options: {
    readonly pin: boolean;
    readonly cwd?: string;
    readonly env?: NodeJS.ProcessEnv;
    readonly ready: (output: string) => boolean | Promise<boolean>;
    readonly timeoutMs: number;
    readonly pollMs: number;
    readonly cleanup?: () => Promise<void>;
  },
): Promise<Started> {
  const [command = process.execPath, ...args] = [
    ...(options.pin ? ['taskset', '-c', '0'] : []),
    ...argv,
  ];
  const child = spawnCaptured(command, args, {
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
  const stop = async (): Promise<void> => {
    await child.stop();
    await options.cleanup?.();
  };
  const deadline = Date.now() + options.timeoutMs;
  try {
    while (!(await options.ready(child.output()))) {
      if (child.dead()) throw new Error(`${what} exited during start:\n${child.output()}`);
      if (Date.now() > deadline)
        throw new Error(`${what} did not start within ${options.timeoutMs} ms:\n${child.output()}`);
      await sleep(options.pollMs);
    }
  } catch (err) {
    await stop();
    throw err;
  }
  if (child.pid === undefined) throw new Error(`${what}: no pid`);
  return { pid: child.pid, output: child.output, stop };
}

/** Our node as a bench runs it, started: where it listens, its pid, its output, stop(). */
export interface OurNode extends Started {
  readonly port: number;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
}

/**
 * `stateweave serve` on a free port of 127.0.0.1 with LevelDB in a new
 * temporary directory (removed by stop()), warnings only, OUR_LIMITS, then
 * `serveArgs`; node flags are --no-node-snapshot and `nodeArgs`. Resolves
 * once `ready(base)` (default: GET /readyz answers 200).
 */
export async function startOurNode(options: {
  readonly name: string;
  readonly pin: boolean;
  readonly serveArgs?: readonly string[];
  /** @default OUR_EXTRA_NODE_ARGS (BENCH_OUR_NODE_ARGS) */
  readonly nodeArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  readonly ready?: (base: string) => Promise<boolean>;
  /** @default 20000 */
  readonly timeoutMs?: number;
  /** @default 5 */
  readonly pollMs?: number;
}): Promise<OurNode> {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const dir = await mkdtemp(join(tmpdir(), `stateweave-bench-${options.name}-`));
  const ready =
    options.ready ??
    (async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.ok === true);
  const argv = [
    process.execPath,
    '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
    ...(options.nodeArgs ?? OUR_EXTRA_NODE_ARGS),
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
    ...(options.serveArgs ?? []),
  ];
  const started = await startProcess(options.name, argv, {
    pin: options.pin,
    ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
    ready: () => ready(base),
    timeoutMs: options.timeoutMs ?? 20_000,
    pollMs: options.pollMs ?? 5,
    cleanup: () => rm(dir, { recursive: true, force: true }),
  });
  return { ...started, port, base };
}

export async function startSystem(name: string): Promise<RunningSystem> {
  const client = CLIENT_OF[name];
  if (!client) throw new Error(`unknown system ${name}`);
  if (name === 'ours-leveldb' || name === 'ours-fsync') {
    const node = await startOurNode({
      name,
      pin: PIN,
      cwd: BENCH_DIR,
      serveArgs: [name === 'ours-fsync' ? '--fsync' : '--no-fsync'],
    });
    const { pid, output, stop } = node;
    return { name, url: `ws://127.0.0.1:${node.port}`, client, pid, output, stop };
  }
  const port = await freePort();
  const argv = [
    process.execPath,
    ...(name.startsWith('ours') ? OUR_NODE_ARGS : []),
    benchScript('systems'),
    name,
    String(port),
  ];
  const system = await startProcess(name, argv, {
    pin: PIN,
    cwd: BENCH_DIR,
    ready: (output) => output.includes('READY'),
    timeoutMs: 20_000,
    pollMs: 5,
  });
  const { pid, output, stop } = system;
  return { name, url: `ws://127.0.0.1:${port}`, client, pid, output, stop };
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
