/**
 * `stateweave serve` as a child process for the chaos suite: like the tests'
 * spawnNode (test/helpers/node.ts), with a longer start deadline (a machine
 * under chaos load starts a node slowly) and a child that is killed when it
 * misses it, so a failed start never leaves a process behind.
 */
import { spawn } from 'node:child_process';
import { MAIN, type ChildNode } from '../test/helpers/node.js';

export { stopChild } from '../test/helpers/node.js';

const START_TIMEOUT_MS = 30_000;

export const spawnChaosNode = async (
  dataDir: string,
  extraArgs: readonly string[] = [],
  port = 0,
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
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const listening = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node did not start within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const line = output.split('\n').find((l) => l.includes('"listening"'));
      if (line === undefined) return;
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
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
