/**
 * Where the bench's files are. The compiled scripts run from `server/dist/bench`;
 * the peers (`node_modules`, own package.json), the function fixtures and the
 * results stay in the source folder `server/bench`.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** server/dist/bench: the compiled scripts, spawned as child processes by path. */
export const DIST_BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
/** server/bench: peers, fixtures and results. */
export const BENCH_DIR = fileURLToPath(new URL('../../bench/', import.meta.url));
/** The node's CLI (`stateweave serve`). */
export const MAIN_JS = fileURLToPath(new URL('../src/main.js', import.meta.url));
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const FIXTURES_DIR = join(BENCH_DIR, 'fixtures');

/** The compiled bench script `name` (e.g. `systems`), to spawn. */
export const benchScript = (name: string): string => join(DIST_BENCH_DIR, `${name}.js`);

/** True when the module at `moduleUrl` is the process's entry point (run, not imported). */
export const isEntryPoint = (moduleUrl: string): boolean =>
  process.argv[1] === fileURLToPath(moduleUrl);
