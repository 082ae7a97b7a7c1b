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
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, mkdir, writeFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { tmpdir, availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createClient } from '@stateweave/client';
import { freePort, OUR_LIMITS as LIMITS } from './launcher.js';
import { FIXTURES_DIR, MAIN_JS as MAIN, RESULTS_DIR, isEntryPoint } from './paths.js';
import { errorMessage } from './wait.js';
import {
  CALL_TIMEOUT_MS,
  TIMED_OUT,
  closedLoop,
  cpuMs,
  errorOf,
  fmt,
  invoke,
  ok,
  openLoop,
  post,
  quantile,
  sleep,
  summarize,
  withTimeout,
  type LoadSummary,
  type NodeAddress,
} from './functions-load.js';

// Every client comes from 127.0.0.1: the node runs with the per-address and
// per-connection limits raised (OUR_LIMITS, as run.ts does).
const FIXTURES = join(FIXTURES_DIR, 'functions');
const env = process.env;

/** The sizes of the matrix's rows. */
export interface FunctionsSizes {
  warmup: number;
  seqCalls: number;
  rate: number;
  openSeconds: number;
  docs: number;
  closedCalls: number;
  closedSeconds: number;
  concurrencies: number[];
  queryCalls: number;
  chainCalls: number;
  coldReps: number;
  sdkCalls: number;
  sdkWindow: number;
  sdkSeconds: number;
}
/** A row of the matrix: what ran, and its figures or its failure. */
export type FunctionsRow = {
  id: string;
  what: string;
  transport: string;
  docs: number;
} & (
  | (LoadSummary & {
      transport: string;
      nodeCpuPct: number;
      generatorCpuPct: number;
      meanBatch?: number;
      nodeLog?: string[];
      error?: undefined;
    })
  | { error: string }
);
type MeasuredRow = Extract<FunctionsRow, { nodeCpuPct: number }>;
export interface FunctionsTarget {
  target: string;
  measured: string;
  met: boolean | undefined;
}
export interface FunctionsResults {
  startedAt: string;
  machine: { cpus: number; cpu: string; node: string };
  config: { pin: boolean; spin: boolean; sizes: FunctionsSizes; rows: string };
  rows: FunctionsRow[];
  targets: FunctionsTarget[];
}
/** The node under test, with its token. */
interface FunctionsNode extends NodeAddress {
  pid: number;
  base: string;
  wsUrl: string;
  output(): string;
  stop(): Promise<void>;
}

export const FULL: FunctionsSizes = {
  warmup: 300,
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

/** `{ sum, count }` of the node's batch-size histogram (invocations per worker message and store write); undefined without it. */
async function batchStats(
  node: FunctionsNode,
): Promise<{ sum: number; count: number } | undefined> {
  const text = await (
    await fetch(`${node.base}/metrics`).catch(() => undefined)
  )
    ?.text()
    .catch(() => undefined);
  const sum = /^stateweave_function_batch_size_sum (\S+)$/m.exec(text ?? '');
  const count = /^stateweave_function_batch_size_count (\S+)$/m.exec(text ?? '');
  return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : undefined;
}

// ---- the node ----

async function startNode({
  pin,
  nodeArgs,
}: {
  pin: boolean;
  nodeArgs: string[];
}): Promise<FunctionsNode> {
  const port = await freePort();
  const nodeEnv = { ...env, STATEWEAVE_AUTH_SECRET: randomBytes(32).toString('hex') };
  const minted = spawnSync(
    process.execPath,
    [
      MAIN,
      'token',
      '--docs',
      '*',
      '--rights',
      'read,write,invoke,admin',
      '--ttl',
      '4h',
      '--sub',
      'bench',
    ],
    { env: nodeEnv, encoding: 'utf8' },
  );
  if (minted.status !== 0) throw new Error(`stateweave token failed: ${minted.stderr}`);
  const token = minted.stdout.trim();
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-bench-functions-'));
  const argv = [
    process.execPath,
    '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
    ...nodeArgs,
    MAIN,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--data',
    dir,
    '--functions',
    FIXTURES,
    '--log-level',
    'warn',
    ...LIMITS,
  ];
  const [command = process.execPath, ...args] = pin ? ['taskset', '-c', '0', ...argv] : argv;
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: nodeEnv });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let dead = false;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      dead = true;
      resolve();
    }),
  );
  const base = `http://127.0.0.1:${port}`;
  const node: FunctionsNode = {
    port,
    pid: child.pid ?? NaN,
    token,
    base,
    wsUrl: `ws://127.0.0.1:${port}`,
    output: () => out,
    async stop() {
      if (!dead) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (!dead) child.kill('SIGKILL');
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (dead || Date.now() > deadline) {
      await node.stop();
      throw new Error(
        `${dead ? 'the node exited during start' : 'the node did not start within 30 s'}:\n${out}`,
      );
    }
    const res = await fetch(`${base}/v1/functions`, {
      headers: { authorization: `Bearer ${token}` },
    }).catch(() => undefined);
    if (
      res?.ok &&
      ((await res.json()) as FunctionList).functions.some((f) => f.name === 'chainOut')
    )
      return node;
    await sleep(50);
  }
}

/** The answer of GET and POST /v1/functions. */
interface FunctionList {
  functions: { name: string; version?: string }[];
}

// ---- rows ----

type Input = (i: number) => { doc: string };
const hot: Input = () => ({ doc: 'hot' });
const many =
  (docs: number): Input =>
  (i) => ({ doc: `d${i % docs}` });

async function chainRow(
  node: FunctionsNode,
  { calls, warmup }: { calls: number; warmup: number },
): Promise<LoadSummary> {
  const client = createClient({ url: node.wsUrl, WebSocket, token: node.token });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const handle = client.open('chain/c0');
    if ((await withTimeout(handle.synced, CALL_TIMEOUT_MS)) === TIMED_OUT)
      throw new Error('the chain observer did not sync');
    const out = handle.doc.getMap<number>('out');
    let waiter: { seq: number; resolve: () => void } | undefined;
    out.observe(() => {
      if (waiter && (out.get('seq') ?? 0) >= waiter.seq) {
        waiter.resolve();
        waiter = undefined;
      }
    });
    const ms: number[] = [];
    const replyMs: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let started = performance.now();
    let misses = 0;
    const deadline = performance.now() + 60_000;
    for (let seq = 1; seq <= warmup + calls && performance.now() < deadline; seq++) {
      if (seq === warmup + 1) started = performance.now();
      const seen = new Promise<void>((resolve) => (waiter = { seq, resolve }));
      const t = performance.now();
      const r = await invoke(node, agent, 'chainIn', { id: 'c0', seq });
      const reply = performance.now() - t;
      const visible = ok(r) ? await withTimeout(seen, 5000) : TIMED_OUT;
      waiter = undefined;
      if (visible === TIMED_OUT) {
        errors++; // warm-up calls too: a chain that never completes must not look like an empty row
        firstError ??= ok(r) ? 'the trigger output was not seen within 5 s' : errorOf(r);
        if (++misses >= 3) break;
      } else if (seq > warmup) {
        ms.push(performance.now() - t);
        replyMs.push(reply);
      }
    }
    const replies = [...replyMs].sort((a, b) => a - b);
    return summarize(ms, errors, performance.now() - started, {
      mutationReplyP50: quantile(replies, 0.5),
      ...(firstError ? { firstError } : {}),
    });
  } finally {
    agent.destroy();
    await client.destroy();
  }
}

async function coldRow(node: FunctionsNode, { reps }: { reps: number }): Promise<LoadSummary> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const ms: number[] = [];
  const deployMs: number[] = [];
  const secondMs: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  for (let v = 0; v < reps; v++) {
    const tag = `${Date.now()}-${v}`;
    const code = `"use strict";
const { defineFunction } = require('@stateweave/server');
module.exports = { cold: defineFunction({ name: 'cold', doc: () => 'bench/cold', handler({ doc }) { doc.getMap('c').set('v', ${JSON.stringify(tag)}); return { v: ${JSON.stringify(tag)} }; } }) };
`;
    let t = performance.now();
    const deployed = await post(
      node,
      agent,
      '/v1/functions',
      JSON.stringify({ bundles: [{ file: 'cold.js', code }] }),
    );
    deployMs.push(performance.now() - t);
    if (!ok(deployed)) {
      errors++;
      firstError ??= `deploy: ${errorOf(deployed)}`;
      continue;
    }
    const version = (JSON.parse(deployed.body) as FunctionList).functions.find(
      (f) => f.name === 'cold',
    )?.version;
    t = performance.now();
    const first = await invoke(node, agent, 'cold', {});
    const firstCallMs = performance.now() - t;
    if (
      !ok(first) ||
      first.headers['stateweave-function-version'] !== version ||
      (JSON.parse(first.body) as { v?: string }).v !== tag
    ) {
      errors++;
      firstError ??= ok(first)
        ? `the first call ran version ${String(first.headers['stateweave-function-version'])}, not ${version}`
        : errorOf(first);
      continue;
    }
    ms.push(firstCallMs);
    t = performance.now();
    if (ok(await invoke(node, agent, 'cold', {}))) secondMs.push(performance.now() - t);
  }
  agent.destroy();
  const sorted = (xs: number[]): number[] => [...xs].sort((a, b) => a - b);
  return summarize(ms, errors, performance.now() - started, {
    deployP50: quantile(sorted(deployMs), 0.5),
    secondCallP50: quantile(sorted(secondMs), 0.5),
    ...(firstError ? { firstError } : {}),
  });
}

/** Worker threads started in this process (the pool's unit of isolation), to `online`: what a respawn costs. */
async function workerStartRow({ reps }: { reps: number }): Promise<LoadSummary> {
  const { Worker } = await import('node:worker_threads');
  const workerJs = fileURLToPath(new URL('../src/functions/worker.js', import.meta.url));
  const ms: number[] = [];
  const started = performance.now();
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    const worker = new Worker(workerJs, { env: {} });
    await new Promise((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    ms.push(performance.now() - t);
    await worker.terminate();
  }
  return summarize(ms, 0, performance.now() - started);
}

/**
 * Sandboxes made in this process (what the pool's workers make per deployment
 * version): isolate + context + guest script (Yjs) + a bundle, to ready; and the
 * resident memory one more costs, from the RSS growth over all of them.
 */
async function sandboxStartRow({ reps }: { reps: number }): Promise<LoadSummary> {
  // loaded here: isolated-vm's native module only for the row that uses it
  const { createSandbox } = await import('../src/functions/sandbox.js');
  const { guestScript } = await import('../src/functions/guest-script.js');
  const guest = { code: await guestScript() };
  const code = `const { defineFunction } = require('@stateweave/server');
    module.exports = defineFunction({ name: 'f', doc: () => 'd', handler: ({ doc }) => doc.getMap('m').size });`;
  const limits = { memoryMb: 64, maxResultBytes: 1 << 20 };
  (await createSandbox(guest, code, limits, 1000)).dispose(); // code cache, as a running worker has it
  globalThis.gc?.();
  const rss0 = process.memoryUsage().rss;
  const ms: number[] = [];
  const kept: Awaited<ReturnType<typeof createSandbox>>[] = [];
  const started = performance.now();
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    kept.push(await createSandbox(guest, `${code}\n// ${i}`, limits, 1000));
    ms.push(performance.now() - t);
  }
  const rssPerSandboxMb = (process.memoryUsage().rss - rss0) / reps / 1024 / 1024;
  for (const sandbox of kept) sandbox.dispose();
  return summarize(ms, 0, performance.now() - started, { rssPerSandboxMb });
}

/** The SDK's fastest path as the SDK defines it: `client.invoke` with the document open, `window` calls in flight. */
async function sdkRow(
  node: FunctionsNode,
  { calls, window, seconds }: { calls: number; window: number; seconds: number },
): Promise<LoadSummary> {
  let fetchCalls = 0;
  const countingFetch: typeof fetch = (url, init) => {
    fetchCalls++;
    return fetch(url, init);
  };
  const client = createClient({
    url: node.wsUrl,
    WebSocket,
    token: node.token,
    fetch: countingFetch,
  });
  try {
    const handle = client.open('bench/hot');
    if ((await withTimeout(handle.synced, CALL_TIMEOUT_MS)) === TIMED_OUT)
      throw new Error('the SDK handle did not sync');
    const call = () => withTimeout(client.invoke('bump', { doc: 'hot' }), CALL_TIMEOUT_MS);
    await Promise.all(Array.from({ length: 200 }, () => call().catch(() => undefined))); // warm-up
    fetchCalls = 0;
    const ms: number[] = [];
    let errors = 0;
    let firstError: string | undefined;
    let issued = 0;
    const started = performance.now();
    const deadline = started + seconds * 1000;
    await Promise.all(
      Array.from({ length: window }, async () => {
        while (issued < calls && performance.now() < deadline) {
          issued++;
          const t = performance.now();
          try {
            if ((await call()) === TIMED_OUT)
              throw new Error(`no answer within ${CALL_TIMEOUT_MS} ms`);
            ms.push(performance.now() - t);
          } catch (err) {
            errors++;
            const code = (err as { code?: unknown } | undefined)?.code;
            firstError ??= typeof code === 'string' ? code : errorMessage(err);
          }
        }
      }),
    );
    const wallMs = performance.now() - started;
    const transport =
      fetchCalls === 0
        ? 'WebSocket'
        : fetchCalls >= issued
          ? 'HTTP'
          : `mixed (${fetchCalls} of ${issued} over HTTP)`;
    return summarize(ms, errors, wallMs, {
      transport,
      window,
      fetchCalls,
      ...(firstError ? { firstError } : {}),
    });
  } finally {
    await client.destroy();
  }
}

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
      const meanBatch =
        batch0 && batch1 && batch1.count > batch0.count
          ? (batch1.sum - batch0.sum) / (batch1.count - batch0.count)
          : undefined;
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
    await closedLoop(node, {
      name: 'bump',
      input: hot,
      calls: s.warmup,
      seconds: 10,
      concurrency: 4,
    });
    await closedLoop(node, {
      name: 'bump',
      input: many(s.docs),
      calls: Math.max(s.warmup, s.docs),
      seconds: 10,
      concurrency: 4,
    });
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
function targetsOf(rows: FunctionsRow[], s: FunctionsSizes): FunctionsTarget[] {
  const find = (id: string, docs: number): MeasuredRow | undefined =>
    rows.find((r): r is MeasuredRow => r.id === id && r.docs === docs && !r.error);
  const targets: FunctionsTarget[] = [];
  for (const docs of [1, s.docs]) {
    const b = find('b', docs);
    targets.push({
      target: `warm mutation p50 ≤ 2 ms, p99 ≤ 10 ms at ${s.rate}/s over HTTP (${docs === 1 ? 'one hot document' : `${docs} documents`})`,
      measured: b
        ? `p50 ${fmt(b.p50)} ms, p99 ${fmt(b.p99)} ms, ${fmt(b.perSec, 0)}/s achieved, ${b.errors} errors`
        : 'not run',
      met: b ? b.p50 <= 2 && b.p99 <= 10 && b.perSec >= 0.95 * s.rate && b.errors === 0 : undefined,
    });
  }
  const g = find('g', 1);
  targets.push({
    target:
      "≥ 10,000 invocations/s on one hot document on the SDK's fastest path (WebSocket, batched)",
    measured: g ? `${fmt(g.perSec, 0)}/s over ${g.transport}, ${g.errors} errors` : 'not run',
    met: g ? g.perSec >= 10_000 && g.errors === 0 && g.transport === 'WebSocket' : undefined,
  });
  const f = find('f', 1);
  targets.push({
    target: 'first call of a new version ≤ 20 ms',
    measured: f ? `p50 ${fmt(f.p50)} ms, max ${fmt(f.max)} ms over ${f.n} deployments` : 'not run',
    met: f ? f.max <= 20 && f.errors === 0 : undefined,
  });
  return targets;
}

function machineInfo(): FunctionsResults['machine'] {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuinfo = ''; // not Linux: the model is unknown
  }
  return {
    cpus: cpus().length,
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown CPU').trim(),
    node: process.version,
  };
}

const note = (r: MeasuredRow): string => {
  const parts: string[] = [];
  if (r.offeredPerSec !== undefined)
    parts.push(`offered ${r.offeredPerSec}/s; generator max send lag ${fmt(r.maxSendLagMs)} ms`);
  if (r.mutationReplyP50 !== undefined)
    parts.push(`mutation reply p50 ${fmt(r.mutationReplyP50)} ms`);
  if (r.deployP50 !== undefined)
    parts.push(`deploy p50 ${fmt(r.deployP50)} ms; 2nd call p50 ${fmt(r.secondCallP50)} ms`);
  if (r.fetchCalls !== undefined) parts.push(`${r.fetchCalls} fetch calls`);
  if (r.meanBatch !== undefined) parts.push(`mean batch ${fmt(r.meanBatch, 1)}`);
  if (r.firstError) parts.push(`first error: ${r.firstError}`);
  return parts.join('; ');
};

/** The rows as a Markdown table (and the targets below it). */
export function renderFunctionsTable(results: FunctionsResults, { targets = true } = {}): string[] {
  const lines = [
    '| row | what | transport | docs | p50 ms | p99 ms | invocations/s | errors | CPU node / generator | notes |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const r of results.rows) {
    if (r.error !== undefined)
      lines.push(
        `| ${r.id} | ${r.what} | ${r.transport} | ${r.docs} | | | | failed | | ${r.error} |`,
      );
    else
      lines.push(
        `| ${r.id} | ${r.what} | ${r.transport} | ${r.docs} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.perSec, 0)} | ${r.errors} | ${fmt(r.nodeCpuPct, 0)}% / ${fmt(r.generatorCpuPct, 0)}% | ${note(r)} |`,
      );
  }
  if (targets) {
    if (results.config.pin)
      lines.push(
        '',
        'The targets are for a 2-core machine; pinned, the node (with its worker threads) has one core. `BENCH_NO_PIN=1` gives it both, shared with the generator.',
      );
    lines.push('', '| issue 5 target | measured | met |', '|---|---|---|');
    for (const t of results.targets)
      lines.push(
        `| ${t.target} | ${t.measured} | ${t.met === undefined ? '–' : t.met ? 'yes' : '**no**'} |`,
      );
  }
  return lines;
}

export function renderFunctionsMarkdown(results: FunctionsResults): string {
  const m = results.machine;
  return [
    `Functions bench, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC — ${m.cpus}× ${m.cpu}, Node ${m.node}; ` +
      `${results.config.pin ? 'node pinned to core 0 (worker pool included), load generator to core 1' : 'not pinned'}; ` +
      'one node process, LevelDB (stored before reply), HS256 tokens on every call. Latency in ms from the call (row b: from its scheduled send time); ' +
      "\"CPU\" is each process's CPU time over the row's wall time (100% = one core; the node's includes its worker threads).",
    '',
    ...renderFunctionsTable(results),
    '',
  ].join('\n');
}

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

const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const PIN =
  env.BENCH_PINNED === '1' ||
  (hasTaskset && availableParallelism() >= 2 && env.BENCH_NO_PIN !== '1');

if (isEntryPoint(import.meta.url)) {
  if (PIN && env.BENCH_PINNED !== '1') {
    // the load generator goes to core 1 (the node is spawned on core 0)
    const child = spawn(
      'taskset',
      [
        '-c',
        '1',
        process.execPath,
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        ...process.argv.slice(2),
      ],
      {
        stdio: 'inherit',
        env: { ...env, BENCH_PINNED: '1' },
      },
    );
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
    child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
  } else {
    await main();
  }
}
