#!/usr/bin/env node
/**
 * Summarise V8 CPU profiles (node --cpu-prof): top functions by self time, and
 * self time by package / source file. `node server/dist/bench/profile-summary.js DIR_OR_FILES… [--top N] [--busy MS]`
 *
 * `--busy MS` also lists the stretches where the process ran for MS ms or more
 * without going idle (what a client sees as a latency spike) and the functions
 * with the most inclusive time inside them: a p99 problem shows up there, not in
 * the self-time table.
 *
 * Profile our node under scenario 1:
 *   BENCH_SCENARIOS=1 BENCH_SYSTEMS=ours-memory BENCH_SECONDS=20 BENCH_RUNS=1 \
 *   BENCH_OUR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/sw-prof" node server/dist/bench/run.js
 *   node server/dist/bench/profile-summary.js /tmp/sw-prof
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The parts of a V8 `.cpuprofile` this summary reads. */
interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const TOP = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
const busyIdx = args.indexOf('--busy');
const BUSY_MS = busyIdx >= 0 ? Number(args.splice(busyIdx, 2)[1]) : undefined;
const busy: { at: number; ms: number }[] = [];
const inBusy = new Map<string, number>();
const files = args.flatMap((a) =>
  statSync(a).isDirectory()
    ? readdirSync(a)
        .filter((f) => f.endsWith('.cpuprofile'))
        .map((f) => join(a, f))
    : [a],
);
const byFn = new Map<string, number>();
const byFile = new Map<string, number>();
/** Where a frame's code is: its package (after node_modules/) or its path from server/. */
const shortUrl = (url: string): string =>
  url.includes('node_modules/')
    ? url.slice(url.lastIndexOf('node_modules/') + 13)
    : url.replace(/.*\/server\//, 'server/');
const frameKey = (cf: CallFrame, short: string): string =>
  `${cf.functionName || '(anonymous)'}  ${short ? `${short}:${cf.lineNumber + 1}` : ''}`;
let total = 0;
for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    const sample = prof.samples[i] ?? -1;
    self.set(sample, (self.get(sample) ?? 0) + dt);
  }
  if (BUSY_MS !== undefined) collectBusy(prof, nodes);
  for (const [id, us] of self) {
    const cf = nodes.get(id)?.callFrame;
    if (!cf) continue;
    total += us;
    const url = cf.url.replace(/^file:\/\//, '');
    const short = shortUrl(url);
    const fnKey = frameKey(cf, short);
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + us);
    const pkg = !url
      ? cf.functionName
      : url.includes('node_modules/')
        ? short
            .split('/')
            .slice(0, short.startsWith('@') ? 2 : 1)
            .join('/')
        : url.startsWith('node:')
          ? 'node:' + (url.slice(5).split('/')[0] ?? '')
          : short;
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + us);
  }
}
const show = (title: string, map: Map<string, number>): void => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP))
    console.log(
      `${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`,
    );
};
console.log(`${files.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled`);
show('self time by function', byFn);
show('self time by package / file', byFile);
if (BUSY_MS !== undefined) {
  const ms = busy.reduce((a, b) => a + b.ms, 0);
  console.log(
    `\nbusy stretches of ${BUSY_MS} ms or more: ${busy.length}, ${ms.toFixed(0)} ms in all; longest:`,
  );
  for (const b of [...busy].sort((x, y) => y.ms - x.ms).slice(0, 10))
    console.log(`${b.ms.toFixed(1).padStart(8)} ms  at ${b.at.toFixed(2)} s`);
  show(`inclusive time inside those stretches (share of all sampled time)`, inBusy);
}

/** Runs of consecutive non-idle samples ≥ BUSY_MS; every frame on the stack is counted once per sample. */
function collectBusy(prof: CpuProfile, nodes: Map<number, ProfileNode>): void {
  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  let t = prof.startTime;
  let start: number | undefined;
  let frames = new Map<string, number>();
  const close = (): void => {
    if (start !== undefined && (t - start) / 1000 >= (BUSY_MS ?? Infinity)) {
      busy.push({ at: (start - prof.startTime) / 1e6, ms: (t - start) / 1000 });
      for (const [k, us] of frames) inBusy.set(k, (inBusy.get(k) ?? 0) + us);
    }
    start = undefined;
    frames = new Map();
  };
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    if (nodes.get(prof.samples[i] ?? -1)?.callFrame.functionName === '(idle)') {
      close();
      continue;
    }
    start ??= t;
    const seen = new Set<string>();
    for (let id = prof.samples[i]; id !== undefined; id = parent.get(id)) {
      const cf = nodes.get(id)?.callFrame;
      if (!cf) break;
      const key = frameKey(cf, shortUrl(cf.url.replace(/^file:\/\//, '')));
      if (seen.has(key)) continue;
      seen.add(key);
      frames.set(key, (frames.get(key) ?? 0) + dt);
    }
  }
  close();
}
