/**
 * The field's units (issue 18) from one `npm run bench`: each unit as y-hub's
 * benchmark results name them, for our node and the peers measured in the same
 * run, with the goal and a verdict. Gathered from the scenarios that ran (2, 3, 6,
 * 8, 9, 10, 12, 13); a unit whose scenario did not run has no row. Pure: it reads the
 * results alone, so a saved latest.json renders the same table (BENCH_RENDER).
 *
 * Verdicts: against a peer, the 95% interval of the ratio of medians (stats.ts)
 * must lie on the goal's side ("met") or beyond it ("missed"), else "undecided";
 * against an absolute bound, every run must meet it ("met") or none ("missed").
 */
import type { BigDocResults, BigDocRun } from './big-doc-report.js';
import type { ExtrasResult } from './extras.js';
import type { MeasuredRow } from './functions-report.js';
import type { IdleResults, IdleRun } from './idle.js';
import type { PresenceData, PresenceRun } from './presence.js';
import { fmt, label } from './render.js';
import {
  isFailed,
  type BenchResults,
  type FanOutRun,
  type RunsBySystem,
  type ScenarioResult,
} from './results.js';
import { median, quantile, ratioInterval, targetVerdict, type Verdict } from './stats.js';

/** What `npm run bench:startup` writes (startup.json), as scenario 12 keeps it. */
export interface StartupData {
  docs: number;
  runs: { readyMs: number; openP99: number }[];
}

export interface UnitRow {
  readonly unit: string;
  /** Cell text by system name (`ours-memory`, `ours-leveldb`, `reference`, `hocuspocus`). */
  readonly cells: Readonly<Record<string, string>>;
  readonly goal: string;
  readonly verdict: Verdict | 'not run';
  /** Why the verdict is what it is, when that needs saying (e.g. the goal's size was not run). */
  readonly note?: string;
}

const PEERS = ['reference', 'hocuspocus'] as const;

const good = <R extends object>(runs: RunsBySystem<R> | undefined, name: string): R[] =>
  (runs?.[name] ?? []).filter((r): r is R => !isFailed(r));

/** "22.9 (21.0–26.1)": the median and, with more than one run, the range. */
const spread = (xs: readonly number[], digits = 1): string => {
  const v = xs.filter(Number.isFinite);
  if (v.length === 0) return '';
  const m = fmt(median(v), digits);
  return v.length > 1 ? `${m} (${fmt(Math.min(...v), digits)}–${fmt(Math.max(...v), digits)})` : m;
};

/** Every run meets the goal: met; none: missed; some: undecided. */
const everyRun = (meets: readonly boolean[]): Verdict => {
  if (meets.length === 0) return '–';
  const n = meets.filter(Boolean).length;
  return n === meets.length ? 'met' : n === 0 ? 'missed' : 'undecided';
};
const allWithin = (xs: readonly number[], bound: number): Verdict =>
  everyRun(xs.filter(Number.isFinite).map((x) => x <= bound));

/** The peer with the lower median, among those with runs. */
const betterPeer = (runsOf: (name: string) => number[]): string | undefined =>
  PEERS.map((name) => ({ name, m: median(runsOf(name)) }))
    .filter((p) => Number.isFinite(p.m))
    .sort((a, b) => a.m - b.m)[0]?.name;

/** Ours ÷ the better peer, against `bound`: the row's verdict and what it compared. */
const againstBetterPeer = (
  runsOf: (name: string) => number[],
  ours: string,
  bound: number,
): { verdict: Verdict; note?: string } => {
  const peer = betterPeer(runsOf);
  if (!peer) return { verdict: '–', note: 'no peer ran' };
  const ci = ratioInterval(runsOf(ours), runsOf(peer));
  const r = median(runsOf(ours)) / median(runsOf(peer));
  return {
    verdict: targetVerdict(runsOf(ours), runsOf(peer), bound),
    note: `${fmt(r, 2)}× ${label(peer)}${ci ? ` (${fmt(ci.lo, 2)}–${fmt(ci.hi, 2)})` : ''}`,
  };
};

const measured = (sc: ScenarioResult | undefined): ScenarioResult | undefined =>
  sc && sc.kind !== 'failed' ? sc : undefined;

const isRecord = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

/** Scenarios 2 and 13: CPU per delivered update per observer (the server's CPU per edit ÷ its receivers). */
const perObserverRow = (sc: ScenarioResult | undefined, id: number): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'fanout' || !s.load || s.load.perDoc < 2) return [];
  const observers = s.load.perDoc - 1;
  // cpuMsPer1k is ms per 1,000 edits, i.e. µs per edit.
  const runsOf = (name: string): number[] =>
    good<FanOutRun>(s.runs, name).map((r) => r.cpuMsPer1k / observers);
  const names = ['ours-memory', 'ours-leveldb', ...PEERS];
  return [
    {
      unit: `CPU per delivered update per observer, document edits (scenario ${id}: ${s.load.perDoc} clients in one document, ${fmt(s.load.perDoc * s.load.rate, 0)} edits/s; CPU per edit ÷ ${observers} receivers), µs`,
      cells: Object.fromEntries(names.map((n) => [n, spread(runsOf(n))])),
      goal: '≤ 0.8× the better peer',
      ...againstBetterPeer(runsOf, 'ours-memory', 0.8),
    },
  ];
};

/** Scenario 3: CPU per 1,000 edits on LevelDB against the reference in memory. */
const leveldbRow = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'fanout') return [];
  const runsOf = (name: string): number[] => good<FanOutRun>(s.runs, name).map((r) => r.cpuMsPer1k);
  if (runsOf('ours-leveldb').length === 0 || runsOf('reference').length === 0) return [];
  const ci = ratioInterval(runsOf('ours-leveldb'), runsOf('reference'));
  return [
    {
      unit: 'CPU per 1,000 edits, many documents (scenario 3), ms: LevelDB (in memory)',
      cells: {
        'ours-leveldb': spread(runsOf('ours-leveldb'), 0),
        'ours-memory': spread(runsOf('ours-memory'), 0),
        reference: `${spread(runsOf('reference'), 0)}, in memory`,
        hocuspocus: spread(runsOf('hocuspocus'), 0),
      },
      goal: 'LevelDB ≤ the reference in memory',
      verdict: targetVerdict(runsOf('ours-leveldb'), runsOf('reference'), 1),
      note: `${fmt(median(runsOf('ours-leveldb')) / median(runsOf('reference')), 2)}×${ci ? ` (${fmt(ci.lo, 2)}–${fmt(ci.hi, 2)})` : ''}`,
    },
  ];
};

/** Scenario 6: memory per idle connection (the shape with the most connections) and per open document. */
const idleRows = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'extras' || !isRecord(s.data) || !Array.isArray(s.data.shapes)) return [];
  const data = s.data as unknown as IdleResults;
  const rows: UnitRow[] = [];
  const biggest = [...data.shapes].sort((a, b) => b.conns - a.conns);
  for (const shape of biggest.filter((x) => x.skipped)) {
    rows.push({
      unit: `server memory per idle connection, ${shape.conns.toLocaleString('en')} over ${shape.docs} documents`,
      cells: {},
      goal: '≤ 4 KB',
      verdict: 'not run',
      note: shape.skipped,
    });
  }
  const shape = biggest.find((x) => x.perSystem);
  if (shape?.perSystem) {
    const runsOf =
      (key: keyof IdleRun) =>
      (name: string): number[] =>
        good<IdleRun>(shape.perSystem, name).map((r) => r[key]);
    const names = ['ours-memory', ...PEERS];
    rows.push({
      unit: `server memory per idle connection, ${shape.conns.toLocaleString('en')} over ${shape.docs} documents: RSS, JS heap, KB`,
      cells: Object.fromEntries(
        names.map((n) => [
          n,
          runsOf('perConnRssKb')(n).length
            ? `${spread(runsOf('perConnRssKb')(n), 2)}, ${spread(runsOf('perConnHeapKb')(n), 2)}`
            : '',
        ]),
      ),
      goal: '≤ 4 KB',
      verdict: allWithin(runsOf('perConnRssKb')('ours-memory'), 4),
    });
  }
  const perDoc = data.perDocument;
  if (perDoc?.['ours-memory']) {
    const rss = (name: string): number | undefined => perDoc[name]?.rss.perDocKb;
    const peers = PEERS.map(rss).filter((x): x is number => x !== undefined);
    const ours = rss('ours-memory') ?? NaN;
    rows.push({
      unit: 'server memory per open small document (the split of two shapes): RSS, JS heap, KB',
      cells: Object.fromEntries(
        Object.entries(perDoc).map(([n, f]) => [
          n,
          `${fmt(f.rss.perDocKb, 2)}, ${fmt(f.heap.perDocKb, 2)}`,
        ]),
      ),
      goal: '≤ the better peer (RSS)',
      verdict: peers.length === 0 ? '–' : ours <= Math.min(...peers) ? 'met' : 'missed',
    });
  }
  return rows;
};

/** Scenario 9 at its largest client count: CPU per presence update per observer, and CPU share. */
const presenceRows = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'extras' || !isRecord(s.data) || !isRecord(s.data.runs)) return [];
  const data = s.data as unknown as PresenceData;
  const clients = Math.max(...Object.keys(data.runs).map(Number));
  const runs = data.runs[clients];
  if (!Number.isFinite(clients) || !runs) return [];
  const names = ['ours-memory', ...PEERS];
  // The updates owed: each one sent to every other client. A saturated peer delivers
  // fewer, so its cost per update delivered is higher than this: the ratio favours it.
  const perObserver = (name: string): number[] =>
    good<PresenceRun>(runs, name).map(
      (r) => ((r.cpuPct / 100) * 1e6) / (r.sentPerSec * (clients - 1)),
    );
  const cpu = (name: string): number[] => good<PresenceRun>(runs, name).map((r) => r.cpuPct);
  return [
    {
      unit: `CPU per presence update per observer (scenario 9: ${clients} clients at 1 Hz; CPU ÷ updates owed, each to ${clients - 1} others), µs`,
      cells: Object.fromEntries(names.map((n) => [n, spread(perObserver(n), 2)])),
      goal: '≤ 0.5× the better peer',
      ...againstBetterPeer(perObserver, 'ours-memory', 0.5),
    },
    {
      unit: `${clients} clients in one document sending presence at 1 Hz: CPU, % of one core`,
      cells: Object.fromEntries(names.map((n) => [n, spread(cpu(n))])),
      goal: '≤ 15 % at 500 clients',
      ...(clients >= 500
        ? { verdict: allWithin(cpu('ours-memory'), 15) }
        : { verdict: '–' as const, note: `the goal is for 500 clients; ${clients} ran` }),
    },
  ];
};

/** Scenario 10: the join storm and the sync with a pending update. */
const bigDocRows = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'extras' || !isRecord(s.data) || !isRecord(s.data.perSystem)) return [];
  const data = s.data as unknown as BigDocResults;
  const mb = data.config.docBytes / 1048576;
  const full = mb >= 19;
  const names = ['ours-memory', ...PEERS];
  const runsOf = (name: string): BigDocRun[] => good<BigDocRun>(data.perSystem, name);
  const p99s = (name: string): number[] =>
    runsOf(name).flatMap((r) =>
      r.storm
        ? [
            quantile(
              [...r.storm.times].sort((a, b) => a - b),
              0.99,
            ) / 1000,
          ]
        : [],
    );
  const peaks = (name: string): number[] =>
    runsOf(name).flatMap((r) => (r.storm?.peakRssKb ? [r.storm.peakRssKb / 1024] : []));
  const pending = (name: string): number[] => runsOf(name).map((r) => median(r.pendingMs));
  const notFull = { verdict: '–' as const, note: `the goal is for 20 MB; ${fmt(mb, 1)} MB ran` };
  const stormMeets = runsOf('ours-memory').map(
    (r) =>
      r.storm !== undefined &&
      r.storm.errors.length === 0 &&
      quantile(
        [...r.storm.times].sort((a, b) => a - b),
        0.99,
      ) <= 3000 &&
      (r.storm.peakRssKb ?? Infinity) <= 600 * 1024,
  );
  return [
    {
      unit: `${data.config.JOINERS} clients joining a ${fmt(mb, 1)} MB document at once: p99 s, peak RSS MB`,
      cells: Object.fromEntries(
        names.map((n) => [n, p99s(n).length ? `${spread(p99s(n))}, ${spread(peaks(n), 0)}` : '']),
      ),
      goal: 'p99 ≤ 3 s, peak RSS ≤ 600 MB',
      ...(full ? { verdict: everyRun(stormMeets) } : notFull),
    },
    {
      unit: `sync of that document with a pending update (median of each run), ms`,
      cells: Object.fromEntries(names.map((n) => [n, spread(pending(n), 0)])),
      goal: '≤ 0.5 s',
      ...(full ? { verdict: allWithin(pending('ours-memory'), 500) } : notFull),
    },
  ];
};

/** Scenario 8: HTTP function calls at the offered rate (its targets, as functions-report.ts judges them). */
const functionRows = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc) as ExtrasResult | undefined;
  const fn =
    s?.kind === 'extras' && s.functions && !isFailed(s.functions) ? s.functions : undefined;
  if (!fn) return [];
  const rate = fn.config.sizes.rate;
  const rows = fn.rows.filter((r): r is MeasuredRow => r.id === 'b' && r.error === undefined);
  const targets = fn.targets.slice(0, 2);
  if (rows.length === 0) return [];
  const cell = rows.map((r) => `${fmt(r.p50, 2)} / ${fmt(r.p99, 2)}`).join('; ');
  const met = targets.map((t) => t.met);
  return [
    {
      unit: `HTTP function calls at ${rate.toLocaleString('en')}/s offered (${fn.config.pin ? 'the node pinned to one core' : 'not pinned'}): ${rows.map((r) => (r.docs === 1 ? 'one hot document' : `${r.docs} documents`)).join(' / ')}, p50 / p99 ms`,
      cells: { 'ours-leveldb': cell },
      goal: 'p50 ≤ 2 ms, p99 ≤ 10 ms',
      verdict: met.every((m) => m === true) ? 'met' : met.some((m) => m === false) ? 'missed' : '–',
    },
  ];
};

/** Scenario 12: node start with stored documents. */
const startupRow = (sc: ScenarioResult | undefined): UnitRow[] => {
  const s = measured(sc);
  if (s?.kind !== 'extras' || !isRecord(s.data) || !Array.isArray(s.data.runs)) return [];
  const data = s.data as unknown as StartupData;
  const ready = data.runs.map((r) => r.readyMs);
  const open = data.runs.map((r) => r.openP99);
  const meets = data.runs.map((r) => r.readyMs <= 1000 && r.openP99 <= 5);
  return [
    {
      unit: `node start with ${data.docs.toLocaleString('en')} stored documents: ready ms; first open of a stored document, p99 ms`,
      cells: { 'ours-leveldb': `${spread(ready, 0)}; ${spread(open, 1)}` },
      goal: 'ready ≤ 1 s; first open p99 ≤ 5 ms (10,000 documents)',
      ...(data.docs >= 10_000
        ? { verdict: everyRun(meets) }
        : {
            verdict: '–' as const,
            note: `the goal is for 10,000 documents; ${data.docs.toLocaleString('en')} ran`,
          }),
    },
  ];
};

/** The rows of every unit whose scenario ran, in the issue's order. */
export function fieldUnits(results: BenchResults): UnitRow[] {
  const sc = (id: number): ScenarioResult | undefined => results.scenarios[String(id)];
  return [
    ...idleRows(sc(6)),
    ...perObserverRow(sc(2), 2),
    ...perObserverRow(sc(13), 13),
    ...presenceRows(sc(9)),
    ...bigDocRows(sc(10)),
    ...leveldbRow(sc(3)),
    ...functionRows(sc(8)),
    ...startupRow(sc(12)),
  ];
}

const COLUMNS = ['ours-memory', 'ours-leveldb', 'reference', 'hocuspocus'];

/** The Markdown section; empty when no scenario of these ran. */
export function renderFieldUnits(results: BenchResults): string[] {
  const rows = fieldUnits(results);
  if (rows.length === 0) return [];
  return [
    "## The field's units (issue 18)",
    '',
    "Each unit as y-hub's benchmark results name it, from the scenarios of this run; verdicts against a peer use the 95% interval of the ratio of medians, against a bound every run.",
    '',
    `| unit | ${COLUMNS.map(label).join(' | ')} | goal | verdict |`,
    `|---|${COLUMNS.map(() => '--:').join('|')}|---|---|`,
    ...rows.map(
      (r) =>
        `| ${r.unit} | ${COLUMNS.map((c) => r.cells[c] ?? '').join(' | ')} | ${r.goal} | ${r.verdict}${r.note ? ` (${r.note})` : ''} |`,
    ),
  ];
}
