#!/usr/bin/env node
/**
 * Summarise V8 CPU profiles (node --cpu-prof): top functions by self time, and
 * self time by package / source file. `node profile-summary.mjs DIR_OR_FILES… [--top N]`
 *
 * Profile our node under scenario 1:
 *   BENCH_SCENARIOS=1 BENCH_SYSTEMS=ours-memory BENCH_SECONDS=20 BENCH_RUNS=1 \
 *   BENCH_OUR_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/sw-prof" node server/bench/run.mjs
 *   node server/bench/profile-summary.mjs /tmp/sw-prof
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const TOP = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
const files = args.flatMap((a) => (statSync(a).isDirectory() ? readdirSync(a).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(a, f)) : [a]));
const byFn = new Map();
const byFile = new Map();
let total = 0;
for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map();
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = prof.timeDeltas[i] ?? 0;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + dt);
  }
  for (const [id, us] of self) {
    const { callFrame: cf } = nodes.get(id);
    total += us;
    const url = cf.url.replace(/^file:\/\//, '');
    const short = url.includes('node_modules/') ? url.slice(url.lastIndexOf('node_modules/') + 13) : url.replace(/.*\/server\//, 'server/');
    const fnKey = `${cf.functionName || '(anonymous)'}  ${short ? `${short}:${cf.lineNumber + 1}` : ''}`;
    byFn.set(fnKey, (byFn.get(fnKey) ?? 0) + us);
    const pkg = !url ? cf.functionName : url.includes('node_modules/') ? short.split('/').slice(0, short.startsWith('@') ? 2 : 1).join('/') : url.startsWith('node:') ? 'node:' + url.slice(5).split('/')[0] : short;
    byFile.set(pkg, (byFile.get(pkg) ?? 0) + us);
  }
}
const show = (title, map) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP)) console.log(`${((us / total) * 100).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(7)} ms  ${k}`);
};
console.log(`${files.length} profile(s), ${(total / 1e6).toFixed(1)} s sampled`);
show('self time by function', byFn);
show('self time by package / file', byFile);
