/**
 * `npm run chaos`: the chaos suite (issue 17, item 7). Real `stateweave serve`
 * processes on 127.0.0.1, faults injected from outside (kill -9, a full tmpfs, a
 * torn log, a skewed clock, a reconnect storm, a long mixed load), and a checker
 * that compares replicas by code. Every loop is bounded in count and time.
 *
 *   npm run chaos                      short form (CI: ≤ 2 minutes on 2 cores)
 *   npm run chaos -- --full            full form (docs/chaos.md; ~45 minutes)
 *   npm run chaos -- kill9 soak        only these scenarios
 *
 * Exits 1 when an invariant failed; prints a summary with the measured figures.
 */
import type { Form } from './form.js';
import type { ChaosResult } from './lib.js';
import { killNine } from './kill9.js';
import { diskFull } from './disk-full.js';
import { tornWrite } from './torn-write.js';
import { clockSkew } from './clock-skew.js';
import { reconnectStorm } from './reconnect-storm.js';
import { soak } from './soak.js';

const SCENARIOS: Record<string, (form: Form) => Promise<ChaosResult>> = {
  kill9: killNine,
  enospc: diskFull,
  torn: tornWrite,
  skew: clockSkew,
  storm: reconnectStorm,
  soak,
};

// Each spawned node and each y-websocket provider adds an exit listener.
process.setMaxListeners(0);
const args = process.argv.slice(2);
const form: Form = { full: args.includes('--full') };
const chosen = args.filter((a) => !a.startsWith('--'));
const unknown = chosen.filter((name) => !(name in SCENARIOS));
if (unknown.length > 0) {
  process.stderr.write(
    `unknown scenario ${unknown.join(', ')}; known: ${Object.keys(SCENARIOS).join(', ')}\n`,
  );
  process.exit(2);
}
const names = chosen.length > 0 ? chosen : Object.keys(SCENARIOS);
const results: ChaosResult[] = [];
const started = performance.now();
for (const name of names) {
  const t0 = performance.now();
  let result: ChaosResult;
  try {
    result = await SCENARIOS[name]!(form);
  } catch (err) {
    result = { name, failures: [`crashed: ${(err as Error).stack ?? String(err)}`], figures: {} };
  }
  result.figures['seconds'] = Math.round((performance.now() - t0) / 100) / 10;
  results.push(result);
}

const lines = [
  `chaos suite, ${form.full ? 'full' : 'short'} form, ${Math.round((performance.now() - started) / 1000)} s`,
];
for (const r of results) {
  const status =
    r.notRun !== undefined ? `NOT RUN (${r.notRun})` : r.failures.length === 0 ? 'ok' : 'FAILED';
  lines.push(`- ${r.name}: ${status}`);
  for (const [k, v] of Object.entries(r.figures)) lines.push(`    ${k}: ${v}`);
  for (const f of r.failures) lines.push(`    ✗ ${f}`);
}
process.stdout.write(lines.join('\n') + '\n');
// Exit even if a client library left a timer or socket behind: the nodes are already stopped.
process.exit(results.some((r) => r.failures.length > 0) ? 1 : 0);
