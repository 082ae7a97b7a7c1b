/**
 * Starting one benchmarked system (`systems.mjs`) as its own process with an IPC
 * channel, for the benches that read its memory from inside (idle.mjs, big-doc.mjs).
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** { rss, hwm } of a process, in KB (`/proc/<pid>/status`). */
export const procMemKb = (pid) => {
  const status = spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout ?? '';
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN),
    hwm: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN),
  };
};
export const rssKb = (pid) => procMemKb(pid).rss;

/** Resets the process's peak RSS (VmHWM) to its current RSS; false where Linux does not allow it. */
export const resetPeakRss = (pid) => {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
};

/** Resolves with the first match of `pattern` on the child's stdout; rejects on `FAIL …`, exit or timeout. */
export function waitLine(child, pattern, ms, what) {
  return new Promise((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms);
    const onExit = (code) => {
      clearTimeout(timer);
      reject(new Error(`${what}: exited ${code}`));
    };
    const onData = (d) => {
      buf += d;
      const fail = /FAIL (.*)/.exec(buf);
      const m = pattern.exec(buf);
      if (m || fail) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        if (fail) reject(new Error(`${what}: ${fail[1]}`));
        else resolve(m);
      }
    };
    child.stdout.on('data', onData);
    child.once('exit', onExit);
  });
}

/**
 * Starts `name` (ours-memory, reference, hocuspocus, relay) with --expose-gc; returns
 * { name, pid, port, url, client, memory(), snapshot(path), stop() }.
 */
export async function startSystem(name, nodeArgs = []) {
  const child = spawn(
    process.execPath,
    ['--expose-gc', ...nodeArgs, join(HERE, 'systems.mjs'), name, '0'],
    { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] },
  );
  child.stdout.setEncoding('utf8');
  let port;
  try {
    [, port] = await waitLine(child, /READY (\d+)/, 60_000, name);
  } catch (err) {
    child.kill('SIGKILL'); // a system that never said READY is not left running
    throw err;
  }
  // The system's own log (warnings and errors) on stderr, when asked: BENCH_SYSTEM_LOG=1.
  if (process.env.BENCH_SYSTEM_LOG === '1') child.stdout.on('data', (d) => process.stderr.write(d));
  const ask = (message, key, ms) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${name}: no ${key} answer`)), ms);
      const onMessage = (m) => {
        if (!(key in m)) return;
        clearTimeout(timer);
        child.off('message', onMessage);
        resolve(m[key]);
      };
      child.on('message', onMessage);
      child.send(message);
    });
  return {
    name,
    pid: child.pid,
    port: Number(port),
    url: `ws://127.0.0.1:${port}`,
    client: name === 'hocuspocus' ? 'hocuspocus' : 'y-websocket',
    memory: async () => ({
      ...(await ask('memory', 'memory', 30_000)),
      rssAfterGcKb: rssKb(child.pid),
    }),
    snapshot: (path) => ask({ snapshot: path }, 'snapshot', 120_000),
    stop: async () => {
      child.kill('SIGTERM');
      await Promise.race([new Promise((r) => child.once('exit', r)), sleep(5000)]);
    },
  };
}
