/**
 * What `npm run bench:cluster` (cluster.ts) measures and keeps: its options,
 * and per run the figures of each row. Types only, shared by the bench, its
 * summary (cluster-report.ts) and scenario 8 (extras.ts), which reads them as JSON.
 */
import type { Backplane } from './cluster-setup.js';
import type { LoadFigures, PartitionFigures } from './cluster-load.js';
import type { JoinFigures, KillFigures, RedisRestartFigures } from './cluster-events.js';

export const ROWS = ['load', 'partition', 'redis-restart', 'join', 'kill'] as const;
export type Row = (typeof ROWS)[number];

export interface ClusterBenchOptions {
  readonly rate: number;
  readonly runs: number;
  readonly loadMs: number;
  readonly partitionMs: number;
  readonly backplanes: readonly Backplane[];
  readonly rows: readonly Row[];
  /** Servers on core 0, this process (the clients) on core 1. */
  readonly split: boolean;
  /** Extra flags of node for every node process, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`. */
  readonly nodeFlags: readonly string[];
  /** Another build's `dist/src/main.js` to run the nodes from (before/after comparisons). */
  readonly mainJs?: string | undefined;
  /** Appends every write's send time and latency of each run here, one JSON line per run. */
  readonly latenciesFile?: string | undefined;
  readonly log: (line: string) => void;
}

export interface ClusterRun {
  readonly backplane: Backplane;
  readonly run: number;
  load?: LoadFigures;
  partition?: PartitionFigures;
  redisRestart?: RedisRestartFigures;
  join?: JoinFigures;
  kill?: KillFigures;
  error?: string;
}

export interface ClusterBenchResults {
  readonly options: Omit<ClusterBenchOptions, 'log'>;
  readonly runs: ClusterRun[];
}
