/**
 * `npm run bench:functions -w server`: invocation latency and throughput on one
 * in-process node over HTTP, stored-before-reply on (in-memory LevelDB, or real
 * LevelDB with BENCH_DATA=dir). Prints one line per scenario.
 */
import { Worker } from 'node:worker_threads';
import { startNode } from './helpers/node.js';
import { FIXTURE_FUNCTIONS, invoke } from './helpers/functions.js';

const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
const report = (what: string, ms: number[], wallMs: number): void => {
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(
    `${what.padEnd(44)} n=${ms.length} p50=${pct(sorted, 0.5).toFixed(2)}ms p99=${pct(sorted, 0.99).toFixed(2)}ms ${(ms.length / (wallMs / 1000)).toFixed(0)}/s`,
  );
};

const run = async (what: string, count: number, concurrency: number, call: (i: number) => Promise<unknown>) => {
  const ms: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const i = next++;
        const t = performance.now();
        await call(i);
        ms.push(performance.now() - t);
      }
    }),
  );
  report(what, ms, performance.now() - started);
};

const main = async (): Promise<void> => {
  const spawnMs: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const w = new Worker(new URL('../src/functions/worker.js', import.meta.url), { env: {} });
    await new Promise((resolve) => w.once('online', resolve));
    spawnMs.push(performance.now() - t);
    await w.terminate();
  }
  report('worker thread start (to online)', spawnMs, spawnMs.reduce((a, b) => a + b, 0));

  const node = await startNode({ functionsDir: FIXTURE_FUNCTIONS, ...(process.env.BENCH_DATA ? { dataDir: process.env.BENCH_DATA, store: undefined } : {}) });
  try {
    await run('warmup', 200, 4, () => invoke(node.url, 'increment', { counter: 'warm' }));
    await run('mutation, one hot doc, sequential', 1000, 1, () => invoke(node.url, 'increment', { counter: 'hot' }));
    await run('mutation, one hot doc, 32 concurrent', 2000, 32, () => invoke(node.url, 'increment', { counter: 'hot' }));
    await run('mutation, 64 docs, 32 concurrent', 2000, 32, (i) => invoke(node.url, 'increment', { counter: `d${i % 64}` }));
    await run('query, one doc, sequential', 1000, 1, () => invoke(node.url, 'read', { counter: 'hot' }));
    const cold: number[] = [];
    for (let v = 0; v < 5; v++) {
      const code = `module.exports = require('@stateweave/server').defineFunction({ name: 'cold', doc: () => 'cold', handler: () => ${v} });`;
      await fetch(`${node.url}/v1/functions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ bundles: [{ file: 'cold.js', code }] }) });
      const t = performance.now();
      await invoke(node.url, 'cold', {});
      cold.push(performance.now() - t);
    }
    report('first call of a new version (cold)', cold, cold.reduce((a, b) => a + b, 0));
  } finally {
    await node.close();
  }
};

await main();
