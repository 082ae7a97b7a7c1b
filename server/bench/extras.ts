/**
 * Scenario 8 of `npm run bench`: what only Stateweave has, so no peer column.
 *
 * - Function invocations: functions.ts (`npm run bench:functions`) at reduced
 *   sizes on one node process with LevelDB, pinned like the other scenarios.
 * - Replication across three nodes: scripts/bench-cluster.mjs (`npm run
 *   bench:cluster`) run as a child process with a shorter load and partition; its
 *   printed lines are parsed. Its three nodes and its clients share every core.
 *
 * `runExtras` returns the scenario as run.ts stores it in latest.json, with its
 * Markdown section (`markdown`) and its line of the summary table (`summaryRow`).
 * Alone: `node server/dist/bench/extras.js` prints the section (not pinned).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  REDUCED,
  runFunctionsBench,
  renderFunctionsTable,
  type FunctionsResults,
} from './functions.js';
import { fmt } from './functions-load.js';
import { BENCH_DIR, isEntryPoint } from './paths.js';
import { isFailed, type ExtrasScenario, type FailedRun } from './results.js';
import { errorMessage } from './wait.js';

/** server/scripts/bench-cluster.mjs (`npm run bench:cluster`), run as it is. */
const CLUSTER_JS = join(BENCH_DIR, '..', 'scripts', 'bench-cluster.mjs');
const CLUSTER_TIMEOUT_MS = 180_000;

/** What bench-cluster.mjs printed, parsed. */
export interface ClusterResult {
  rate: number;
  writes: number;
  p50: number;
  p99: number;
  max: number;
  partitionS?: number;
  partitionWrites?: number;
  catchUpMs?: number;
  catchUpBytes?: number;
  output: string;
}
/** Scenario 8 as latest.json stores it. */
export interface ExtrasResult extends ExtrasScenario {
  functions?: FunctionsResults | FailedRun;
  cluster?: ClusterResult | FailedRun;
}

/**
 * Runs bench-cluster.mjs; resolves with its stdout. It starts its own group
 * (detached) so that a timeout ends it and the nodes it spawned. It may not exit
 * by itself after printing (something keeps its loop alive), so once its last
 * line is out and it has had time to stop its nodes, the group is ended.
 */
function runClusterBench({
  pin,
  loadMs,
  partitionMs,
  rate,
}: {
  pin: boolean;
  loadMs: number;
  partitionMs: number;
  rate: number;
}): Promise<string> {
  const argv = [process.execPath, CLUSTER_JS];
  // run.ts runs on core 1 when pinned and children inherit that: give the cluster every core back
  const full = pin ? ['taskset', '-c', `0-${availableParallelism() - 1}`, ...argv] : argv;
  const [command = process.execPath, ...args] = full;
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: {
        ...process.env,
        BENCH_LOAD_MS: String(loadMs),
        BENCH_PARTITION_MS: String(partitionMs),
        BENCH_RATE: String(rate),
      },
    });
    let out = '';
    let err = '';
    let finished = false;
    const endGroup = (): void => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: the group is already gone
      }
    };
    const timer = setTimeout(endGroup, CLUSTER_TIMEOUT_MS);
    let lingering: NodeJS.Timeout | undefined;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!lingering && /catch-up after/.test(out))
        lingering = setTimeout(() => ((finished = true), endGroup()), 3000);
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(lingering);
      if (code === 0 || finished) resolve(out);
      else
        reject(
          new Error(
            `bench-cluster.mjs exited with ${code ?? signal}: ${(err || out).trim().split('\n').slice(-3).join(' ')}`,
          ),
        );
    });
  });
}

function parseCluster(out: string): ClusterResult {
  const repl =
    /replication latency .*?at (\d+) writes\/s .*?\((\d+) writes\): p50 ([\d.]+) ms, p99 ([\d.]+) ms, max ([\d.]+) ms/.exec(
      out,
    );
  const catchUp =
    /catch-up after a ([\d.]+) s partition \((\d+) writes on each side\): (\d+) ms .*?, (\d+) bytes over/.exec(
      out,
    );
  if (!repl) throw new Error(`bench-cluster.mjs printed no replication line: ${out.slice(0, 300)}`);
  return {
    rate: Number(repl[1]),
    writes: Number(repl[2]),
    p50: Number(repl[3]),
    p99: Number(repl[4]),
    max: Number(repl[5]),
    ...(catchUp
      ? {
          partitionS: Number(catchUp[1]),
          partitionWrites: Number(catchUp[2]),
          catchUpMs: Number(catchUp[3]),
          catchUpBytes: Number(catchUp[4]),
        }
      : {}),
    output: out.trim(),
  };
}

/** Scenario 8. `log` gets progress lines; a failing part is recorded, not thrown. */
export async function runExtras({
  log = () => undefined,
  pin = false,
  quick = false,
}: {
  log?: (m: string) => void;
  pin?: boolean;
  quick?: boolean;
} = {}): Promise<ExtrasResult> {
  const title = 'our extras: function invocations on one node, replication across three nodes';
  const scenario: ExtrasResult = { title, kind: 'extras', markdown: '' };
  log('  functions (reduced npm run bench:functions)');
  try {
    scenario.functions = await runFunctionsBench({
      sizes: REDUCED,
      pin,
      log: (m) => log(`  ${m}`),
    });
  } catch (err) {
    scenario.functions = { error: errorMessage(err) };
    log(`  functions failed: ${errorMessage(err)}`);
  }
  log('  three-node replication (shortened npm run bench:cluster)');
  try {
    const cluster = parseCluster(
      await runClusterBench({
        pin,
        loadMs: quick ? 3000 : 5000,
        partitionMs: quick ? 3000 : 5000,
        rate: 100,
      }),
    );
    scenario.cluster = cluster;
    log(
      `    replication p50 ${fmt(cluster.p50)} ms, p99 ${fmt(cluster.p99)} ms; catch-up ${cluster.catchUpMs ?? '?'} ms`,
    );
  } catch (err) {
    scenario.cluster = { error: errorMessage(err) };
    log(`  cluster failed: ${errorMessage(err)}`);
  }
  scenario.markdown = renderExtras(scenario).join('\n');
  scenario.summaryRow = summaryRowOf(scenario);
  return scenario;
}

const measured = <T extends object>(x: T | FailedRun | undefined): T | undefined =>
  x && !isFailed(x) ? x : undefined;

/** One line for run.ts's summary table (columns: memory, LevelDB, reference, hocuspocus, relay); the figures go under LevelDB. */
function summaryRowOf(sc: ExtrasResult): string {
  const rows = measured(sc.functions)?.rows ?? [];
  const c = rows.find((r) => r.id === 'c' && r.docs > 1 && r.error === undefined);
  const g = rows.find((r) => r.id === 'g' && r.error === undefined);
  const http =
    c && c.error === undefined
      ? `HTTP ${c.concurrency} in flight over ${c.docs} docs ${fmt(c.perSec, 0)}/s, p99 ${fmt(c.p99)} ms`
      : 'HTTP failed';
  const sdk =
    g && g.error === undefined
      ? `SDK (${g.transport}) one doc ${fmt(g.perSec, 0)}/s`
      : 'SDK failed';
  const cluster = measured(sc.cluster);
  const repl = cluster
    ? `replication p50 / p99 ${fmt(cluster.p50)} / ${fmt(cluster.p99)} ms`
    : 'replication failed';
  return `| 8. extras — function invocations; 3-node replication | | ${http}; ${sdk}; ${repl} | | | |`;
}

export function renderExtras(sc: ExtrasResult): string[] {
  const lines: string[] = [];
  lines.push(
    'Function invocations: `npm run bench:functions` at reduced sizes (one node process, LevelDB, stored before reply; latency in ms from the call, open-loop rows from the scheduled send time).',
  );
  lines.push('');
  if (sc.functions && isFailed(sc.functions)) lines.push(`Failed: ${sc.functions.error}`);
  else if (sc.functions) lines.push(...renderFunctionsTable(sc.functions));
  lines.push('');
  const c = measured(sc.cluster);
  lines.push(
    'Three nodes (`npm run bench:cluster`, shortened): a client on n1 writes, a client on n3 sees it.',
  );
  lines.push('');
  if (!c) {
    lines.push(`Failed: ${sc.cluster && isFailed(sc.cluster) ? sc.cluster.error : 'not run'}`);
  } else {
    lines.push('| measure | p50 ms | p99 ms | max ms | load |');
    lines.push('|---|--:|--:|--:|---|');
    lines.push(
      `| replication latency n1 client → n3 client | ${fmt(c.p50)} | ${fmt(c.p99)} | ${fmt(c.max)} | ${c.rate} writes/s, ${c.writes} writes |`,
    );
    if (c.catchUpMs !== undefined) {
      lines.push(
        `| catch-up after a ${c.partitionS} s partition of n3 | ${c.catchUpMs} (once) | | | ${c.partitionWrites} writes on each side, ${c.catchUpBytes} bytes over n3's links (reconnect backoff included) |`,
      );
    }
  }
  return lines;
}

if (isEntryPoint(import.meta.url)) {
  const sc = await runExtras({
    log: (m) => {
      process.stderr.write(`${m}\n`);
    },
    quick: process.env.BENCH_QUICK === '1',
  });
  process.stdout.write(`### 8. ${sc.title}\n\n${sc.markdown}\n`);
}
