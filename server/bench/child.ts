/**
 * A process the bench starts (a system, a node): its output kept for the error
 * when it does not start, and a stop that escalates to SIGKILL after 5 s.
 */
import { spawn, type SpawnOptions } from 'node:child_process';
import { sleep } from './wait.js';

export interface BenchChild {
  readonly pid: number | undefined;
  /** stdout and stderr so far. */
  output(): string;
  /** It has exited. */
  dead(): boolean;
  /** SIGTERM, then SIGKILL if it is still there after 5 s. */
  stop(): Promise<void>;
}

export const spawnCaptured = (
  command: string,
  args: readonly string[],
  options: Omit<SpawnOptions, 'stdio'>,
): BenchChild => {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  let dead = false;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      dead = true;
      resolve();
    }),
  );
  return {
    pid: child.pid,
    output: () => out,
    dead: () => dead,
    async stop() {
      if (dead) return;
      child.kill('SIGTERM');
      await Promise.race([exited, sleep(5000)]);
      if (!dead) child.kill('SIGKILL');
    },
  };
};
