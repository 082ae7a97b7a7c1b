/**
 * The summary of `npm run bench:cluster`: per backplane, the median and range
 * of each row over the runs, CPU per update against the single node with its
 * 95% bootstrap interval (stats.ts), and the issue's latency targets.
 */
import type { ClusterBenchResults, ClusterRun } from './cluster-results.js';
import { median, ratioInterval, targetVerdict } from './stats.js';

/** Issue 14's targets at 1,000 updates/s, and CPU per update against one node's. */
export const TARGETS = { p50Ms: 2, p99Ms: 10, cpuRatio: 1.3 } as const;

const spread = (xs: number[], digits: number): string => {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return '–';
  const f = (x: number): string => x.toFixed(digits);
  return v.length === 1 ? f(v[0]!) : `${f(median(v))} (${f(Math.min(...v))}–${f(Math.max(...v))})`;
};

const met = (xs: number[], bound: number): string =>
  `${xs.filter((x) => x <= bound).length} of ${xs.length} runs ≤ ${bound} ms`;

export function renderCluster({ options, runs }: ClusterBenchResults): string[] {
  const of = (b: string): ClusterRun[] => runs.filter((r) => r.backplane === b);
  const pick = <T>(rs: ClusterRun[], f: (r: ClusterRun) => T | undefined): T[] =>
    rs.map(f).filter((x): x is T => x !== undefined);
  const singleCpu = pick(of('single'), (r) => r.load?.cpuPerUpdateUs);
  const lines = [
    `summary: median (min–max) of ${options.runs} runs at ${options.rate} writes/s for ${options.loadMs / 1000} s, ` +
      `${options.split ? 'servers on core 0, clients on core 1' : 'not pinned'}`,
    '',
    '| setup | p50 ms | p99 ms | CPU µs/update | ÷ single (95% interval) | per process ÷ single | load average |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const b of options.backplanes) {
    const rs = of(b);
    const loads = pick(rs, (r) => r.load);
    const cpu = loads.map((l) => l.cpuPerUpdateUs);
    const perProcess = loads.map((l) => l.cpuPerUpdateUs / l.processes);
    const ci = b === 'single' ? undefined : ratioInterval(cpu, singleCpu);
    const ratio =
      b === 'single'
        ? '1'
        : singleCpu.length === 0
          ? '–'
          : `${(median(cpu) / median(singleCpu)).toFixed(2)}×${ci ? ` (${ci.lo.toFixed(2)}–${ci.hi.toFixed(2)})` : ''}`;
    const perRatio =
      b === 'single'
        ? '1'
        : singleCpu.length === 0
          ? '–'
          : `${(median(perProcess) / median(singleCpu)).toFixed(2)}× (target ≤ ${TARGETS.cpuRatio}: ${targetVerdict(perProcess, singleCpu, TARGETS.cpuRatio)})`;
    lines.push(
      `| ${b} | ${spread(
        loads.map((l) => l.p50Ms),
        2,
      )} | ${spread(
        loads.map((l) => l.p99Ms),
        1,
      )} | ${spread(cpu, 0)} | ${ratio} | ${perRatio} | ${spread(
        loads.map((l) => l.load),
        1,
      )} |`,
    );
  }
  lines.push('');
  for (const b of options.backplanes) {
    if (b === 'single') continue;
    const rs = of(b);
    const loads = pick(rs, (r) => r.load);
    const parts = [
      `latency targets: p50 ${met(
        loads.map((l) => l.p50Ms),
        TARGETS.p50Ms,
      )}, p99 ${met(
        loads.map((l) => l.p99Ms),
        TARGETS.p99Ms,
      )}`,
    ];
    const partition = pick(rs, (r) => r.partition);
    if (partition.length)
      parts.push(
        `catch-up after a ${options.partitionMs / 1000} s partition ${spread(
          partition.map((p) => p.catchUpMs),
          0,
        )} ms, ${spread(
          partition.map((p) => p.catchUpBytes / 1024),
          1,
        )} KiB`,
      );
    const restart = pick(rs, (r) => r.redisRestart);
    if (restart.length)
      parts.push(
        `after Redis restarted without data ${spread(
          restart.map((p) => p.catchUpMs),
          0,
        )} ms, ${spread(
          restart.map((p) => p.catchUpBytes / 1024),
          1,
        )} KiB over n3's Redis link`,
      );
    const join = pick(rs, (r) => r.join);
    if (join.length)
      parts.push(
        `a 4th node joins: home of ${spread(
          join.map((j) => j.moved),
          0,
        )} of ${join[0]!.docs} documents, stored after ${spread(
          join.map((j) => j.storedMs),
          0,
        )} ms`,
      );
    const kill = pick(rs, (r) => r.kill);
    if (kill.length)
      parts.push(
        `kill -9 of n2: its document served on n3 after ${spread(
          kill.map((k) => k.servedMs),
          0,
        )} ms, not live after ${spread(
          kill.map((k) => k.notLiveMs),
          0,
        )} ms`,
      );
    const failed = rs.filter((r) => r.error !== undefined).length;
    if (failed) parts.push(`${failed} runs failed`);
    lines.push(`- ${b}: ${parts.join('; ')}`);
  }
  return lines;
}
