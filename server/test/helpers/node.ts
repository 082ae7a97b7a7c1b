/**
 * Test nodes: in-process (createServer on 127.0.0.1:0) and child processes
 * (the real CLI, for restart and kill -9 tests). Every node started here is
 * stopped by the caller, by handle or by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { createServer, type ServerOptions, type StateweaveServer } from '../../src/server.js';
import { createMemoryStore } from '../../src/storage/level-store.js';

export const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url));

export const silentLogger = () => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export interface TestNode {
  readonly server: StateweaveServer;
  readonly port: number;
  readonly url: string;
  readonly wsUrl: string;
  close(): Promise<void>;
}

/** An in-process node on 127.0.0.1 with a free port; in-memory store unless one is given. */
export const startNode = async (options: ServerOptions = {}): Promise<TestNode> => {
  const server = createServer({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger(),
    store: options.store ?? (options.dataDir ? undefined : await createMemoryStore()),
    ...options,
  });
  let port: number;
  try {
    ({ port } = await server.listen());
  } catch (err) {
    // A half-started node (store open, workers up) would keep the test process alive for good.
    await server.close().catch(() => undefined);
    throw err;
  }
  let closed = false;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    wsUrl: `ws://127.0.0.1:${port}`,
    async close() {
      if (closed) return;
      closed = true;
      await server.close();
    },
  };
};

export const tempDir = async (): Promise<{ path: string; remove: () => Promise<void> }> => {
  const path = await mkdtemp(join(tmpdir(), 'stateweave-test-'));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
};

export interface ChildNode {
  readonly child: ChildProcess;
  readonly port: number;
  readonly wsUrl: string;
  readonly url: string;
  /** Everything the node printed (JSON log lines). */
  readonly output: () => string;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs `stateweave serve` as a separate process and waits for its "listening" line. */
const START_TIMEOUT_MS = 30_000;

export const spawnNode = async (
  dataDir: string,
  extraArgs: readonly string[] = [],
  port = 0,
  /** The child's environment. @default this process's */
  env: NodeJS.ProcessEnv = process.env,
): Promise<ChildNode> => {
  const child = spawn(
    process.execPath,
    [MAIN, 'serve', '--host', '127.0.0.1', '--port', String(port), '--data', dataDir, ...extraArgs],
    { stdio: ['ignore', 'pipe', 'pipe'], env },
  );
  let output = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const listening = new Promise<number>((resolve, reject) => {
    // Generous: on a loaded 2-core machine a node has taken 4 s to print its first line.
    // A node that never starts is killed, or it would hold the test until the runner's limit.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.includes('"listening"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`node exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
  const actualPort = await listening;
  return {
    child,
    port: actualPort,
    wsUrl: `ws://127.0.0.1:${actualPort}`,
    url: `http://127.0.0.1:${actualPort}`,
    output: () => output,
    exited,
  };
};

/** Sends a signal to a child node we started and waits for it to end. */
export const stopChild = async (node: ChildNode, signal: NodeJS.Signals = 'SIGTERM') => {
  if (node.child.exitCode === null && node.child.signalCode === null) node.child.kill(signal);
  return node.exited;
};
