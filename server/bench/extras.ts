/**
 * Scenario 8 of `npm run bench`: what only Stateweave has, so no peer column.
 *
 * - Function invocations: functions.ts (`npm run bench:functions`) at reduced
 *   sizes on one node process with LevelDB, pinned like the other scenarios.
 * - Replication across three nodes: cluster.ts (`npm run bench:cluster`) run as
 *   a child process, one shorter run on the mesh and one on Redis; it writes its
 *   results as JSON. Not pinned (its default): with the servers on one core the
 *   three nodes queue behind each other (docs/cluster.md).
 *
 * `runExtras` returns the scenario as run.ts stores it in latest.json, with its
 * Markdown section (`markdown`) and its line of the summary table (`summaryRow`).
 * Alone: `node server/dist/bench/extras.js` prints the section (not pinned).
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ClusterBenchResults } from './cluster-results.js';
import {
  REDUCED,
  runFunctionsBench,
  renderFunctionsTable,
  type FunctionsResults,
} from './functions.js';
import { fmt } from './functions-load.js';
import { benchScript, isEntryPoint } from './paths.js';
import { isFailed, type ExtrasScenario, type FailedRun } from './results.js';
import { errorMessage } from './wait.js';

const CLUSTER_TIMEOUT_MS = 300_000;

/** The mesh's figures of a shortened `npm run bench:cluster` (cluster.ts), as latest.json stores them. */
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
  /** The same load on Redis, when it ran. */
  redis?: { p50: number; p99: number; max: number };
  output: string;
}
/** Scenario 8 as latest.json stores it. */
export interface ExtrasResult extends ExtrasScenario {
  functions?: FunctionsResults | FailedRun;
  cluster?: ClusterResult | FailedRun;
}

/**
 * Runs cluster.js (`npm run bench:cluster`) as a child process, one run on the
 * mesh and one on Redis, and reads the results it writes as JSON. Its own group
 * (detached), so that a timeout ends it and the nodes it started.
 */
async function runClusterBench({
  pin,
  loadMs,
  partitionMs,
  rate,
}: {
  pin: boolean;
  loadMs: number;
  partitionMs: number;
  rate: number;
}): Promise<{ results: ClusterBenchResults; output: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-bench-cluster-'));
  const json = join(dir, 'cluster.json');
  const argv = [process.execPath, benchScript('cluster')];
  // run.ts runs on core 1 when pinned and children inherit that: give the cluster every core back
  const full = pin ? ['taskset', '-c', `0-${cpus().length - 1}`, ...argv] : argv;
  const [command = process.execPath, ...args] = full;
  try {
    const output = await new Promise<string>((resolve, reject) => {
      const child = spawn(command, args, {
        stdio: ['ignore', 'pipe', 'pipe'],
        detached: true,
        env: {
          ...process.env,
          BENCH_LOAD_MS: String(loadMs),
          BENCH_PARTITION_MS: String(partitionMs),
          BENCH_RATE: String(rate),
          BENCH_RUNS: '1',
          BENCH_BACKPLANE: 'mesh,redis',
          BENCH_CLUSTER_ROWS: 'load,partition',
          BENCH_CLUSTER_PIN: 'none',
          BENCH_CLUSTER_JSON: json,
        },
      });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      const timer = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e; // ESRCH: already gone
        }
      }, CLUSTER_TIMEOUT_MS);
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else
          reject(
            new Error(
              `cluster.js exited with ${code ?? signal}: ${out.trim().split('\n').slice(-3).join(' ')}`,
            ),
          );
      });
    });
    return { results: JSON.parse(await readFile(json, 'utf8')) as ClusterBenchResults, output };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function clusterResultOf({
  results,
  output,
}: Awaited<ReturnType<typeof runClusterBench>>): ClusterResult {
  const mesh = results.runs.find((r) => r.backplane === 'mesh');
  const redis = results.runs.find((r) => r.backplane === 'redis');
  if (!mesh?.load) throw new Error(`the mesh run failed: ${mesh?.error ?? 'not run'}`);
  const { load, partition } = mesh;
  return {
    rate: results.options.rate,
    writes: load.writes,
    p50: load.p50Ms,
    p99: load.p99Ms,
    max: load.maxMs,
    ...(partition
      ? {
          partitionS: results.options.partitionMs / 1000,
          partitionWrites: partition.writesPerSide,
          catchUpMs: Math.round(partition.catchUpMs),
          catchUpBytes: partition.catchUpBytes,
        }
      : {}),
    ...(redis?.load
      ? { redis: { p50: redis.load.p50Ms, p99: redis.load.p99Ms, max: redis.load.maxMs } }
      : {}),
    output: output.trim(),
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
    const cluster = clusterResultOf(
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
      `| replication latency n1 client → n3 client (mesh) | ${fmt(c.p50)} | ${fmt(c.p99)} | ${fmt(c.max)} | ${c.rate} writes/s, ${c.writes} writes |`,
    );
    if (c.redis)
      lines.push(
        `| replication latency n1 client → n3 client (Redis) | ${fmt(c.redis.p50)} | ${fmt(c.redis.p99)} | ${fmt(c.redis.max)} | ${c.rate} writes/s |`,
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
