/**
 * The load generator's side of functions.mjs: one HTTP POST that never rejects,
 * the closed and open loops, latency statistics, and the CPU time of a process.
 * Every loop is bounded in count and time.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';

/** A call not answered within this long is an error. */
export const CALL_TIMEOUT_MS = 10_000;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const TIMED_OUT = Symbol('timed out');
export const withTimeout = (promise, ms) => {
  let timer;
  return Promise.race([
    promise,
    new Promise((resolve) => (timer = setTimeout(resolve, ms, TIMED_OUT))),
  ]).finally(() => clearTimeout(timer));
};
export const quantile = (sorted, q) =>
  sorted.length === 0
    ? NaN
    : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
export const fmt = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : '–');

const CLK_TCK =
  Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
/** user + system CPU time of a process (all its threads: the worker pool too), in ms. */
export const cpuMs = (pid) => {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
  } catch {
    return NaN; // no procfs (not Linux)
  }
};

/** One HTTP POST on a keep-alive agent; never rejects: `{ status }` is 0 for a network error or timeout. */
export function post(node, agent, path, body, extraHeaders = {}) {
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
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode,
            headers: res.headers,
            body: Buffer.concat(chunks).toString(),
          }),
        );
        res.on('error', (err) => resolve({ status: 0, body: String(err.message) }));
      },
    );
    req.on('error', (err) => resolve({ status: 0, body: String(err.message) }));
    req.setTimeout(CALL_TIMEOUT_MS, () => req.destroy(new Error('timeout')));
    req.end(payload);
  });
}
export const invoke = (node, agent, name, input) =>
  post(node, agent, `/v1/functions/${name}/invoke`, JSON.stringify(input));
export const ok = (r) => r.status >= 200 && r.status < 300;
export const errorOf = (r) =>
  r.status === 0
    ? r.body
    : `${r.status} ${(/"code":"([A-Z_]+)"/.exec(r.body) ?? [])[1] ?? r.body.slice(0, 80)}`;

export function summarize(ms, errors, wallMs, extra = {}) {
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
export async function closedLoop(node, { name, input, calls, seconds, concurrency }) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const ms = [];
  let errors = 0;
  let firstError;
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
  node,
  { name, input, rate, seconds, spin, graceMs = CALL_TIMEOUT_MS },
) {
  const count = Math.max(1, Math.round(rate * seconds));
  const agent = new Agent({ keepAlive: true, maxSockets: 512 });
  const ms = [];
  let errors = 0;
  let firstError;
  let done = 0;
  let lastEnd = 0;
  let maxSendLagMs = 0;
  let closed = false;
  let i = 0;
  const start = performance.now() + 5;
  const dueAt = (k) => start + (k * 1000) / rate;
  await new Promise((resolve) => {
    const hardStop = setTimeout(resolve, seconds * 1000 + graceMs);
    const tick = () => {
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
