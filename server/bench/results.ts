/**
 * What `npm run bench` stores in results/latest.json: one entry per scenario, its
 * runs per system and their summary. The Markdown (render.ts) is made from this
 * alone, so a saved file re-renders (`BENCH_RENDER=latest.json`).
 */
import { median, quantile } from './stats.js';

/** A run that threw: its message instead of figures. */
export interface FailedRun {
  error: string;
}
export const isFailed = <R extends object>(run: R | FailedRun): run is FailedRun => 'error' in run;

/** Runs of each system by name (`ours-memory`, `reference`, …). */
export type RunsBySystem<R extends object> = Record<string, (R | FailedRun)[]>;

/** One fan-out run (scenarios 1–4, 7). Latencies in ms, RSS in KB. */
export interface FanOutRun {
  p50: number;
  p99: number;
  max: number;
  sent: number;
  delivered: number;
  offeredPerSec: number;
  achievedPerSec: number;
  lostEdits: number;
  lostDeliveries: number;
  rssKb: number;
  peakRssKb: number;
  /** server CPU per 1,000 edits sent: less sensitive than p99 to other load on the machine */
  cpuMsPer1k: number;
  stealMs: number;
}
export interface SaturationStep extends FanOutRun {
  /** edits/s per client */
  rate: number;
}
export interface SaturationRun {
  /** highest delivered edits/s of a step that held */
  best: number;
  steps: SaturationStep[];
}
export interface SyncRun {
  ms: number;
  rssKb: number;
}

export interface FanOutSummary {
  runs: number;
  errors: number;
  p50: number;
  p99: number;
  achievedPerSec: number;
  offeredPerSec: number;
  lostEdits: number;
  cpuMsPer1k: number;
  stealMs: number;
  rssKb: number;
}
export interface SaturationSummary {
  runs: number;
  errors: number;
  best: number;
  rssKb: number;
}
export interface SyncSummary {
  runs: number;
  errors: number;
  median: number;
  p99: number;
  rssKb: number;
}

export interface FanOutScenario {
  kind: 'fanout';
  title: string;
  /** The load: documents, clients per document, edits/s per client (absent in results saved before it). */
  load?: { docs: number; perDoc: number; rate: number };
  runs: RunsBySystem<FanOutRun>;
  summary: Record<string, FanOutSummary>;
}
export interface SaturationScenario {
  kind: 'saturation';
  title: string;
  runs: RunsBySystem<SaturationRun>;
  summary: Record<string, SaturationSummary>;
}
export interface SyncScenario {
  kind: 'sync';
  title: string;
  updateBytes: number;
  textLength: number;
  runs: RunsBySystem<SyncRun>;
  summary: Record<string, SyncSummary>;
}
/** A scenario that renders itself (6, 8, 9, 10, 11): its Markdown and its summary-table rows. */
export interface ExtrasScenario {
  kind: 'extras';
  title: string;
  markdown: string;
  /** rows of the summary table, `| … |` each, in its columns */
  summaryRow?: string;
  /** the scenario's own figures, for latest.json */
  data?: unknown;
}
export interface FailedScenario {
  kind: 'failed';
  error: string;
}
export type ScenarioResult =
  FanOutScenario | SaturationScenario | SyncScenario | ExtrasScenario | FailedScenario;

export interface BenchConfigRecord {
  RUNS: number;
  SECONDS: number;
  CLIENTS: 'light' | 'stock';
  SCENARIOS: number[];
  LARGE_EDITS: number;
  PIN: boolean;
  QUICK: boolean;
}
export interface MachineInfo {
  cpus: number;
  cpu: string;
  node: string;
  platform: string;
}
export interface BenchResults {
  startedAt: string;
  finishedAt?: string;
  machine: MachineInfo;
  config: BenchConfigRecord;
  /** package → version ('?' when not installed) */
  versions: Record<string, string>;
  scenarios: Record<string, ScenarioResult>;
}

const ok = <R extends object>(runs: (R | FailedRun)[]): R[] =>
  runs.filter((r): r is R => !isFailed(r));
const maxOf = (xs: number[]): number => (xs.length > 0 ? Math.max(...xs) : -Infinity);

export function summarizeFanout(perSystem: RunsBySystem<FanOutRun>): Record<string, FanOutSummary> {
  const out: Record<string, FanOutSummary> = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const good = ok(runs);
    out[name] = {
      runs: good.length,
      errors: runs.length - good.length,
      p50: median(good.map((r) => r.p50)),
      p99: median(good.map((r) => r.p99)),
      achievedPerSec: median(good.map((r) => r.achievedPerSec)),
      offeredPerSec: median(good.map((r) => r.offeredPerSec)),
      lostEdits: good.reduce((a, r) => a + r.lostEdits, 0),
      cpuMsPer1k: median(good.map((r) => r.cpuMsPer1k)),
      stealMs: maxOf(good.map((r) => r.stealMs)),
      rssKb: maxOf(good.map((r) => r.rssKb)),
    };
  }
  return out;
}

export function summarizeSaturation(
  perSystem: RunsBySystem<SaturationRun>,
): Record<string, SaturationSummary> {
  const out: Record<string, SaturationSummary> = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const good = ok(runs);
    out[name] = {
      runs: good.length,
      errors: runs.length - good.length,
      best: median(good.map((r) => r.best)),
      rssKb: maxOf(good.flatMap((r) => r.steps.map((x) => x.rssKb))),
    };
  }
  return out;
}

export function summarizeSync(perSystem: RunsBySystem<SyncRun>): Record<string, SyncSummary> {
  const out: Record<string, SyncSummary> = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const good = ok(runs);
    const ms = good.map((r) => r.ms).sort((a, b) => a - b);
    out[name] = {
      runs: good.length,
      errors: runs.length - good.length,
      median: median(ms),
      p99: quantile(ms, 0.99),
      rssKb: maxOf(good.map((r) => r.rssKb)),
    };
  }
  return out;
}
