/**
 * What every chaos scenario shares: its result, bounded waits, process figures
 * from /proc, and reading a node's metrics. Scenarios start real `stateweave
 * serve` processes (test/helpers/node.ts) and stop them by pid.
 */
import { readdir, readFile } from 'node:fs/promises';

/** One scenario's outcome: the invariants it checked and the figures it measured. */
export interface ChaosResult {
  readonly name: string;
  /** Invariants that failed, in words; empty when the scenario passed. */
  readonly failures: string[];
  /** Measured figures, for the summary and docs/chaos.md. */
  readonly figures: Record<string, string | number>;
  /** Set when the scenario could not run here (and why). */
  notRun?: string;
}

export const newResult = (name: string): ChaosResult => ({ name, failures: [], figures: {} });

/** Records a failed invariant (the run goes on, so one report shows every failure). */
export const expect = (result: ChaosResult, ok: boolean, what: string): void => {
  if (!ok) result.failures.push(what);
};

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` until truthy, at most `timeoutMs`; returns false on timeout (never throws for it). */
export const eventually = async (
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
};

export const say = (scenario: string, message: string): void => {
  process.stdout.write(
    `[chaos ${new Date().toISOString().slice(11, 19)} ${scenario}] ${message}\n`,
  );
};

/** Resident set size of a process in bytes (/proc/PID/status VmRSS). */
export const rssBytes = async (pid: number): Promise<number> => {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmRSS for ${pid}`);
  return Number(kb) * 1024;
};

/** Open file descriptors of a process (/proc/PID/fd). */
export const openFds = async (pid: number): Promise<number> =>
  (await readdir(`/proc/${pid}/fd`)).length;

/** GET /metrics as text. */
export const scrape = async (url: string): Promise<string> => {
  const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
  return res.text();
};

/** One sample's value, e.g. `stateweave_errors_total{code="STORE_FAILED"}`; 0 when absent. */
export const sample = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.slice(series.length + 1));
};

/** The sum of every sample of a metric family (all label sets). */
export const familyTotal = (text: string, name: string): number =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);

/** Time of one GET /healthz in ms (Infinity when it fails or takes over 5 s). */
export const healthMs = async (url: string): Promise<number> => {
  const started = performance.now();
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) });
    await res.arrayBuffer();
    return res.ok ? performance.now() - started : Infinity;
  } catch {
    return Infinity;
  }
};

export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** CPU time (user + system) a process has used, in ms (/proc/PID/stat; clock ticks of 10 ms). */
export const cpuMs = async (pid: number): Promise<number> => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
};
