/**
 * The knobs of `npm run bench` (environment, read once; defaults in brackets):
 *
 *   BENCH_RUNS [3]           runs per scenario and system (median and p99 reported)
 *   BENCH_SECONDS [5]        load duration of one run of scenarios 1, 2, 3, 7, 13
 *   BENCH_SCENARIOS [1,2,3,4,5,6,7,8,9,10,11,12,13] (6: idle memory — idle.ts; 8: our extras, only our node —
 *                            extras.ts; 9: presence — presence.ts; 10: large document — big-doc.ts;
 *                            11: many documents over one socket, only our node — multiplex.ts;
 *                            12: node start with stored documents, only our node — startup.ts;
 *                            13: a large room, 500 clients editing one document — scenario-fanout.ts)
 *   BENCH_SAT_RUNS [BENCH_RUNS] runs of scenario 4;  BENCH_SAT_SECONDS [2] per rate step
 *   BENCH_SYSTEMS [ours-memory,ours-leveldb,reference,hocuspocus,relay]
 *   BENCH_IDLE_SHAPES, BENCH_IDLE_RUNS [2], BENCH_IDLE_PROCS: scenario 6 (see idle.ts)
 *   BENCH_BIG_MB, BENCH_BIG_JOINERS, BENCH_BIG_RUNS, BENCH_BIG_PROCS: scenario 10 (see big-doc.ts)
 *   BENCH_LARGE_EDITS [250000] scenario 5 single-character edits
 *   BENCH_CLIENTS [light]    fan-out clients: light (light-client.ts, no Y.Doc) or stock (y-websocket /
 *                            Hocuspocus providers, each applying every update; the generator saturates first)
 *   BENCH_QUICK=1            1 run, 3 s, 400 idle connections, 50k edits: a smoke test
 *   BENCH_OUR_NODE_ARGS      extra node flags for our node only (profiling: see profile-summary.ts)
 *   BENCH_NO_PIN=1           do not pin with taskset
 *   BENCH_RENDER=file.json   only re-render a saved result as Markdown
 *   BENCH_OUT [server/bench/results] where latest.md and latest.json are written
 */
import { RESULTS_DIR } from './paths.js';

const env = process.env;

export const QUICK = env.BENCH_QUICK === '1';
export const RUNS = Number(env.BENCH_RUNS ?? (QUICK ? 1 : 3));
export const SECONDS = Number(env.BENCH_SECONDS ?? (QUICK ? 3 : 5));
export const SCENARIOS = (env.BENCH_SCENARIOS ?? '1,2,3,4,5,6,7,8,9,10,11,12,13')
  .split(',')
  .map(Number);
export const LARGE_EDITS = Number(env.BENCH_LARGE_EDITS ?? (QUICK ? 50_000 : 250_000));
export const OUT_DIR = env.BENCH_OUT ?? RESULTS_DIR;
export const DEFAULT_SYSTEMS = ['ours-memory', 'ours-leveldb', 'reference', 'hocuspocus', 'relay'];
export const SYSTEM_LIST = (env.BENCH_SYSTEMS ?? DEFAULT_SYSTEMS.join(',')).split(',');

/** Servers on core 0, the load generator on core 1 (pinning.ts). */
export { PIN } from './pinning.js';

const clients = env.BENCH_CLIENTS ?? 'light';
if (clients !== 'light' && clients !== 'stock')
  throw new Error(`BENCH_CLIENTS must be light or stock, not ${clients}`);
export const CLIENTS: 'light' | 'stock' = clients;

/** Extra node flags for our node only, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
export const OUR_EXTRA_NODE_ARGS = (env.BENCH_OUR_NODE_ARGS ?? '').split(' ').filter(Boolean);

/** Scenario 4: the rate steps and their length. */
export const SAT = {
  docs: 10,
  perDoc: 5,
  rates: [20, 40, 80, 160, 240, 320, 400, 480, 560, 640, 720, 800],
  seconds: Number(env.BENCH_SAT_SECONDS ?? 2),
  runs: Number(env.BENCH_SAT_RUNS ?? RUNS),
};

export const log = (msg: string): void => {
  process.stderr.write(`${msg}\n`);
};
