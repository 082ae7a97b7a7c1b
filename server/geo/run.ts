/**
 * `npm run geo`: regions on one machine (issue 20). Three regions (eu, us, ap),
 * one `stateweave serve` process each, one-way delays between them by delaying
 * TCP proxies (regions.ts), once with the WebSocket mesh and once with Redis as
 * the backplane. Measures edit → user latency, `owner` call latency, a fresh
 * client's open, and a region cut off; checks convergence by code.
 *
 *   npm run geo                          full form (docs/geo.md; a few minutes)
 *   npm run geo -- --short               short form (CI: a few seconds a scenario)
 *   npm run geo -- --backplane redis     one backplane only (mesh or redis)
 *   npm run geo -- --nodes-per-region 2  two nodes per region (1 ms links between them)
 *   npm run geo -- latency cutoff        only these scenarios (latency owner open hot stable cutoff)
 *   npm run geo -- presence              replicas follow their users (its own cluster:
 *                                        two nodes per region, --placement presence)
 *
 * Exits 1 when an invariant failed; prints the measured figures.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import type { ChaosResult } from '../chaos/lib.js';
import { say } from '../chaos/lib.js';
import type { GeoForm } from './form.js';
import { startGeoCluster, type BackplaneKind, type GeoCluster } from './geo-cluster.js';
import { editLatency } from './latency.js';
import { ownerLatency } from './owner.js';
import { freshOpen } from './open.js';
import { regionCutOff } from './cutoff.js';
import { hotDocument } from './hot.js';
import { stableWindows } from './stable.js';
import { describeDelays } from './regions.js';
import { presenceMoves } from './presence.js';

type Scenario = (geo: GeoCluster, form: GeoForm) => Promise<ChaosResult>;

// The cut-off runs last: it is the only one that leaves traces (reconnected links).
const SCENARIOS: Record<string, Scenario> = {
  latency: editLatency,
  owner: ownerLatency,
  open: freshOpen,
  hot: hotDocument,
  stable: stableWindows,
  cutoff: regionCutOff,
};
/** Scenarios that start their own cluster (other nodes or flags), after the shared one. */
const OWN_CLUSTER: Record<
  string,
  (backplane: BackplaneKind, form: GeoForm) => Promise<ChaosResult>
> = { presence: presenceMoves };

process.setMaxListeners(0);
const args = process.argv.slice(2);
const form: GeoForm = { short: args.includes('--short') };
/** The value after `--flag`, and its index (so it is not taken for a scenario name). */
const valueOf = (flag: string): { value?: string; at: number } => {
  const at = args.indexOf(flag);
  return at >= 0 ? { value: args[at + 1], at: at + 1 } : { at: -1 };
};
const backplaneArg = valueOf('--backplane');
if (backplaneArg.at >= 0 && backplaneArg.value !== 'mesh' && backplaneArg.value !== 'redis') {
  process.stderr.write(`--backplane takes mesh or redis, not ${backplaneArg.value}\n`);
  process.exit(2);
}
const backplanes: BackplaneKind[] =
  backplaneArg.value === 'mesh' || backplaneArg.value === 'redis'
    ? [backplaneArg.value]
    : ['mesh', 'redis'];
const perRegionArg = valueOf('--nodes-per-region');
const nodesPerRegion = perRegionArg.at >= 0 ? Number(perRegionArg.value) : 1;
if (!Number.isInteger(nodesPerRegion) || nodesPerRegion < 1 || nodesPerRegion > 3) {
  process.stderr.write(`--nodes-per-region takes 1, 2 or 3, not ${perRegionArg.value}\n`);
  process.exit(2);
}
const valueIndexes = new Set([backplaneArg.at, perRegionArg.at]);
const chosen = args.filter((a, i) => !a.startsWith('--') && !valueIndexes.has(i));
const known = [...Object.keys(SCENARIOS), ...Object.keys(OWN_CLUSTER)];
const unknown = chosen.filter((name) => !known.includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown scenario ${unknown.join(', ')}; known: ${known.join(', ')}\n`);
  process.exit(2);
}
const picked = chosen.length > 0 ? chosen : known;
const names = picked.filter((name) => name in SCENARIOS);
const ownNames = picked.filter((name) => name in OWN_CLUSTER);

// Ctrl-C or a kill: exit through 'exit', whose handlers kill the nodes and Redis by pid.
process.once('SIGINT', () => process.exit(130));
process.once('SIGTERM', () => process.exit(143));
// Every wait is bounded; this bounds the whole run too, whatever hangs (the exit kills the nodes).
const RUN_LIMIT_MS = form.short ? 6 * 60_000 : 30 * 60_000;
setTimeout(() => {
  process.stderr.write(`geo harness: still running after ${RUN_LIMIT_MS / 60_000} min, stopped\n`);
  process.exit(1);
}, RUN_LIMIT_MS).unref();

const hasRedis = spawnSync('redis-server', ['--version']).status === 0;
const results: ChaosResult[] = [];
const started = performance.now();
for (const backplane of backplanes) {
  if (backplane === 'redis' && !hasRedis) {
    results.push({ name: 'redis', failures: [], figures: {}, notRun: 'no redis-server on PATH' });
    continue;
  }
  results.push(...(await runShared(backplane)));
  for (const name of ownNames) {
    say('geo', `${backplane}: ${name} (its own cluster)`);
    const t0 = performance.now();
    let result: ChaosResult;
    try {
      result = await OWN_CLUSTER[name]!(backplane, form);
    } catch (err) {
      const stack = (err as Error).stack ?? String(err);
      result = { name: `${backplane}: ${name}`, failures: [`crashed: ${stack}`], figures: {} };
    }
    result.figures['seconds'] = Math.round((performance.now() - t0) / 100) / 10;
    results.push(result);
  }
}

/** The scenarios that share one cluster of the chosen shape. */
async function runShared(backplane: BackplaneKind): Promise<ChaosResult[]> {
  const results: ChaosResult[] = [];
  if (names.length === 0) return results;
  say('geo', `${backplane}: starting three regions, ${nodesPerRegion} node(s) each`);
  let geo: GeoCluster;
  try {
    geo = await startGeoCluster({ backplane, nodesPerRegion });
  } catch (err) {
    results.push({ name: backplane, failures: [`start: ${String(err)}`], figures: {} });
    return results;
  }
  try {
    for (const name of names) {
      say('geo', `${backplane}: ${name}`);
      const t0 = performance.now();
      let result: ChaosResult;
      try {
        result = await SCENARIOS[name]!(geo, form);
      } catch (err) {
        const stack = (err as Error).stack ?? String(err);
        result = { name: `${backplane}: ${name}`, failures: [`crashed: ${stack}`], figures: {} };
      }
      result.figures['seconds'] = Math.round((performance.now() - t0) / 100) / 10;
      results.push(result);
    }
  } finally {
    await geo.close();
  }
  return results;
}

const lines = [
  `geo harness, ${form.short ? 'short' : 'full'} form, ${Math.round((performance.now() - started) / 1000)} s`,
  `regions eu, us, ap, ${nodesPerRegion} node(s) each; ${describeDelays()}`,
  `load average at the end ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')} on ${availableParallelism()} cores (the figures include this machine's load)`,
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
