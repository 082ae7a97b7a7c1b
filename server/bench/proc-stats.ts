/**
 * A process's figures from /proc (Linux): CPU time, RSS and its peak, and the
 * hypervisor's steal per core. Read by path so a system in another process is
 * measured from outside, as a user's monitoring would.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const readProc = (path: string): string => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return ''; // the process is gone: its figures read as NaN
  }
};

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;

/** CPU time a process has used so far, in ms, in user and kernel mode, from /proc/<pid>/stat. */
export function cpuTimesMs(pid: number): { user: number; system: number } {
  const stat = readProc(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    user: (Number(fields[11]) * 1000) / CLK_TCK,
    system: (Number(fields[12]) * 1000) / CLK_TCK,
  };
}

/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
export function cpuMs(pid: number): number {
  const { user, system } = cpuTimesMs(pid);
  return user + system;
}

/**
 * A thread's time on a CPU and waiting for one so far, in ms, from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds; NaN where the kernel has no
 * schedstats). The main thread (`tid` = `pid`) is where a Node server's requests
 * wait for each other: its time on a CPU is the cost of what it did, its time
 * in the run queue what a loaded machine added.
 */
export function threadSchedMs(pid: number, tid: number = pid): { onCpu: number; waiting: number } {
  const [onCpu, waiting] = readProc(`/proc/${pid}/task/${tid}/schedstat`).split(' ').map(Number);
  return { onCpu: (onCpu ?? NaN) / 1e6, waiting: (waiting ?? NaN) / 1e6 };
}

export interface ProcMemKb {
  /** resident set size now */
  rss: number;
  /** peak resident set size (VmHWM) */
  hwm: number;
}

/** RSS and its peak of a process, in KB (`/proc/<pid>/status`). */
export function procMemKb(pid: number): ProcMemKb {
  const status = readProc(`/proc/${pid}/status`);
  return {
    rss: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN),
    hwm: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? NaN),
  };
}
export const rssKb = (pid: number): number => procMemKb(pid).rss;

/** Resets the process's peak RSS (VmHWM) to its current RSS; false where Linux does not allow it. */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** Steal so far per core, in ms, by core number ("0", "1", …). */
export type StealByCore = Record<string, number>;

/**
 * Time the hypervisor took from each CPU so far (the "steal" column of /proc/stat),
 * in ms: on a shared VM it comes in chunks of milliseconds, and a chunk on the
 * server's core is a latency spike no server can avoid. Reported next to each run.
 */
export function stealMs(): StealByCore {
  const out: StealByCore = {};
  for (const m of readProc('/proc/stat').matchAll(/^cpu(\d+) (.*)$/gm))
    out[m[1] ?? ''] = (Number((m[2] ?? '').split(' ')[7]) * 1000) / CLK_TCK;
  return out;
}

/** Steal between two readings on `cores` (all cores when undefined). */
export function stealBetween(
  before: StealByCore,
  after: StealByCore,
  cores: string[] | undefined,
): number {
  return (cores ?? Object.keys(after)).reduce(
    (sum, c) => sum + ((after[c] ?? 0) - (before[c] ?? 0)),
    0,
  );
}
