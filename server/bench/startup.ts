#!/usr/bin/env node
/**
 * `npm run bench:startup` — a node's start with many stored documents, and the
 * first open of a stored document (issue 18: ready ≤ 1 s with 10,000 stored
 * documents; first open p99 ≤ 5 ms).
 *
 * Fills a LevelDB data directory through a real node (one small JSON write per
 * document over HTTP, so each document has its log, history and change-feed
 * entries as in production), stops it, then per run: starts `stateweave serve`
 * on that directory and times process start → the "listening" log line →
 * `/readyz` answering 200, and the node's CPU time up to then (`/proc`, steadier than
 * wall time on a shared machine); then opens BENCH_STARTUP_OPENS documents never opened
 * since the start, one at a time over one raw WebSocket each, and times sync step 1
 * sent → sync step 2 received (the document loaded from LevelDB and encoded), and the
 * node's main thread's time on a CPU for the whole open (connect → sync step 2, from
 * /proc schedstat: what the open cost, apart from the waits a loaded machine adds).
 * No peer has a comparable stored start: the reference server keeps documents in
 * memory and Hocuspocus needs a database extension, so this is ours alone.
 *
 * Environment: BENCH_STARTUP_DOCS [10000], BENCH_STARTUP_RUNS [5],
 * BENCH_STARTUP_OPENS [200], BENCH_OUT [server/bench/results] (startup.md, .json),
 * BENCH_STARTUP_DIR (keep the filled data directory there, and reuse it when it
 * exists: for profiling a start, e.g. with `node --cpu-prof`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as syncProtocol from 'y-protocols/sync';
import { MAIN_JS as MAIN, RESULTS_DIR } from './paths.js';
import { cpuMs, threadSchedMs } from './proc-stats.js';

/** One run: the start's times and the first opens' percentiles, in ms. */
interface StartupRun {
  listeningMs: number;
  readyMs: number;
  readyCpuMs: number;
  openP50: number;
  openP99: number;
  openMax: number;
  /** The node's main thread on a CPU for a whole first open (connect → sync step 2), ms. */
  openCpuP50: number;
  openCpuP99: number;
  /** …for the very first open after the start. */
  openCpuFirst: number;
  load: number;
}
type RunFigure = Exclude<keyof StartupRun, 'load'>;

const env = process.env;
const DOCS = Number(env.BENCH_STARTUP_DOCS ?? 10_000);
const RUNS = Number(env.BENCH_STARTUP_RUNS ?? 5);
const OPENS = Math.min(DOCS, Number(env.BENCH_STARTUP_OPENS ?? 200));
const OUT = env.BENCH_OUT ?? RESULTS_DIR;

const log = (m: string): void => {
  process.stderr.write(`[startup ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};
const percentile = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] ?? NaN;
};
const ms = (x: number): string => `${x.toFixed(x < 10 ? 1 : 0)} ms`;

/** Starts a node on `dir`; resolves with its URL and the times to "listening" and ready. */
async function startNode(dir: string): Promise<{
  url: string;
  port: number;
  pid: number;
  listeningMs: number;
  readyMs: number;
  readyCpuMs: number;
  stop: () => Promise<void>;
}> {
  const t0 = performance.now();
  const child = spawn(
    process.execPath,
    ['--no-node-snapshot', MAIN, 'serve', '--host', '127.0.0.1', '--port', '0', '--data', dir],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let output = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no "listening" in 60 s:\n${output}`)), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (!line.includes('"listening"')) continue;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => reject(new Error(`node exited ${code}:\n${output}`)));
  });
  const listeningMs = performance.now() - t0;
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 12_000; i++) {
    const res = await fetch(`${url}/readyz`).catch(() => undefined);
    if (res?.ok) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const readyMs = performance.now() - t0;
  // CPU spent up to ready: steadier than wall time on a shared machine.
  const readyCpuMs = cpuMs(child.pid ?? NaN);
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  };
  return { url, port, pid: child.pid ?? NaN, listeningMs, readyMs, readyCpuMs, stop };
}

/** Writes DOCS small documents through the node's HTTP API, 32 at a time. */
async function fill(url: string): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < DOCS) {
      const i = next++;
      const res = await fetch(`${url}/v1/docs/startup/d${i}`, {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ meta: { index: i, title: `document ${i}` }, body: `text of ${i}` }),
      });
      if (!res.ok) throw new Error(`PATCH d${i}: ${res.status} ${await res.text()}`);
      await res.arrayBuffer();
      if (i % 2000 === 0) log(`filled ${i}`);
    }
  };
  await Promise.all(Array.from({ length: 32 }, worker));
}

const step1 = (): Uint8Array => {
  const enc = encoding.createEncoder();
  encoding.writeVarUint(enc, 0);
  syncProtocol.writeSyncStep1(enc, new Y.Doc());
  return encoding.toUint8Array(enc);
};

/** Time from sync step 1 sent to sync step 2 received, on a fresh socket. */
/** A first open: its wall time (sync step 1 sent → sync step 2 received), and the node's main thread's CPU for all of it. */
interface Open {
  ms: number;
  cpuMs: number;
}

async function firstOpen(port: number, pid: number, doc: string): Promise<Open> {
  const before = threadSchedMs(pid).onCpu;
  const ws = new WebSocket(`ws://127.0.0.1:${port}/${doc}`);
  ws.binaryType = 'arraybuffer';
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  const t0 = performance.now();
  const took = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${doc}: no sync step 2 in 10 s`)), 10_000);
    ws.on('message', (data: ArrayBuffer) => {
      const dec = decoding.createDecoder(new Uint8Array(data));
      if (decoding.readVarUint(dec) !== 0 || decoding.readVarUint(dec) !== 1) return;
      clearTimeout(timer);
      resolve(performance.now() - t0);
    });
    ws.send(step1());
  });
  const cpuMs = threadSchedMs(pid).onCpu - before;
  ws.close();
  return { ms: took, cpuMs };
}

const KEEP = env.BENCH_STARTUP_DIR;
const reuse = KEEP !== undefined && existsSync(KEEP);
const dir = KEEP ?? (await mkdtemp(join(tmpdir(), 'stateweave-bench-startup-')));
try {
  if (reuse) log(`reusing the data directory ${dir}`);
  else {
    log(`filling ${DOCS} documents`);
    const filler = await startNode(dir);
    const fillStart = performance.now();
    await fill(filler.url);
    log(`filled in ${((performance.now() - fillStart) / 1000).toFixed(1)} s`);
    await filler.stop();
  }

  const runs: StartupRun[] = [];
  for (let run = 0; run < RUNS; run++) {
    const node = await startNode(dir);
    // Documents not opened since this start: a different stride each run.
    const opens: number[] = [];
    const cpu: number[] = [];
    for (let k = 0; k < OPENS; k++) {
      const i = (k * 7919 + run * 104_729) % DOCS;
      const open = await firstOpen(node.port, node.pid, `startup/d${i}`);
      opens.push(open.ms);
      cpu.push(open.cpuMs);
    }
    await node.stop();
    const r: StartupRun = {
      listeningMs: node.listeningMs,
      readyMs: node.readyMs,
      readyCpuMs: node.readyCpuMs,
      openP50: percentile(opens, 50),
      openP99: percentile(opens, 99),
      openMax: Math.max(...opens),
      openCpuP50: percentile(cpu, 50),
      openCpuP99: percentile(cpu, 99),
      openCpuFirst: cpu[0] ?? NaN,
      load: loadavg()[0] ?? NaN,
    };
    runs.push(r);
    log(
      `run ${run + 1}: listening ${ms(r.listeningMs)}, ready ${ms(r.readyMs)} (CPU ${ms(r.readyCpuMs)}); first open p50 ${ms(r.openP50)}, p99 ${ms(r.openP99)}, max ${ms(r.openMax)}; the node's main thread on a CPU per open p50 ${ms(r.openCpuP50)}, p99 ${ms(r.openCpuP99)}, first ${ms(r.openCpuFirst)} (load ${r.load.toFixed(1)})`,
    );
  }
  const med = (k: RunFigure): number =>
    percentile(
      runs.map((r) => r[k]),
      50,
    );
  const range = (k: RunFigure): string =>
    `${ms(Math.min(...runs.map((r) => r[k])))}–${ms(Math.max(...runs.map((r) => r[k])))}`;
  const md = [
    `## Node start with ${DOCS.toLocaleString('en')} stored documents (LevelDB)`,
    '',
    `${RUNS} runs, ${OPENS} first opens each; load average ${Math.min(...runs.map((r) => r.load)).toFixed(1)}–${Math.max(...runs.map((r) => r.load)).toFixed(1)}.`,
    '',
    '| unit | median | range | goal |',
    '|---|--:|--:|--:|',
    `| process start → "listening" | ${ms(med('listeningMs'))} | ${range('listeningMs')} | |`,
    `| process start → \`/readyz\` 200 | ${ms(med('readyMs'))} | ${range('readyMs')} | ≤ 1 s |`,
    `| the node's CPU time up to ready | ${ms(med('readyCpuMs'))} | ${range('readyCpuMs')} | |`,
    `| first open of a stored document, p50 | ${ms(med('openP50'))} | ${range('openP50')} | |`,
    `| first open of a stored document, p99 | ${ms(med('openP99'))} | ${range('openP99')} | ≤ 5 ms |`,
    `| the node's main thread on a CPU per first open (connect → sync step 2), p50 | ${ms(med('openCpuP50'))} | ${range('openCpuP50')} | |`,
    `| same, p99 | ${ms(med('openCpuP99'))} | ${range('openCpuP99')} | |`,
    `| same, the first open after the start | ${ms(med('openCpuFirst'))} | ${range('openCpuFirst')} | |`,
    '',
  ].join('\n');
  process.stdout.write(`${md}\n`);
  await mkdir(OUT, { recursive: true });
  await writeFile(join(OUT, 'startup.md'), md);
  await writeFile(join(OUT, 'startup.json'), JSON.stringify({ docs: DOCS, runs }, null, 2));
} finally {
  if (KEEP === undefined) await rm(dir, { recursive: true, force: true });
}
