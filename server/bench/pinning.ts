/**
 * Pinning on a 2-core machine: servers on core 0, the load generator on core 1,
 * so the two never take each other's time (`BENCH_NO_PIN=1` turns it off). A
 * bench entry point calls `runPinned`: unless already pinned, it runs itself
 * again under `taskset -c 1` and forwards signals and the exit code.
 */
import { spawn, spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const { env } = process;
const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;

export const PIN =
  env.BENCH_PINNED === '1' ||
  (hasTaskset && availableParallelism() >= 2 && env.BENCH_NO_PIN !== '1');

/** Runs `main`, on core 1 when pinning (the entry point, `import.meta.url`, is run again there). */
export const runPinned = async (entryUrl: string, main: () => Promise<void>): Promise<void> => {
  if (!PIN || env.BENCH_PINNED === '1') return main();
  const child = spawn(
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      ...process.execArgv,
      fileURLToPath(entryUrl),
      ...process.argv.slice(2),
    ],
    { stdio: 'inherit', env: { ...env, BENCH_PINNED: '1' } },
  );
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
};
