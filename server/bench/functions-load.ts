/**
 * The load generator's side of functions.ts: one HTTP POST that never rejects,
 * the closed and open loops, latency statistics, and the CPU time of a process.
 * Every loop is bounded in count and time.
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import { quantile } from './stats.js';

export { cpuMs } from './proc-stats.js';
export { sleep } from './wait.js';
export { quantile } from './stats.js';

/** What a call needs of the node: its port and a token. */
export interface NodeAddress {
  port: number;
  token: string;
}
/** A POST's answer; `status` 0 for a network error or timeout (`body` says which). */
export interface PostResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}
/** A row's figures beyond latency, each set by the rows that measure it. */
export interface RowExtras {
  concurrency?: number;
  firstError?: string;
  offeredPerSec?: number;
  count?: number;
  unanswered?: number;
  maxSendLagMs?: number;
  mutationReplyP50?: number;
  deployP50?: number;
  secondCallP50?: number;
  transport?: string;
  window?: number;
  fetchCalls?: number;
  rssPerSandboxMb?: number;
}
/** Latency (ms) and throughput of a row's answered calls. */
export interface LoadSummary extends RowExtras {
  n: number;
  errors: number;
  p50: number;
  p99: number;
  max: number;
  perSec: number;
  wallMs: number;
}
export interface LoopSpec {
  /** the function */
  name: string;
  /** the input of call i */
  input: (i: number) => unknown;
}

/** A call not answered within this long is an error. */
export const CALL_TIMEOUT_MS = 10_000;

export const TIMED_OUT = Symbol('timed out');
/** `promise`'s value, or TIMED_OUT once `ms` have passed. */
export const withTimeout = <T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> => {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<typeof TIMED_OUT>((resolve) => (timer = setTimeout(resolve, ms, TIMED_OUT))),
  ]).finally(() => clearTimeout(timer));
};
export const fmt = (x: number | undefined, digits = 2): string =>
  x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '–';

/** One HTTP POST on a keep-alive agent; never rejects: `{ status }` is 0 for a network error or timeout. */
export function post(
  node: NodeAddress,
  agent: Agent,
  path: string,
  body: string,
  extraHeaders: Record<string, string> = {},
): Promise<PostResult> {
  return new Promise((resolve) => {
    const payload = Buffer.from(body);
    const req = request(
      {
        host: '127.0.0.1',
        port: node.port,
        path,
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': payload.length,
          authorization: `Bearer ${node.token}`,
          ...extraHeaders,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', (err) => resolve({ status: 0, headers: {}, body: String(err.message) }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, headers: {}, body: String(err.message) }));
    req.setTimeout(CALL_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.end(payload);
  });
}
export const invoke = (
  node: NodeAddress,
  agent: Agent,
  name: string,
  input: unknown,
): Promise<PostResult> => post(node, agent, `/v1/functions/${name}/invoke`, JSON.stringify(input));
export const ok = (r: PostResult): boolean => r.status >= 200 && r.status < 300;
export const errorOf = (r: PostResult): string =>
  r.status === 0
    ? r.body
    : `${r.status} ${(/"code":"([A-Z_]+)"/.exec(r.body) ?? [])[1] ?? r.body.slice(0, 80)}`;

export function summarize(
  ms: number[],
  errors: number,
  wallMs: number,
  extra: RowExtras = {},
): LoadSummary {
  const sorted = [...ms].sort((a, b) => a - b);
  return {
    n: ms.length,
    errors,
    p50: quantile(sorted, 0.5),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1) ?? NaN,
    perSec: (ms.length * 1000) / wallMs,
    wallMs,
    ...extra,
  };
}

// ---- load shapes ----

/** `concurrency` loops, each calling back to back; stops at `calls` or after `seconds`. */
export async function closedLoop(
  node: NodeAddress,
  {
    name,
    input,
    calls,
    seconds,
    concurrency,
  }: LoopSpec & { calls: number; seconds: number; concurrency: number },
): Promise<LoadSummary> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const ms: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let issued = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < calls && performance.now() < deadline) {
        const i = issued++;
        const t = performance.now();
        const r = await invoke(node, agent, name, input(i));
        if (ok(r)) ms.push(performance.now() - t);
        else {
          errors++;
          firstError ??= errorOf(r);
        }
      }
    }),
  );
  const wallMs = performance.now() - started;
  agent.destroy();
  return summarize(ms, errors, wallMs, { concurrency, ...(firstError ? { firstError } : {}) });
}

/**
 * Open loop: call i is due at start + i/rate whatever happened before; its latency
 * runs from that due time (a stalled node or a full socket pool counts against it).
 * `spin` keeps the generator polling with setImmediate so sends are not late by a
 * timer tick; use it only when the generator has its own core.
 */
export async function openLoop(
  node: NodeAddress,
  {
    name,
    input,
    rate,
    seconds,
    spin,
    graceMs = CALL_TIMEOUT_MS,
  }: LoopSpec & { rate: number; seconds: number; spin: boolean; graceMs?: number },
): Promise<LoadSummary> {
  const count = Math.max(1, Math.round(rate * seconds));
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const ms: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let done = 0;
  let lastEnd = 0;
  let maxSendLagMs = 0;
  let closed = false;
  let i = 0;
  const start = performance.now() + 5;
  const dueAt = (k: number): number => start + (k * 1000) / rate;
  await new Promise<void>((resolve) => {
    const hardStop = setTimeout(resolve, seconds * 1000 + graceMs);
    const tick = (): void => {
      if (closed) return;
      const now = performance.now();
      while (i < count && dueAt(i) <= now) {
        const due = dueAt(i);
        maxSendLagMs = Math.max(maxSendLagMs, now - due);
        void invoke(node, agent, name, input(i++)).then((r) => {
          if (closed) return;
          lastEnd = performance.now();
          if (ok(r)) ms.push(lastEnd - due);
          else {
            errors++;
            firstError ??= errorOf(r);
          }
          if (++done === count) {
            clearTimeout(hardStop);
            resolve();
          }
        });
      }
      if (i >= count) return;
      const wait = dueAt(i) - performance.now();
      if (spin && wait < 2) setImmediate(tick);
      else setTimeout(tick, Math.max(0, wait - (spin ? 1 : 0)));
    };
    tick();
  });
  closed = true;
  agent.destroy();
  const unanswered = count - done;
  const wallMs = Math.max(1, (lastEnd || performance.now()) - start);
  return summarize(ms, errors + unanswered, wallMs, {
    offeredPerSec: rate,
    count,
    unanswered,
    maxSendLagMs,
    ...(firstError
      ? { firstError }
      : unanswered
        ? { firstError: `${unanswered} unanswered after ${graceMs} ms` }
        : {}),
  });
}
