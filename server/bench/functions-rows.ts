/**
 * The rows of the functions bench (functions.ts) that are more than a loop of
 * calls: the trigger chain (e), a cold version (f), the SDK's fastest path (g), a
 * sandbox's start (i) and a worker thread's start (w). Each returns the row's
 * latency summary; every loop is bounded in count and time.
 */
import { Agent } from 'node:http';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { createClient } from '@stateweave/client';
import {
  CALL_TIMEOUT_MS,
  TIMED_OUT,
  errorOf,
  invoke,
  ok,
  post,
  quantile,
  summarize,
  withTimeout,
  type LoadSummary,
} from './functions-load.js';
import type { FunctionList, FunctionsNode } from './functions-node.js';
import { errorMessage } from './wait.js';

export type Input = (i: number) => { doc: string };
export const hot: Input = () => ({ doc: 'hot' });
export const many =
  (docs: number): Input =>
  (i) => ({ doc: `d${i % docs}` });

export async function chainRow(
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

export async function coldRow(
  node: FunctionsNode,
  { reps }: { reps: number },
): Promise<LoadSummary> {
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
export async function workerStartRow({ reps }: { reps: number }): Promise<LoadSummary> {
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
export async function sandboxStartRow({ reps }: { reps: number }): Promise<LoadSummary> {
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
export async function sdkRow(
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
