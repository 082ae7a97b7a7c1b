#!/usr/bin/env node
/**
 * `npm run bench:functions` — function invocation latency and throughput on one node.
 *
 * A real node runs as its own process (`main.js serve` with LevelDB in a temporary
 * directory, so every mutation is stored before it is answered; HS256 tokens on;
 * fixtures from bench/fixtures/functions), pinned to core 0 with taskset when
 * available; this process is the load generator (re-executed on core 1). Rows:
 *
 *   a  warm mutation, HTTP, sequential, one hot document
 *   b  warm mutation, HTTP, open loop at a fixed offered rate (latency measured from
 *      each call's scheduled send time, so a stall is not hidden), hot and many docs
 *   c  warm mutation, HTTP, closed loop at 32 / 64 in flight, hot and many docs
 *   d  query, HTTP, sequential
 *   e  trigger chain: a mutation writes `in`, a change trigger copies it to `out`;
 *      time from the call until a WebSocket client sees `out`
 *   f  cold: deploy a new version (POST /v1/functions, admin token), time its first call
 *   g  the SDK: `createClient` with the document open, `client.invoke` with a window
 *      of calls in flight on one hot document; the row names the transport used
 *      (fetch calls counted through the SDK's `fetch` option: none means WebSocket)
 *   i  a sandbox's start (isolate, context, Yjs, bundle) and the RSS one costs
 *   w  a worker thread's start to `online` (what a respawn after a timeout costs)
 *
 * Every loop is bounded in count and time. Writes results/functions.md and .json.
 * The node: functions-node.ts; the rows beyond plain loops: functions-rows.ts; the
 * loops: functions-load.ts; the report: functions-report.ts.
 *
 * Environment (defaults in brackets):
 *   BENCH_FN_QUICK=1           reduced sizes (what `npm run bench` scenario 8 uses)
 *   BENCH_FN_ROWS [abcdefgiw]  which rows (i: sandbox start and RSS, w: worker thread start, for docs/functions.md)
 *   BENCH_FN_RATE [2000]       offered invocations/s of row b
 *   BENCH_FN_SECONDS [5]       duration of row b (count = rate × seconds)
 *   BENCH_FN_DOCS [100]        documents of the "many" rows
 *   BENCH_FN_SDK_CALLS [20000] calls of row g;  BENCH_FN_WINDOW [1000] calls in flight
 *   BENCH_NO_PIN=1             do not pin;  BENCH_OUR_NODE_ARGS  extra node flags
 *   BENCH_OUT [server/bench/results]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { closedLoop, cpuMs, fmt, openLoop, type LoadSummary } from './functions-load.js';
import { batchStats, startNode, type HistogramStats } from './functions-node.js';
import {
  machineInfo,
  renderFunctionsMarkdown,
  targetsOf,
  type FunctionsResults,
  type FunctionsRow,
  type FunctionsSizes,
} from './functions-report.js';
import {
  chainRow,
  coldRow,
  hot,
  many,
  sandboxStartRow,
  sdkRow,
  workerStartRow,
} from './functions-rows.js';
import { RESULTS_DIR, isEntryPoint } from './paths.js';
import { PIN, runPinned } from './pinning.js';
import { errorMessage } from './wait.js';

export {
  renderFunctionsMarkdown,
  renderFunctionsTable,
  type FunctionsResults,
  type FunctionsRow,
  type FunctionsSizes,
} from './functions-report.js';

const env = process.env;

export const FULL: FunctionsSizes = {
  warmup: 300,
  warmupSeconds: 5,
  seqCalls: 2000,
  rate: 2000,
  openSeconds: 5,
  docs: 100,
  closedCalls: 4000,
  closedSeconds: 10,
  concurrencies: [32, 64],
  queryCalls: 2000,
  chainCalls: 300,
  coldReps: 10,
  sdkCalls: 20_000,
  sdkWindow: 1000,
  sdkSeconds: 30,
};
export const REDUCED: FunctionsSizes = {
  warmup: 200,
  warmupSeconds: 0,
  seqCalls: 500,
  rate: 2000,
  openSeconds: 2,
  docs: 100,
  closedCalls: 2000,
  closedSeconds: 5,
  concurrencies: [32],
  queryCalls: 500,
  chainCalls: 100,
  coldReps: 5,
  sdkCalls: 5000,
  sdkWindow: 1000,
  sdkSeconds: 15,
};

// ---- the matrix ----

/**
 * Runs the rows on one fresh node and returns `{ config, rows, targets }`.
 * `log` gets one progress line per row.
 */
export async function runFunctionsBench({
  sizes = FULL,
  rows = 'abcdefgi',
  pin = false,
  spin = pin,
  nodeArgs = [],
  log = () => undefined,
}: {
  sizes?: FunctionsSizes;
  rows?: string;
  pin?: boolean;
  spin?: boolean;
  nodeArgs?: string[];
  log?: (m: string) => void;
} = {}): Promise<FunctionsResults> {
  const node = await startNode({ pin, nodeArgs });
  const out: FunctionsRow[] = [];
  const row = async (
    id: string,
    what: string,
    transport: string,
    docs: number,
    run: () => Promise<LoadSummary>,
  ): Promise<void> => {
    const batch0 = await batchStats(node);
    const logFrom = node.output().length;
    const cpu0 = cpuMs(node.pid);
    const gen0 = process.cpuUsage();
    const t0 = performance.now();
    try {
      const r = await run();
      const wallMs = performance.now() - t0;
      const nodeCpuPct = ((cpuMs(node.pid) - cpu0) / wallMs) * 100;
      const gen = process.cpuUsage(gen0);
      const generatorCpuPct = ((gen.user + gen.system) / 1000 / wallMs) * 100;
      const batch1 = await batchStats(node);
      const mean = (a?: HistogramStats, b?: HistogramStats): number | undefined =>
        a && b && b.count > a.count ? (b.sum - a.sum) / (b.count - a.count) : undefined;
      const meanBatch = mean(batch0?.batch, batch1?.batch);
      const meanGroups = mean(batch0?.groups, batch1?.groups);
      // the node logs at warn: what it said during a row with errors (e.g. a failing trigger) goes into the JSON
      const nodeLog =
        r.errors > 0
          ? node
              .output()
              .slice(logFrom)
              .split('\n')
              .filter(Boolean)
              .slice(0, 3)
              .map((l) => l.slice(0, 400))
          : [];
      const result: FunctionsRow = {
        id,
        what,
        transport: r.transport ?? transport,
        docs,
        ...r,
        nodeCpuPct,
        generatorCpuPct,
        ...(meanBatch !== undefined ? { meanBatch } : {}),
        ...(meanGroups !== undefined ? { meanGroups } : {}),
        ...(nodeLog.length ? { nodeLog } : {}),
      };
      out.push(result);
      log(
        `  ${id} ${what} [${result.transport}, ${docs} doc(s)]: p50 ${fmt(result.p50)} ms, p99 ${fmt(result.p99)} ms, ${fmt(result.perSec, 0)}/s, errors ${result.errors}${result.firstError ? ` (${result.firstError})` : ''}`,
      );
    } catch (err) {
      out.push({ id, what, transport, docs, error: errorMessage(err) });
      log(`  ${id} ${what}: failed: ${errorMessage(err)}`);
    }
  };
  const s = sizes;
  try {
    // warm-up: JIT on both sides, every document of the "many" rows loaded
    for (const input of [hot, many(s.docs)]) {
      const warmupMs = s.warmupSeconds * 1000;
      const t0 = performance.now();
      // at least `warmup` calls (every document once), and on for `warmupSeconds`
      do {
        await closedLoop(node, {
          name: 'bump',
          input,
          calls: Math.max(s.warmup, s.docs),
          seconds: 10,
          concurrency: 4,
        });
      } while (performance.now() - t0 < warmupMs);
    }
    await closedLoop(node, { name: 'peek', input: hot, calls: 50, seconds: 5, concurrency: 1 });
    if (rows.includes('a')) {
      await row('a', 'warm mutation, sequential', 'HTTP', 1, () =>
        closedLoop(node, {
          name: 'bump',
          input: hot,
          calls: s.seqCalls,
          seconds: 20,
          concurrency: 1,
        }),
      );
    }
    if (rows.includes('b')) {
      for (const [docs, input] of [
        [1, hot],
        [s.docs, many(s.docs)],
      ] as const) {
        await row(
          'b',
          `warm mutation, open loop at ${s.rate}/s offered for ${s.openSeconds} s`,
          'HTTP',
          docs,
          () => openLoop(node, { name: 'bump', input, rate: s.rate, seconds: s.openSeconds, spin }),
        );
      }
    }
    if (rows.includes('c')) {
      for (const concurrency of s.concurrencies) {
        for (const [docs, input] of [
          [1, hot],
          [s.docs, many(s.docs)],
        ] as const) {
          await row('c', `warm mutation, closed loop, ${concurrency} in flight`, 'HTTP', docs, () =>
            closedLoop(node, {
              name: 'bump',
              input,
              calls: s.closedCalls,
              seconds: s.closedSeconds,
              concurrency,
            }),
          );
        }
      }
    }
    if (rows.includes('d')) {
      await row('d', 'query, sequential', 'HTTP', 1, () =>
        closedLoop(node, {
          name: 'peek',
          input: hot,
          calls: s.queryCalls,
          seconds: 20,
          concurrency: 1,
        }),
      );
    }
    // g before e and f: a deployment (f) re-checks every trigger, and trigger runs (e) share the worker pool
    if (rows.includes('g')) {
      await row('g', `SDK client.invoke, document open, ${s.sdkWindow} in flight`, '?', 1, () =>
        sdkRow(node, { calls: s.sdkCalls, window: s.sdkWindow, seconds: s.sdkSeconds }),
      );
    }
    if (rows.includes('e')) {
      await row(
        'e',
        'trigger chain: mutation → change trigger → seen by a WebSocket client',
        'HTTP + WebSocket',
        1,
        () => chainRow(node, { calls: s.chainCalls, warmup: 20 }),
      );
    }
    if (rows.includes('f')) {
      await row('f', 'cold: first call of a newly deployed version', 'HTTP', 1, () =>
        coldRow(node, { reps: s.coldReps }),
      );
    }
    if (rows.includes('i')) {
      await row(
        'i',
        'sandbox start: isolate + context + Yjs + bundle (in the load generator; RSS per sandbox)',
        '–',
        0,
        () => sandboxStartRow({ reps: 20 }),
      );
    }
    if (rows.includes('w')) {
      await row(
        'w',
        "worker thread start to online (in the load generator, for a respawn's cost)",
        '–',
        0,
        () => workerStartRow({ reps: 5 }),
      );
    }
  } finally {
    await node.stop();
  }
  out.sort((x, y) => x.id.localeCompare(y.id)); // run order differs (see g); report in row order
  return {
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    config: { pin, spin, sizes, rows },
    rows: out,
    targets: targetsOf(out, s),
  };
}

/** Issue 5's targets, each with what was measured. */
async function main(): Promise<void> {
  const quick = env.BENCH_FN_QUICK === '1';
  const base = quick ? REDUCED : FULL;
  const num = (name: string, fallback: number): number =>
    env[name] !== undefined ? Number(env[name]) : fallback;
  const sizes: FunctionsSizes = {
    ...base,
    rate: num('BENCH_FN_RATE', base.rate),
    openSeconds: num('BENCH_FN_SECONDS', base.openSeconds),
    docs: num('BENCH_FN_DOCS', base.docs),
    sdkCalls: num('BENCH_FN_SDK_CALLS', base.sdkCalls),
    sdkWindow: num('BENCH_FN_WINDOW', base.sdkWindow),
  };
  const log = (msg: string): void => {
    process.stderr.write(`${msg}\n`);
  };
  log(`stateweave functions bench: ${quick ? 'reduced' : 'full'} sizes, pinned=${PIN}`);
  const results = await runFunctionsBench({
    sizes,
    rows: env.BENCH_FN_ROWS ?? 'abcdefgiw',
    pin: PIN,
    nodeArgs: (env.BENCH_OUR_NODE_ARGS ?? '').split(' ').filter(Boolean),
    log,
  });
  const md = renderFunctionsMarkdown(results);
  const outDir = env.BENCH_OUT ?? RESULTS_DIR;
  await mkdir(outDir, { recursive: true });
  await writeFile(join(outDir, 'functions.md'), md);
  await writeFile(join(outDir, 'functions.json'), JSON.stringify(results, null, 2));
  process.stdout.write(`\n${md}\n`);
  log(`written ${join(outDir, 'functions.md')} and functions.json`);
  process.exit(results.rows.some((r) => r.error) ? 1 : 0);
}

if (isEntryPoint(import.meta.url)) await runPinned(import.meta.url, main);
