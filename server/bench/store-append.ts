#!/usr/bin/env node
/**
 * `node server/dist/bench/store-append.js`: the LevelDB store's CPU per append at a
 * fixed rate, with and without a commit window (`commitWindowMs`), and how long an
 * append waits for its acknowledgement. No sockets, no Yjs: what the store adds to
 * an edit of the node (the edit path's other costs are in `npm run bench`).
 *
 * Appends of ~40 bytes (a small Yjs update) go to BENCH_APPEND_DOCS (100) documents at
 * each rate of BENCH_APPEND_RATES (500,4000 per second) for BENCH_APPEND_SECONDS (4),
 * issued by a 1 ms timer (so at 4,000/s four appends share a turn), each case in a
 * fresh directory; BENCH_APPEND_RUNS (3) runs, cases alternating. `idle` is the same
 * timer without appends: subtract it. CPU is the process's (the LevelDB threads
 * included), per append. Pinned to one core like the bench's load generator
 * (pinning.ts).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateDocName } from '../src/doc-name.js';
import { createLevelStore } from '../src/storage/level-store.js';
import { isEntryPoint } from './paths.js';
import { runPinned } from './pinning.js';
import { median, quantile } from './stats.js';

const env = process.env;
const DOCS = Number(env.BENCH_APPEND_DOCS ?? 100);
const RATES = (env.BENCH_APPEND_RATES ?? '500,4000').split(',').map(Number);
const SECONDS = Number(env.BENCH_APPEND_SECONDS ?? 4);
const RUNS = Number(env.BENCH_APPEND_RUNS ?? 3);
const WINDOWS = (env.BENCH_APPEND_WINDOWS ?? '0,4').split(',').map(Number);

interface Result {
  readonly cpuUsPerAppend: number;
  readonly ackP50Ms: number;
  readonly ackP99Ms: number;
  readonly appends: number;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** One case: `windowMs` undefined is the idle timer alone. */
const runCase = async (rate: number, windowMs: number | undefined): Promise<Result> => {
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-store-append-'));
  const store = await createLevelStore(dir, { commitWindowMs: windowMs ?? 0 });
  const update = new Uint8Array(40).fill(7);
  const names = Array.from({ length: DOCS }, (_, i) => validateDocName(`bench-${i}`));
  const acks: number[] = [];
  const pending: Array<Promise<unknown>> = [];
  let sent = 0;
  try {
    // Warm-up: every document written once.
    await Promise.all(names.map((name) => store.append(name, update, undefined, ['bench'])));
    const cpu0 = process.cpuUsage();
    const start = performance.now();
    const end = start + SECONDS * 1000;
    for (let now = start; now < end; now = performance.now()) {
      const due = Math.floor(((now - start) / 1000) * rate);
      for (; sent < due; sent++) {
        if (windowMs === undefined) continue;
        const at = performance.now();
        pending.push(
          store
            .append(names[sent % DOCS]!, update, undefined, ['bench'])
            .then(() => acks.push(performance.now() - at)),
        );
      }
      await sleep(1);
    }
    await Promise.all(pending);
    const cpu = process.cpuUsage(cpu0);
    return {
      cpuUsPerAppend: (cpu.user + cpu.system) / Math.max(1, sent),
      ackP50Ms: acks.length > 0 ? median(acks) : 0,
      ackP99Ms:
        acks.length > 0
          ? quantile(
              [...acks].sort((a, b) => a - b),
              0.99,
            )
          : 0,
      appends: sent,
    };
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
};

const main = async (): Promise<void> => {
  const cases: Array<number | undefined> = [undefined, ...WINDOWS];
  const label = (w: number | undefined): string => (w === undefined ? 'idle' : `window ${w} ms`);
  const results = new Map<string, Result[]>();
  for (let run = 0; run < RUNS; run++)
    for (const rate of RATES)
      for (const windowMs of run % 2 === 0 ? cases : [...cases].reverse()) {
        const result = await runCase(rate, windowMs);
        const key = `${rate}/s, ${label(windowMs)}`;
        results.set(key, [...(results.get(key) ?? []), result]);
        process.stderr.write(
          `run ${run + 1} ${key}: ${result.cpuUsPerAppend.toFixed(1)} µs CPU per append, ack p50 ${result.ackP50Ms.toFixed(2)} / p99 ${result.ackP99Ms.toFixed(2)} ms\n`,
        );
      }
  console.log(
    `\n| rate, case | CPU µs per append (median of ${RUNS}; runs) | ack p50 / p99 ms (median) |`,
  );
  console.log('|---|--:|--:|');
  for (const [key, runs] of results) {
    const cpu = runs.map((r) => r.cpuUsPerAppend);
    const cpuText = `${median(cpu).toFixed(1)} (${cpu.map((c) => c.toFixed(0)).join(', ')})`;
    const acks = key.includes('idle')
      ? ''
      : `${median(runs.map((r) => r.ackP50Ms)).toFixed(2)} / ${median(runs.map((r) => r.ackP99Ms)).toFixed(2)}`;
    console.log(`| ${key} | ${cpuText} | ${acks} |`);
  }
};

if (isEntryPoint(import.meta.url)) await runPinned(import.meta.url, main);
