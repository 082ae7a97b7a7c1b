#!/usr/bin/env node
/**
 * `npm run bench:multiplex` — the figures of issue 15 for many documents over one
 * socket: the time for one SDK client to open N documents (until every one is
 * synced) over one multiplexed WebSocket and over N sockets (`multiplex: false`),
 * and the node's RSS per extra document open on an existing socket. Our node only
 * (in-memory store, its own process); runs alternate between the two ways.
 *
 * Environment: BENCH_MUX_DOCS [100], BENCH_MUX_RUNS [5], BENCH_MUX_EXTRA [2000].
 */
import { spawn, type ChildProcess } from 'node:child_process';
import WebSocket from 'ws';
import { createClient, type StateweaveClient } from '@stateweave/client';
import { benchScript } from './paths.js';
import { rssKb } from './proc-stats.js';
import { sleep } from './wait.js';

const SYSTEMS_JS = benchScript('systems');
const DOCS = Number(process.env.BENCH_MUX_DOCS ?? 100);
const RUNS = Number(process.env.BENCH_MUX_RUNS ?? 5);
const EXTRA = Number(process.env.BENCH_MUX_EXTRA ?? 2000);

/** The upper median (what this bench has always printed). */
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

async function startNode(): Promise<{ child: ChildProcess; url: string; stop: () => void }> {
  const child = spawn(process.execPath, [SYSTEMS_JS, 'ours-memory', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('node did not start in 20 s')), 20_000);
    child.stdout.on('data', (d: Buffer) => {
      const m = /READY (\d+)/.exec(String(d));
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
  });
  return {
    child,
    url: `ws://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGTERM');
    },
  };
}

/** Opens `count` documents with one client; ms until all are synced. */
async function openAll(
  url: string,
  multiplex: boolean,
  prefix: string,
  count: number,
): Promise<{ ms: number; client: StateweaveClient }> {
  const client = createClient({ url, WebSocket, multiplex });
  const started = performance.now();
  const handles = Array.from({ length: count }, (_, i) => client.open(`${prefix}/d${i}`));
  await Promise.race([
    Promise.all(handles.map((h) => h.synced)),
    sleep(60_000).then(() => {
      throw new Error(`${count} documents not synced within 60 s`);
    }),
  ]);
  const ms = performance.now() - started;
  return { ms, client };
}

const node = await startNode();
try {
  const times: Record<'one' | 'many', number[]> = { one: [], many: [] };
  for (let r = 0; r < RUNS; r++) {
    for (const way of r % 2 ? (['many', 'one'] as const) : (['one', 'many'] as const)) {
      const { ms, client } = await openAll(node.url, way === 'one', `mux-r${r}-${way}`, DOCS);
      times[way].push(ms);
      await client.destroy();
      await sleep(200);
    }
  }
  // Memory: one client holds EXTRA documents on one socket; RSS before and after.
  await sleep(1000);
  const pid = node.child.pid ?? NaN;
  const before = rssKb(pid);
  const { client } = await openAll(node.url, true, 'mux-extra', EXTRA);
  await sleep(1500);
  const after = rssKb(pid);
  await client.destroy();
  const fmt = (xs: number[]): string =>
    `${median(xs).toFixed(0)} ms (${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)})`;
  console.log(
    `open ${DOCS} documents, one socket:  ${fmt(times.one)}  (median, range; ${RUNS} runs)`,
  );
  console.log(`open ${DOCS} documents, ${DOCS} sockets: ${fmt(times.many)}`);
  console.log(
    `node RSS per extra document on one socket: ${(((after - before) * 1024) / EXTRA).toFixed(0)} bytes (${EXTRA} documents, RSS ${(before / 1024).toFixed(0)} → ${(after / 1024).toFixed(0)} MB)`,
  );
} finally {
  node.stop();
}
process.exit(0);
