/**
 * `npm run bench:cluster`: replication across three node processes on
 * 127.0.0.1, one node alone and the WebSocket mesh and Redis side by side, in
 * interleaved runs (a noisy minute of a shared machine hits every setup alike).
 *
 * Rows (cluster-load.ts, cluster-events.ts):
 * - cross-node edit latency at BENCH_RATE writes/s: a stock client on n1 writes,
 *   one on n3 timestamps each arrival; p50 and p99;
 * - CPU per update of every server process, against one node serving the same
 *   writers and reader alone;
 * - catch-up after n3 is cut off for BENCH_PARTITION_MS: time and bytes;
 * - catch-up bytes after Redis restarts without its data (Redis only);
 * - documents moved when a 4th node joins, and the time until it stored them;
 * - time until a killed node (kill -9) stops counting as live, and until a
 *   write to one of its documents is served by the others.
 *
 * Knobs: BENCH_RATE [1000], BENCH_RUNS [3], BENCH_LOAD_MS [10000],
 * BENCH_PARTITION_MS [30000], BENCH_BACKPLANE [single,mesh,redis],
 * BENCH_CLUSTER_ROWS [load,partition,redis-restart,join,kill],
 * BENCH_CLUSTER_PIN [none]: `none` lets the kernel place everything; `split`
 * runs the clients (this process) on core 1 and every server on core 0 (where
 * the three nodes and Redis then queue behind each other: a higher p50, see
 * docs/cluster.md);
 * BENCH_CLUSTER_NODE_ARGS: extra node flags (profiling: profile-summary.ts);
 * BENCH_CLUSTER_NODE_MAIN: another build's dist/src/main.js (before/after);
 * BENCH_CLUSTER_JSON=file writes the results as JSON (extras.ts reads it);
 * BENCH_CLUSTER_LATENCIES=file appends, per run, every write's send time and
 * latency as one JSON line (where in the load a tail is).
 */
import { appendFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { isEntryPoint } from './paths.js';
import {
  BACKPLANES,
  isBackplane,
  setUp,
  type Backplane,
  type BenchCluster,
} from './cluster-setup.js';
import { measureLoad, measurePartition } from './cluster-load.js';
import { measureJoin, measureKill, measureRedisRestart } from './cluster-events.js';
import { renderCluster } from './cluster-report.js';
import {
  ROWS,
  type ClusterBenchOptions,
  type ClusterBenchResults,
  type ClusterRun,
  type Row,
} from './cluster-results.js';
import { errorMessage } from './wait.js';
import { runPinned } from './pinning.js';

const JOIN_DOCS = 40;
const REDIS_OUTAGE_MS = 2000;

async function runOnce(
  backplane: Backplane,
  run: number,
  options: ClusterBenchOptions,
): Promise<ClusterRun> {
  const result: ClusterRun = { backplane, run };
  const has = (row: Row): boolean => options.rows.includes(row);
  const label = `[${backplane} run ${run}]`;
  let cluster: BenchCluster | undefined;
  try {
    cluster = await setUp(backplane, {
      serverCpus: options.split ? '0' : undefined,
      nodeFlags: options.nodeFlags,
      ...(options.mainJs ? { mainJs: options.mainJs } : {}),
    });

    const file = options.latenciesFile;
    const { figures, writer, reader } = await measureLoad(
      cluster,
      options.rate,
      options.loadMs,
      file === undefined
        ? undefined
        : (writes) => appendFileSync(file, `${JSON.stringify({ backplane, run, writes })}\n`),
    );
    result.load = figures;
    options.log(
      `${label} latency n1 client -> n3 client at ${options.rate} writes/s (${figures.writes} writes): ` +
        `p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms, max ${figures.maxMs.toFixed(1)} ms; ` +
        `CPU ${figures.cpuPerUpdateUs.toFixed(0)} µs per update (${Object.entries(
          figures.cpuByProcessUs,
        )
          .map(([name, us]) => `${name} ${us.toFixed(0)}`)
          .join(
            ', ',
          )}), clients ${figures.clientCpuPerUpdateUs.toFixed(0)}; load average ${figures.load.toFixed(1)}`,
    );
    if (backplane !== 'single') {
      if (has('partition')) {
        result.partition = await measurePartition(cluster, writer, reader, options.partitionMs);
        const p = result.partition;
        options.log(
          `${label} catch-up after a ${options.partitionMs / 1000} s partition (${p.writesPerSide} writes each side): ` +
            `${p.catchUpMs.toFixed(0)} ms, ${p.catchUpBytes} bytes over n3's links; document ${p.docBytes} bytes`,
        );
      }
      if (has('redis-restart') && backplane === 'redis') {
        result.redisRestart = await measureRedisRestart(cluster, writer, reader, REDIS_OUTAGE_MS);
        const r = result.redisRestart;
        options.log(
          `${label} Redis restarted without its data (${r.writesPerSide} writes each side meanwhile): ` +
            `${r.catchUpMs.toFixed(0)} ms, ${r.catchUpBytes} bytes over n3's Redis link until converged`,
        );
      }
      writer.destroy();
      reader.destroy();
      if (has('join')) {
        result.join = await measureJoin(cluster, JOIN_DOCS);
        const j = result.join;
        options.log(
          `${label} a node joins: home of ${j.moved} of ${j.docs} documents (R 3 of ${j.members}: expected ${((3 / j.members) * j.docs).toFixed(0)}), ` +
            `stored them ${j.storedMs.toFixed(0)} ms after its start`,
        );
      }
      if (has('kill')) {
        result.kill = await measureKill(cluster);
        const k = result.kill;
        options.log(
          `${label} kill -9 of n2: a write to one of its documents served on n3 after ${k.servedMs.toFixed(0)} ms; ` +
            `n1 and n3 no longer count it live after ${k.notLiveMs.toFixed(0)} ms`,
        );
      }
    } else {
      writer.destroy();
      reader.destroy();
    }
  } catch (err) {
    result.error = errorMessage(err);
    options.log(`${label} failed: ${result.error}`);
  } finally {
    await cluster?.close();
  }
  return result;
}

export async function runClusterBench(options: ClusterBenchOptions): Promise<ClusterBenchResults> {
  const runs: ClusterRun[] = [];
  for (let run = 1; run <= options.runs; run++)
    for (const backplane of options.backplanes) runs.push(await runOnce(backplane, run, options));
  const { log: _log, ...rest } = options;
  return { options: rest, runs };
}

export function optionsFromEnv(
  env: NodeJS.ProcessEnv = process.env,
): Omit<ClusterBenchOptions, 'log'> {
  const backplanes = (env.BENCH_BACKPLANE ?? BACKPLANES.join(',')).split(',');
  const rows = (env.BENCH_CLUSTER_ROWS ?? ROWS.join(',')).split(',');
  for (const b of backplanes) if (!isBackplane(b)) throw new Error(`unknown backplane ${b}`);
  for (const r of rows)
    if (!(ROWS as readonly string[]).includes(r)) throw new Error(`unknown row ${r}`);
  const pin = env.BENCH_CLUSTER_PIN ?? 'none';
  if (pin !== 'split' && pin !== 'none') throw new Error('BENCH_CLUSTER_PIN is split or none');
  return {
    rate: Number(env.BENCH_RATE ?? 1000),
    runs: Number(env.BENCH_RUNS ?? 3),
    loadMs: Number(env.BENCH_LOAD_MS ?? 10_000),
    partitionMs: Number(env.BENCH_PARTITION_MS ?? 30_000),
    backplanes: backplanes.filter(isBackplane),
    rows: rows as Row[],
    mainJs: env.BENCH_CLUSTER_NODE_MAIN,
    latenciesFile: env.BENCH_CLUSTER_LATENCIES,
    nodeFlags: (env.BENCH_CLUSTER_NODE_ARGS ?? '').split(' ').filter(Boolean),
    // cpus(), not availableParallelism(): the latter counts only this process's cores once pinned.
    split: pin === 'split' && cpus().length >= 2 && env.BENCH_NO_PIN !== '1',
  };
}

if (isEntryPoint(import.meta.url)) {
  const options = optionsFromEnv();
  const main = async (): Promise<void> => {
    const results = await runClusterBench({ ...options, log: (line) => console.log(line) });
    console.log(`\n${renderCluster(results).join('\n')}`);
    if (process.env.BENCH_CLUSTER_JSON)
      await writeFile(process.env.BENCH_CLUSTER_JSON, JSON.stringify(results, null, 2));
    // Providers of a failed run may keep reconnecting: end here.
    process.exit(results.runs.some((r) => r.error !== undefined) ? 1 : 0);
  };
  const fail = (err: unknown): void => {
    console.error(err);
    process.exit(1);
  };
  // Split: this process (the clients) on core 1; the servers are placed on core 0 as spawned.
  if (options.split) runPinned(import.meta.url, main).catch(fail);
  else main().catch(fail);
}
