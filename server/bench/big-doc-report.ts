/**
 * What the large-document bench (big-doc.ts) reports: the types of big-doc.json, its
 * rows of the summary table and its Markdown section.
 */
import type { JoinersResult } from './big-doc-joiners.js';
import { isFailed, type RunsBySystem } from './results.js';
import { quantile } from './stats.js';

/** A join storm: each joiner's time and bytes, the failures, and the server's peak RSS. */
export interface Storm extends JoinersResult {
  wallMs: number;
  /** undefined where the peak could not be reset before the storm */
  peakRssKb: number | undefined;
  /** the server's CPU time (user + system) from the start of the storm to its last join, ms */
  serverCpuMs?: number;
  /** of which in the kernel (socket writes), ms */
  serverKernelMs?: number;
  /** the joiner processes' CPU time, summed, ms */
  joinersCpuMs?: number;
}
export interface BigDocRun {
  seedMs: number;
  firstJoinMs: number;
  step2Bytes: number;
  rssBeforeKb: number;
  storm: Storm | undefined;
  pendingMs: number[];
}
export interface BigDocResults {
  startedAt: string;
  machine: { cpus: number; model: string | undefined; loadavg: number[]; node: string };
  config: {
    MB: number;
    JOINERS: number;
    PROCS: number;
    RUNS: number;
    SYSTEMS: string[];
    docBytes: number;
  };
  perSystem: RunsBySystem<BigDocRun>;
  loadavgAfter?: number[];
}

const LABEL: Record<string, string> = {
  'ours-memory': 'Stateweave',
  reference: '@y/websocket-server',
  hocuspocus: '@hocuspocus/server',
};

/** The p-th percentile (nearest rank) of unsorted `xs`. */
export const pct = (xs: readonly number[], p: number): number =>
  quantile(
    [...xs].sort((a, b) => a - b),
    p / 100,
  );

const good = (perSystem: RunsBySystem<BigDocRun>, name: string): BigDocRun[] =>
  (perSystem[name] ?? []).filter((r): r is BigDocRun => !isFailed(r));

/** The summary table's rows (columns: ours-memory, ours-leveldb, reference, hocuspocus, relay). */
export function bigDocSummaryRows(results: BigDocResults): string {
  const mb = (results.config.docBytes / 1048576).toFixed(0);
  const cell = (name: string, f: (r: BigDocRun) => string): string => {
    const ok = good(results.perSystem, name);
    return ok.length ? ok.map(f).join(' / ') : results.perSystem[name] ? 'failed' : '';
  };
  const row = (title: string, f: (r: BigDocRun) => string): string =>
    `| ${title} | ${cell('ours-memory', f)} | | ${cell('reference', f)} | ${cell('hocuspocus', f)} | |`;
  return [
    row(`10. ${results.config.JOINERS} clients joining a ${mb} MB document — p99, peak RSS`, (r) =>
      !r.storm
        ? 'not run'
        : `${(pct(r.storm.times, 99) / 1000).toFixed(1)} s, ${r.storm.peakRssKb ? `${(r.storm.peakRssKb / 1024).toFixed(0)} MB` : 'n/a'}${r.storm.errors.length ? ` (${r.storm.errors.length} failed)` : ''}`,
    ),
    row(
      `10. sync of the ${mb} MB document with a pending update (median)`,
      (r) => `${pct(r.pendingMs, 50).toFixed(0)} ms`,
    ),
  ].join('\n');
}

export function renderBigDoc(results: BigDocResults): string {
  const { config, machine } = results;
  const lines = [
    `## Large document (${results.startedAt})`,
    '',
    `${(config.docBytes / 1048576).toFixed(1)} MB document (as one update); ${config.JOINERS} clients joining at once from ${config.PROCS} processes; ${machine.cpus} × ${machine.model}, ${machine.node}, load average ${machine.loadavg.map((x) => x.toFixed(1)).join(' / ')} at the start, ${(results.loadavgAfter ?? []).map((x) => x.toFixed(1)).join(' / ')} at the end. Per run: values separated by "/".`,
    '',
    '| system | join storm p50 | join storm p99 | joined | storm peak RSS | sync with a pending update (median / max of 5) | first join after seeding |',
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  for (const [name, runs] of Object.entries(results.perSystem)) {
    const ok = good(results.perSystem, name);
    if (!ok.length) {
      const first = runs[0];
      lines.push(
        `| ${LABEL[name] ?? name} | failed: ${first && isFailed(first) ? first.error : 'no run'} | | | | | |`,
      );
      continue;
    }
    const each = (f: (r: BigDocRun) => string): string => ok.map(f).join(' / ');
    const stormOf = (r: BigDocRun): Storm =>
      r.storm ?? { times: [], bytes: [], errors: [], wallMs: NaN, peakRssKb: undefined };
    const storms = ok.every((r) => r.storm);
    if (!storms)
      lines.push(
        `| ${LABEL[name] ?? name} | not run | not run | | | ${each((r) => `${pct(r.pendingMs, 50).toFixed(0)} / ${Math.max(...r.pendingMs).toFixed(0)} ms`)} | ${each((r) => `${r.firstJoinMs.toFixed(0)} ms`)} |`,
      );
    else
      lines.push(
        `| ${LABEL[name] ?? name} | ${each((r) => `${pct(stormOf(r).times, 50).toFixed(0)} ms`)} | ${each((r) => `${pct(stormOf(r).times, 99).toFixed(0)} ms`)} | ${each((r) => `${stormOf(r).times.length}/${config.JOINERS}`)} | ${each(
          (r) => {
            const peak = stormOf(r).peakRssKb;
            return peak ? `${(peak / 1024).toFixed(0)} MB` : 'n/a';
          },
        )} | ${each((r) => `${pct(r.pendingMs, 50).toFixed(0)} / ${Math.max(...r.pendingMs).toFixed(0)} ms`)} | ${each((r) => `${r.firstJoinMs.toFixed(0)} ms`)} |`,
      );
  }
  lines.push('');
  return lines.join('\n');
}
