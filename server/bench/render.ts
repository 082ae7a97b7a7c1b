/**
 * The Markdown of a bench result (results/latest.md): the header, the summary table
 * (one row per scenario, one column per system) and each scenario's section, with
 * ratios to the peers, their 95% intervals and the verdicts on the issue's targets.
 */
import { SAT } from './config.js';
import {
  isFailed,
  type BenchResults,
  type FanOutScenario,
  type RunsBySystem,
  type SaturationScenario,
  type ScenarioResult,
  type SyncScenario,
} from './results.js';
import { median, ratioInterval, targetVerdict } from './stats.js';

export const LABEL: Record<string, string> = {
  'ours-memory': 'Stateweave (memory)',
  'ours-leveldb': 'Stateweave (LevelDB)',
  'ours-fsync': 'Stateweave (LevelDB, fsync)',
  reference: '@y/websocket-server',
  hocuspocus: '@hocuspocus/server',
  relay: 'raw relay (ceiling)',
};
export const label = (name: string): string => LABEL[name] ?? name;

/** The summary table's columns, in order. */
export const SUMMARY_COLUMNS = ['ours-memory', 'ours-leveldb', 'reference', 'hocuspocus', 'relay'];

export function fmt(x: number | undefined, digits = 1): string {
  return x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : '–';
}
export function ratio(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${(a / b).toFixed(2)}×`
    : '–';
}
function pct(a: number | undefined, b: number | undefined): string {
  return a !== undefined && b !== undefined && Number.isFinite(a) && Number.isFinite(b) && b > 0
    ? `${Math.round((a / b) * 100)}%`
    : '–';
}

/** "1.12× (0.61–2.05)": the ratio of medians and its 95% interval when there are runs enough. */
export function ratioWithInterval(aRuns: number[], bRuns: number[]): string {
  const ci = ratioInterval(aRuns, bRuns);
  const r = ratio(median(aRuns), median(bRuns));
  return ci && r !== '–' ? `${r} (${ci.lo.toFixed(2)}–${ci.hi.toFixed(2)})` : r;
}

type RunsOf = (name: string) => number[];

/** One line: each of ours (and the relay, as the ceiling) against each peer. */
function verdictLine(
  what: string,
  runsOf: RunsOf,
  bound: number,
  higherIsBetter = false,
): string[] {
  const peers = ['reference', 'hocuspocus'].filter((p) => runsOf(p).length > 0);
  if (peers.length === 0) return [];
  const short: Record<string, string> = { reference: 'ref', hocuspocus: 'hp' };
  const rows = ['ours-memory', 'ours-leveldb', 'relay']
    .filter((n) => runsOf(n).length > 0)
    .map(
      (n) =>
        `${label(n)} ${peers.map((p) => `${targetVerdict(runsOf(n), runsOf(p), bound, higherIsBetter)} vs ${short[p]}`).join(', ')}`,
    );
  return [
    '',
    `Target ${what} (met: the 95% interval lies on the target's side of ${bound}; missed: on the other; undecided: it straddles ${bound}): ${rows.join('; ')}.` +
      (runsOf('relay').length > 0
        ? ' The relay is the ceiling: where even it is not "met", no server could meet the target in this run.'
        : ''),
  ];
}

/** `name => [that system's figure in each good run]` (read from the runs, so older result files re-render too). */
function runsOf<R extends object>(runs: RunsBySystem<R>, figure: (run: R) => number): RunsOf {
  return (name) =>
    (runs[name] ?? [])
      .filter((x): x is R => !isFailed(x))
      .map(figure)
      .filter(Number.isFinite);
}

const failedNote = (errors: number): string => (errors ? ` (${errors} failed)` : '');

function renderFanOut(id: string, sc: FanOutScenario): string[] {
  const lines = [
    '| system | p50 ms | p99 ms | edits/s offered | edits/s delivered | edits lost | server RSS MB | server CPU ms / 1k edits | steal ms, worst run | ÷ ref | ÷ hp | vs relay |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|',
  ];
  const s = sc.summary;
  const base = id === '7' ? s['ours-memory'] : undefined;
  const p99s = runsOf(sc.runs, (r) => r.p99);
  for (const [name, r] of Object.entries(s)) {
    const cmp =
      id === '7'
        ? `${name === 'ours-memory' ? '–' : ratio(r.p99, base?.p99) + ' of memory'} | – | –`
        : `${ratioWithInterval(p99s(name), p99s('reference'))} | ${ratioWithInterval(p99s(name), p99s('hocuspocus'))} | ${pct(s.relay?.p99, r.p99)}`;
    lines.push(
      `| ${label(name)}${failedNote(r.errors)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.offeredPerSec, 0)} | ${fmt(r.achievedPerSec, 0)} | ${r.lostEdits} | ${fmt(r.rssKb / 1024, 0)} | ${fmt(r.cpuMsPer1k, 0)} | ${fmt(r.stealMs, 0)} | ${cmp} |`,
    );
  }
  if (id !== '7') lines.push(...verdictLine('p99 ≤ 0.8× each peer', p99s, 0.8));
  return lines;
}

function renderSync(sc: SyncScenario): string[] {
  const lines = [
    `Document: ${sc.textLength.toLocaleString('en')} characters, ${(sc.updateBytes / 1024).toFixed(0)} KiB as one update. Time from creating the provider to holding the whole text.`,
    '',
    '| system | median ms | p99 ms | server RSS MB | ÷ ref | ÷ hp | vs relay |',
    '|---|--:|--:|--:|--:|--:|--:|',
  ];
  const s = sc.summary;
  const times = runsOf(sc.runs, (r) => r.ms);
  for (const [name, r] of Object.entries(s)) {
    lines.push(
      `| ${label(name)}${failedNote(r.errors)} | ${fmt(r.median)} | ${fmt(r.p99)} | ${fmt(r.rssKb / 1024, 0)} | ${ratioWithInterval(times(name), times('reference'))} | ${ratioWithInterval(times(name), times('hocuspocus'))} | ${pct(s.relay?.median, r.median)} |`,
    );
  }
  lines.push(...verdictLine('sync time ≤ 1× each peer', times, 1));
  lines.push('');
  lines.push(
    'The relay has no copy of the document: a connected peer (the seeding client) answers the sync, so its figure is a peer-to-peer sync through a relay.',
  );
  return lines;
}

function renderSaturation(sc: SaturationScenario): string[] {
  const lines = [
    'Highest total edits/s sustained with p99 ≤ 100 ms, nothing lost and ≥ 90% of the offered rate delivered (median over runs; higher is better; ratios are this row ÷ the peer). The load generator is one Node process on one core, so it may saturate before a server does.',
    '',
    '| system | sustained edits/s | server RSS MB | ÷ ref | ÷ hp | vs relay |',
    '|---|--:|--:|--:|--:|--:|',
  ];
  const s = sc.summary;
  const bests = runsOf(sc.runs, (r) => r.best);
  const first = SAT.docs * SAT.perDoc * (SAT.rates[0] ?? NaN);
  for (const [name, r] of Object.entries(s)) {
    lines.push(
      `| ${label(name)}${failedNote(r.errors)} | ${r.best > 0 ? fmt(r.best, 0) : `< ${first} (failed the first step)`} | ${fmt(r.rssKb / 1024, 0)} | ${ratioWithInterval(bests(name), bests('reference'))} | ${ratioWithInterval(bests(name), bests('hocuspocus'))} | ${pct(r.best, s.relay?.best)} |`,
    );
  }
  lines.push(...verdictLine('sustained rate ≥ 1.5× each peer', bests, 1.5, true));
  return lines;
}

function renderScenario(id: string, sc: ScenarioResult): string[] {
  switch (sc.kind) {
    case 'failed':
      return [`### ${id}. failed: ${sc.error}`];
    case 'fanout':
      return [`### ${id}. ${sc.title}`, '', ...renderFanOut(id, sc)];
    case 'sync':
      return [`### ${id}. ${sc.title}`, '', ...renderSync(sc)];
    case 'saturation':
      return [`### ${id}. ${sc.title}`, '', ...renderSaturation(sc)];
    case 'extras':
      return [`### ${id}. ${sc.title}`, '', sc.markdown];
  }
}

/** The summary table's row of a scenario with per-system runs; extras bring their own row. */
function summaryRow(id: string, sc: ScenarioResult): string | undefined {
  const short = (title: string): string => title.split(/[:(]/)[0]?.trim() ?? title;
  switch (sc.kind) {
    case 'failed':
      return undefined;
    case 'extras':
      return sc.summaryRow;
    case 'fanout': {
      const cell = (c: string): string => {
        const r = sc.summary[c];
        return r ? `${fmt(r.p50)} / ${fmt(r.p99)} ms` : '';
      };
      if (id === '7') {
        const f = sc.summary['ours-fsync'];
        return `| 7. durability — fan-out p50 / p99 | ${cell('ours-memory')} | ${cell('ours-leveldb')}; with fsync ${f ? `${fmt(f.p50)} / ${fmt(f.p99)} ms` : '–'} | | | |`;
      }
      return `| ${id}. ${short(sc.title)} — fan-out p50 / p99 | ${SUMMARY_COLUMNS.map(cell).join(' | ')} |`;
    }
    case 'saturation': {
      const cell = (c: string): string => {
        const r = sc.summary[c];
        return !r ? '' : r.best > 0 ? `${fmt(r.best, 0)}/s` : 'failed 1st step';
      };
      return `| ${id}. ${short(sc.title)} — sustained edits/s | ${SUMMARY_COLUMNS.map(cell).join(' | ')} |`;
    }
    case 'sync': {
      const cell = (c: string): string => {
        const r = sc.summary[c];
        return r ? `${fmt(r.median, 0)} ms` : '';
      };
      return `| ${id}. ${short(sc.title)} — sync time (median) | ${SUMMARY_COLUMNS.map(cell).join(' | ')} |`;
    }
  }
}

function renderSummary(results: BenchResults): string[] {
  const out = [
    `| scenario | ${SUMMARY_COLUMNS.map(label).join(' | ')} |`,
    `|---|${SUMMARY_COLUMNS.map(() => '--:').join('|')}|`,
  ];
  for (const [id, sc] of Object.entries(results.scenarios)) {
    const row = summaryRow(id, sc);
    if (row) out.push(row);
  }
  return out;
}

/**
 * A scenario as an older latest.json stored it: a failure had no `kind`. Read
 * leniently so `BENCH_RENDER` re-renders saved files.
 */
export function normalizeScenario(sc: ScenarioResult | { error: string }): ScenarioResult {
  return 'kind' in sc ? sc : { kind: 'failed', error: sc.error };
}

export function renderMarkdown(results: BenchResults): string {
  const v = results.versions;
  const c = results.config;
  const lines = [
    `Stateweave bench, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC — ${results.machine.cpus}× ${results.machine.cpu}, Node ${process.versions.node}, ` +
      `${c.PIN ? 'servers pinned to core 0, load generator to core 1' : 'not pinned'}; ${c.RUNS} run(s) per system, ${c.SECONDS} s each; ` +
      `fan-out clients: ${c.CLIENTS === 'stock' ? 'stock providers (a Y.Doc each)' : 'light (protocol only, no Y.Doc)'}.`,
    `Peers: @y/websocket-server ${v['@y/websocket-server']} (on yjs ${v['yjs (reference)'] ?? '?'}), @hocuspocus/server ${v['@hocuspocus/server']} (provider ${v['@hocuspocus/provider']}), y-websocket ${v['y-websocket']}, yjs ${v.yjs}.`,
    '',
    '',
    ...renderSummary(results),
    '',
    'Latencies in ms (median over runs of each run\'s p50 / p99). "steal" is the time the hypervisor took from the server\'s core during the worst run (/proc/stat): a shared VM\'s pauses that no server can avoid. "÷ ref" and "÷ hp" are this row\'s p99 divided by the peer\'s (below 1 is better), with its 95% interval (bootstrap over runs) when both have 3 runs or more; "vs relay" is the relay\'s p99 as a share of this row\'s (100% = as fast as the ceiling).',
  ];
  for (const [id, sc] of Object.entries(results.scenarios)) {
    lines.push('');
    lines.push(...renderScenario(id, sc));
  }
  return lines.join('\n') + '\n';
}
