/**
 * Scenario 8 of `npm run bench`: what only Stateweave has, so no peer column.
 *
 * - Function invocations: functions.mjs (`npm run bench:functions`) at reduced
 *   sizes on one node process with LevelDB, pinned like the other scenarios.
 * - Replication across three nodes: scripts/bench-cluster.mjs (`npm run
 *   bench:cluster`) run as a child process with a shorter load and partition; its
 *   printed lines are parsed. Its three nodes and its clients share every core.
 *
 * `runExtras` returns the scenario as run.mjs stores it in latest.json, with its
 * Markdown section (`markdown`) and its line of the summary table (`summaryRow`).
 * Alone: `node server/bench/extras.mjs` prints the section (not pinned).
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { REDUCED, runFunctionsBench, renderFunctionsTable } from './functions.mjs';

const CLUSTER_JS = fileURLToPath(new URL('../scripts/bench-cluster.mjs', import.meta.url));
const CLUSTER_TIMEOUT_MS = 180_000;
const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

/**
 * Runs bench-cluster.mjs; resolves with its stdout. It starts its own group
 * (detached) so that a timeout ends it and the nodes it spawned. It may not exit
 * by itself after printing (something keeps its loop alive), so once its last
 * line is out and it has had time to stop its nodes, the group is ended.
 */
function runClusterBench({ pin, loadMs, partitionMs, rate }) {
  const argv = [process.execPath, CLUSTER_JS];
  // run.mjs runs on core 1 when pinned and children inherit that: give the cluster every core back
  const full = pin ? ['taskset', '-c', `0-${availableParallelism() - 1}`, ...argv] : argv;
  return new Promise((resolve, reject) => {
    const child = spawn(full[0], full.slice(1), {
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
    const endGroup = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch (e) {
        if (e.code !== 'ESRCH') throw e; // ESRCH: the group is already gone
      }
    };
    const timer = setTimeout(endGroup, CLUSTER_TIMEOUT_MS);
    let lingering;
    child.stdout.on('data', (d) => {
      out += d;
      if (!lingering && /catch-up after/.test(out))
        lingering = setTimeout(() => ((finished = true), endGroup()), 3000);
    });
    child.stderr.on('data', (d) => (err += d));
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

function parseCluster(out) {
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
export async function runExtras({ log = () => {}, pin = false, quick = false } = {}) {
  const title = 'our extras: function invocations on one node, replication across three nodes';
  const scenario = { title, kind: 'extras' };
  log('  functions (reduced npm run bench:functions)');
  try {
    scenario.functions = await runFunctionsBench({
      sizes: REDUCED,
      pin,
      log: (m) => log(`  ${m}`),
    });
  } catch (err) {
    scenario.functions = { error: String(err?.message ?? err) };
    log(`  functions failed: ${err?.message ?? err}`);
  }
  log('  three-node replication (shortened npm run bench:cluster)');
  try {
    scenario.cluster = parseCluster(
      await runClusterBench({
        pin,
        loadMs: quick ? 3000 : 5000,
        partitionMs: quick ? 3000 : 5000,
        rate: 100,
      }),
    );
    log(
      `    replication p50 ${fmt(scenario.cluster.p50)} ms, p99 ${fmt(scenario.cluster.p99)} ms; catch-up ${scenario.cluster.catchUpMs ?? '?'} ms`,
    );
  } catch (err) {
    scenario.cluster = { error: String(err?.message ?? err) };
    log(`  cluster failed: ${err?.message ?? err}`);
  }
  scenario.markdown = renderExtras(scenario).join('\n');
  scenario.summaryRow = summaryRowOf(scenario);
  return scenario;
}

/** One line for run.mjs's summary table (columns: memory, LevelDB, reference, hocuspocus, relay); the figures go under LevelDB. */
function summaryRowOf(sc) {
  const rows = sc.functions?.rows ?? [];
  const c = rows.find((r) => r.id === 'c' && r.docs > 1 && !r.error);
  const g = rows.find((r) => r.id === 'g' && !r.error);
  const http = c
    ? `HTTP ${c.concurrency} in flight over ${c.docs} docs ${fmt(c.perSec, 0)}/s, p99 ${fmt(c.p99)} ms`
    : 'HTTP failed';
  const sdk = g ? `SDK (${g.transport}) one doc ${fmt(g.perSec, 0)}/s` : 'SDK failed';
  const repl =
    sc.cluster && !sc.cluster.error
      ? `replication p50 / p99 ${fmt(sc.cluster.p50)} / ${fmt(sc.cluster.p99)} ms`
      : 'replication failed';
  return `| 8. extras — function invocations; 3-node replication | | ${http}; ${sdk}; ${repl} | | | |`;
}

export function renderExtras(sc) {
  const lines = [];
  lines.push(
    'Function invocations: `npm run bench:functions` at reduced sizes (one node process, LevelDB, stored before reply; latency in ms from the call, open-loop rows from the scheduled send time).',
  );
  lines.push('');
  if (sc.functions?.error) lines.push(`Failed: ${sc.functions.error}`);
  else if (sc.functions) lines.push(...renderFunctionsTable(sc.functions));
  lines.push('');
  const c = sc.cluster;
  lines.push(
    'Three nodes (`npm run bench:cluster`, shortened): a client on n1 writes, a client on n3 sees it.',
  );
  lines.push('');
  if (!c || c.error) {
    lines.push(`Failed: ${c?.error ?? 'not run'}`);
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

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const sc = await runExtras({
    log: (m) => process.stderr.write(`${m}\n`),
    quick: process.env.BENCH_QUICK === '1',
  });
  process.stdout.write(`### 8. ${sc.title}\n\n${sc.markdown}\n`);
}
