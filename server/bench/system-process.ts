/**
 * Starting one benchmarked system (`systems.ts`) as its own process with an IPC
 * channel, for the benches that read its memory from inside (idle.ts, big-doc.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { SystemEndpoint } from './light-client.js';
import { benchScript } from './paths.js';
import { rssKb } from './proc-stats.js';
import type { MemoryAnswer, SystemRequest } from './systems.js';
import { sleep } from './wait.js';

export { procMemKb, resetPeakRss, rssKb } from './proc-stats.js';
export { sleep } from './wait.js';

/** Resolves with the first match of `pattern` on the child's stdout; rejects on `FAIL …`, exit or timeout. */
export function waitLine(
  child: ChildProcess,
  pattern: RegExp,
  ms: number,
  what: string,
): Promise<RegExpExecArray> {
  const stdout = child.stdout;
  if (!stdout) return Promise.reject(new Error(`${what}: no stdout`));
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited ${code}`));
    };
    const onData = (d: Buffer | string): void => {
      buf += d.toString();
      const fail = /FAIL (.*)/.exec(buf);
      const m = pattern.exec(buf);
      if (m || fail) {
        clearTimeout(timer);
        stdout.off('data', onData);
        child.off('exit', onExit);
        if (fail) reject(new Error(`${what}: ${fail[1]}`));
        else if (m) resolve(m);
      }
    };
    stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

export interface SystemMemory extends MemoryAnswer {
  rssAfterGcKb: number;
}

/** A system started with an IPC channel: its memory from inside, heap snapshots, stop(). */
export interface IpcSystem extends SystemEndpoint {
  pid: number;
  port: number;
  memory(): Promise<SystemMemory>;
  snapshot(path: string): Promise<string>;
  stop(): Promise<void>;
}

/** Starts `name` (ours-memory, reference, hocuspocus, relay) with --expose-gc. */
export async function startSystem(name: string, nodeArgs: string[] = []): Promise<IpcSystem> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeArgs, benchScript('systems'), name, '0'],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  const stdout = child.stdout;
  if (!stdout) throw new Error(`${name}: no stdout`);
  stdout.setEncoding('utf8');
  let port: number;
  try {
    port = Number((await waitLine(child, /READY (\d+)/, 60_000, name))[1]);
  } catch (err) {
    child.kill('SIGKILL'); // a system that never said READY is not left running
    throw err;
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error(`${name}: no pid`);
  // The system's own log (warnings and errors) on stderr, when asked: BENCH_SYSTEM_LOG=1.
  if (process.env.BENCH_SYSTEM_LOG === '1')
    stdout.on('data', (d: string) => process.stderr.write(d));
  const ask = <K extends 'memory' | 'snapshot'>(
    message: SystemRequest,
    key: K,
    ms: number,
  ): Promise<unknown> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no ${key} answer`)), ms);
      const onMessage = (m: unknown): void => {
        if (typeof m !== 'object' || m === null || !(key in m)) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve((m as Record<K, unknown>)[key]);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  return {
    name,
    pid,
    port,
    url: `ws://127.0.0.1:${port}`,
    client: name === 'hocuspocus' ? 'hocuspocus' : 'y-websocket',
    memory: async () => ({
      ...((await ask('memory', 'memory', 30_000)) as MemoryAnswer),
      rssAfterGcKb: rssKb(pid),
    }),
    snapshot: async (path) => String(await ask({ snapshot: path }, 'snapshot', 120_000)),
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
    },
  };
}
