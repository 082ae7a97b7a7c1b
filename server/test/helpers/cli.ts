/** Runs the real `stateweave` command in a child process, to its end. */
import { spawn } from 'node:child_process';
import { MAIN } from './node.js';

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliOptions {
  /** Written to the command's stdin, which is then closed. @default '' */
  readonly stdin?: string;
  /** The environment; the default is this process's. */
  readonly env?: NodeJS.ProcessEnv;
  /** Killed after this long, so a hang fails instead of waiting. @default 30000 */
  readonly limitMs?: number;
}

export const runCli = (args: string[], options: CliOptions = {}): Promise<CliRun> =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: options.env ?? process.env,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.limitMs ?? 30_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
