/**
 * What the functions bench (functions.ts) reports: the types of functions.json, the
 * issue 5 targets with what was measured, and the Markdown table.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fmt, type LoadSummary } from './functions-load.js';

/** The sizes of the matrix's rows. */
export interface FunctionsSizes {
  /** Calls of each warm-up loop (hot, many documents), at least. */
  warmup: number;
  /**
   * Seconds each warm-up loop runs at least: V8 optimizes the call path (in the
   * node's thread, its workers and every sandbox) over the first ~5 s of load;
   * 300 calls left row a measuring that (1,275–1,480 vs ~650 µs of CPU per call warm).
   */
  warmupSeconds: number;
  seqCalls: number;
  rate: number;
  openSeconds: number;
  docs: number;
  closedCalls: number;
  closedSeconds: number;
  concurrencies: number[];
  queryCalls: number;
  chainCalls: number;
  coldReps: number;
  sdkCalls: number;
  sdkWindow: number;
  sdkSeconds: number;
}
/** A row of the matrix: what ran, and its figures or its failure. */
export type FunctionsRow = {
  id: string;
  what: string;
  transport: string;
  docs: number;
} & (
  | (LoadSummary & {
      transport: string;
      nodeCpuPct: number;
      generatorCpuPct: number;
      meanBatch?: number;
      /** Document batches per worker message (invoke). */
      meanGroups?: number;
      nodeLog?: string[];
      error?: undefined;
    })
  | { error: string }
);
export type MeasuredRow = Extract<FunctionsRow, { nodeCpuPct: number }>;
export interface FunctionsTarget {
  target: string;
  measured: string;
  met: boolean | undefined;
}
export interface FunctionsResults {
  startedAt: string;
  machine: { cpus: number; cpu: string; node: string };
  config: { pin: boolean; spin: boolean; sizes: FunctionsSizes; rows: string };
  rows: FunctionsRow[];
  targets: FunctionsTarget[];
}

export function targetsOf(rows: FunctionsRow[], s: FunctionsSizes): FunctionsTarget[] {
  const find = (id: string, docs: number): MeasuredRow | undefined =>
    rows.find((r): r is MeasuredRow => r.id === id && r.docs === docs && !r.error);
  const targets: FunctionsTarget[] = [];
  for (const docs of [1, s.docs]) {
    const b = find('b', docs);
    targets.push({
      target: `warm mutation p50 ≤ 2 ms, p99 ≤ 10 ms at ${s.rate}/s over HTTP (${docs === 1 ? 'one hot document' : `${docs} documents`})`,
      measured: b
        ? `p50 ${fmt(b.p50)} ms, p99 ${fmt(b.p99)} ms, ${fmt(b.perSec, 0)}/s achieved, ${b.errors} errors`
        : 'not run',
      met: b ? b.p50 <= 2 && b.p99 <= 10 && b.perSec >= 0.95 * s.rate && b.errors === 0 : undefined,
    });
  }
  const g = find('g', 1);
  targets.push({
    target:
      "≥ 10,000 invocations/s on one hot document on the SDK's fastest path (WebSocket, batched)",
    measured: g ? `${fmt(g.perSec, 0)}/s over ${g.transport}, ${g.errors} errors` : 'not run',
    met: g ? g.perSec >= 10_000 && g.errors === 0 && g.transport === 'WebSocket' : undefined,
  });
  const f = find('f', 1);
  targets.push({
    target: 'first call of a new version ≤ 20 ms',
    measured: f ? `p50 ${fmt(f.p50)} ms, max ${fmt(f.max)} ms over ${f.n} deployments` : 'not run',
    met: f ? f.max <= 20 && f.errors === 0 : undefined,
  });
  return targets;
}

export function machineInfo(): FunctionsResults['machine'] {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuinfo = ''; // not Linux: the model is unknown
  }
  return {
    cpus: cpus().length,
    cpu: (/model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown CPU').trim(),
    node: process.version,
  };
}

const note = (r: MeasuredRow): string => {
  const parts: string[] = [];
  if (r.offeredPerSec !== undefined)
    parts.push(`offered ${r.offeredPerSec}/s; generator max send lag ${fmt(r.maxSendLagMs)} ms`);
  if (r.mutationReplyP50 !== undefined)
    parts.push(`mutation reply p50 ${fmt(r.mutationReplyP50)} ms`);
  if (r.deployP50 !== undefined)
    parts.push(`deploy p50 ${fmt(r.deployP50)} ms; 2nd call p50 ${fmt(r.secondCallP50)} ms`);
  if (r.fetchCalls !== undefined) parts.push(`${r.fetchCalls} fetch calls`);
  if (r.meanBatch !== undefined) parts.push(`mean batch ${fmt(r.meanBatch, 1)}`);
  if (r.meanGroups !== undefined) parts.push(`${fmt(r.meanGroups, 1)} batches per worker message`);
  // CPU per call holds up on a busy machine, where latency measures the neighbours.
  if (r.n > 0 && r.wallMs > 0)
    parts.push(`node CPU ${fmt(((r.nodeCpuPct / 100) * r.wallMs * 1000) / r.n, 0)} µs/call`);
  if (r.firstError) parts.push(`first error: ${r.firstError}`);
  return parts.join('; ');
};

/** The rows as a Markdown table (and the targets below it). */
export function renderFunctionsTable(results: FunctionsResults, { targets = true } = {}): string[] {
  const lines = [
    '| row | what | transport | docs | p50 ms | p99 ms | invocations/s | errors | CPU node / generator | notes |',
    '|---|---|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const r of results.rows) {
    if (r.error !== undefined)
      lines.push(
        `| ${r.id} | ${r.what} | ${r.transport} | ${r.docs} | | | | failed | | ${r.error} |`,
      );
    else
      lines.push(
        `| ${r.id} | ${r.what} | ${r.transport} | ${r.docs} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.perSec, 0)} | ${r.errors} | ${fmt(r.nodeCpuPct, 0)}% / ${fmt(r.generatorCpuPct, 0)}% | ${note(r)} |`,
      );
  }
  if (targets) {
    if (results.config.pin)
      lines.push(
        '',
        'The targets are for a 2-core machine; pinned, the node (with its worker threads) has one core. `BENCH_NO_PIN=1` gives it both, shared with the generator.',
      );
    lines.push('', '| issue 5 target | measured | met |', '|---|---|---|');
    for (const t of results.targets)
      lines.push(
        `| ${t.target} | ${t.measured} | ${t.met === undefined ? '–' : t.met ? 'yes' : '**no**'} |`,
      );
  }
  return lines;
}

export function renderFunctionsMarkdown(results: FunctionsResults): string {
  const m = results.machine;
  return [
    `Functions bench, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC — ${m.cpus}× ${m.cpu}, Node ${m.node}; ` +
      `${results.config.pin ? 'node pinned to core 0 (worker pool included), load generator to core 1' : 'not pinned'}; ` +
      'one node process, LevelDB (stored before reply), HS256 tokens on every call. Latency in ms from the call (row b: from its scheduled send time); ' +
      "\"CPU\" is each process's CPU time over the row's wall time (100% = one core; the node's includes its worker threads).",
    '',
    ...renderFunctionsTable(results),
    '',
  ].join('\n');
}
