#!/usr/bin/env node
/**
 * `npm run bench` — Stateweave against the other Yjs backends, side by side: the
 * orchestrator. Knobs: config.ts.
 *
 * Every system runs as its own process on 127.0.0.1 (pinned to core 0 with taskset
 * when available, launcher.ts); this process is the load generator (fanout.ts),
 * re-executed on core 1. Systems are started fresh for each scenario and the runs
 * alternate between them (run 1: A B C …, run 2: B C … A, …). Every load loop is
 * bounded in count and time. Writes results/latest.md (render.ts) and latest.json
 * (results.ts).
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import {
  CLIENTS,
  LARGE_EDITS,
  OUT_DIR,
  PIN,
  QUICK,
  RUNS,
  SCENARIOS,
  SECONDS,
  SYSTEM_LIST,
  log,
} from './config.js';
import { renderFieldUnits } from './field-units.js';
import { BENCH_DIR, benchScript } from './paths.js';
import { REFERENCE_DIR } from './peers.js';
import { runPinned } from './pinning.js';
import { normalizeScenario, renderMarkdown } from './render.js';
import type { BenchResults, MachineInfo, ScenarioResult } from './results.js';
import { LOAD, runFanOutScenario, runSaturationScenario } from './scenario-fanout.js';
import { runSyncScenario } from './scenario-sync.js';
import { errorMessage } from './wait.js';

const env = process.env;

/** latest.md: the scenarios, then the field's units drawn from them. */
const render = (results: BenchResults): string => {
  const units = renderFieldUnits(results);
  return renderMarkdown(results) + (units.length ? `\n${units.join('\n')}\n` : '');
};

async function runScenario(id: number): Promise<ScenarioResult> {
  const load = LOAD[id];
  if (load) return runFanOutScenario(id, load);
  switch (id) {
    case 4:
      return runSaturationScenario();
    case 5:
      return runSyncScenario();
    case 6: {
      // idle.ts: several client processes, RSS and heap from inside, per connection and per document
      if (QUICK) env.BENCH_IDLE_SHAPES ??= '400/40,200/200';
      // imported here: idle.ts reads its knobs when it loads
      const { IDLE_SYSTEMS, idleSummaryRow, renderIdle, runIdle } = await import('./idle.js');
      log('scenario 6: idle memory (idle.ts)');
      const res = await runIdle({
        systems: SYSTEM_LIST.filter((n) => IDLE_SYSTEMS.has(n)),
        runs: Number(env.BENCH_IDLE_RUNS ?? (QUICK ? 1 : 2)),
        log,
      });
      return {
        title: 'idle memory: server memory per idle connection and per open small document',
        kind: 'extras',
        markdown: renderIdle(res),
        summaryRow: idleSummaryRow(res),
        data: res,
      };
    }
    case 8:
      log('scenario 8: our extras (functions, three-node replication)');
      return (await import('./extras.js')).runExtras({ log, pin: PIN, quick: QUICK });
    case 9:
      log('scenario 9: presence at 1 Hz in one document');
      return (await import('./presence.js')).runPresence({
        systems: SYSTEM_LIST,
        runs: RUNS,
        quick: QUICK,
      });
    case 10: {
      if (QUICK) {
        env.BENCH_BIG_MB ??= '2';
        env.BENCH_BIG_JOINERS ??= '20';
      }
      // imported here: big-doc.ts reads its knobs when it loads
      const { BIG_DOC_SYSTEMS, bigDocSummaryRows, renderBigDoc, runBigDoc } =
        await import('./big-doc.js');
      log('scenario 10: join storm and pending-update sync of a large document (big-doc.ts)');
      const res = await runBigDoc({
        systems: SYSTEM_LIST.filter((n) => BIG_DOC_SYSTEMS.has(n)),
        runs: Number(env.BENCH_BIG_RUNS ?? 1),
        log,
      });
      return {
        title: 'large document: join storm and sync with a pending update',
        kind: 'extras',
        markdown: renderBigDoc(res),
        summaryRow: bigDocSummaryRows(res),
        data: res,
      };
    }
    case 11: {
      // multiplex.ts (issue 15): our node only; its own process, its lines as the result
      log('scenario 11: many documents over one socket (multiplex.ts)');
      const run = spawnSync(process.execPath, [benchScript('multiplex')], {
        env: { ...env, BENCH_MUX_RUNS: env.BENCH_MUX_RUNS ?? (QUICK ? '2' : '5') },
        encoding: 'utf8',
        timeout: 10 * 60_000,
      });
      if (run.status !== 0)
        throw new Error(`multiplex exited ${run.status ?? run.signal}: ${run.stderr}`);
      const lines = run.stdout.trim().split('\n');
      for (const line of lines) log(`  ${line}`);
      return {
        title: 'many documents over one socket (our node; SDK client, in-memory store)',
        kind: 'extras',
        markdown: lines.map((l) => `- ${l}`).join('\n'),
      };
    }
    case 12: {
      // startup.ts (issue 18): our node alone (no peer stores documents); its own process, its JSON as the data
      log('scenario 12: node start with stored documents (startup.ts)');
      const sizes = QUICK
        ? { BENCH_STARTUP_DOCS: '1000', BENCH_STARTUP_RUNS: '2', BENCH_STARTUP_OPENS: '100' }
        : {};
      const run = spawnSync(process.execPath, [benchScript('startup')], {
        env: { ...sizes, ...env, BENCH_OUT: OUT_DIR },
        encoding: 'utf8',
        timeout: 20 * 60_000,
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      if (run.status !== 0) throw new Error(`startup exited ${run.status ?? run.signal}`);
      return {
        title: 'node start with stored documents (our node, LevelDB)',
        kind: 'extras',
        markdown: await readFile(join(OUT_DIR, 'startup.md'), 'utf8'),
        data: JSON.parse(await readFile(join(OUT_DIR, 'startup.json'), 'utf8')) as unknown,
      };
    }
    default:
      throw new Error(`scenario ${id}: not implemented`);
  }
}

function machineInfo(): MachineInfo {
  let cpuinfo = '';
  try {
    cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    cpuinfo = ''; // not Linux: the model is unknown
  }
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  return {
    cpus: cpus().length,
    cpu: model.trim(),
    node: process.version,
    platform: process.platform,
  };
}

/** Versions of the peers and clients: server/bench/node_modules holds Hocuspocus, ref-current the reference, the workspace the rest. */
function versions(): Record<string, string> {
  const out: Record<string, string> = {};
  const reference = (pkg: string): string => {
    try {
      const manifest = readFileSync(
        join(REFERENCE_DIR, 'node_modules', pkg, 'package.json'),
        'utf8',
      );
      return (JSON.parse(manifest) as { version: string }).version;
    } catch {
      return '?';
    }
  };
  const bases = [
    join(BENCH_DIR, 'node_modules'),
    join(BENCH_DIR, '..', 'node_modules'),
    join(BENCH_DIR, '..', '..', 'node_modules'),
  ];
  for (const pkg of [
    '@y/websocket-server',
    '@hocuspocus/server',
    '@hocuspocus/provider',
    'y-websocket',
    'yjs',
    'ws',
  ]) {
    out[pkg] = '?';
    for (const base of bases) {
      try {
        const { version } = JSON.parse(readFileSync(join(base, pkg, 'package.json'), 'utf8')) as {
          version: string;
        };
        out[pkg] = version;
        break;
      } catch {
        continue; // not installed under this base: try the next
      }
    }
  }
  out['@y/websocket-server'] = reference('@y/websocket-server');
  out['yjs (reference)'] = reference('yjs');
  return out;
}

async function main(): Promise<void> {
  if (env.BENCH_RENDER) {
    // re-render a saved latest.json (no load)
    const saved = JSON.parse(await readFile(env.BENCH_RENDER, 'utf8')) as BenchResults;
    for (const [id, sc] of Object.entries(saved.scenarios))
      saved.scenarios[id] = normalizeScenario(sc);
    process.stdout.write(render(saved));
    process.exit(0);
  }
  process.setMaxListeners(0); // y-websocket adds a process 'exit' listener per provider
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    machine: machineInfo(),
    config: { RUNS, SECONDS, CLIENTS, SCENARIOS, LARGE_EDITS, PIN, QUICK },
    versions: versions(),
    scenarios: {},
  };
  log(
    `stateweave bench: runs=${RUNS} seconds=${SECONDS} clients=${CLIENTS} scenarios=${SCENARIOS.join(',')} pinned=${PIN}`,
  );
  for (const id of SCENARIOS) {
    try {
      results.scenarios[id] = await runScenario(id);
    } catch (err) {
      log(`scenario ${id} failed: ${err instanceof Error ? err.stack : String(err)}`);
      results.scenarios[id] = { kind: 'failed', error: errorMessage(err) };
    }
  }
  results.finishedAt = new Date().toISOString();
  const md = render(results);
  await mkdir(OUT_DIR, { recursive: true });
  await writeFile(join(OUT_DIR, 'latest.md'), md);
  await writeFile(join(OUT_DIR, 'latest.json'), JSON.stringify(results, null, 2));
  process.stdout.write(`\n${md}\n`);
  log(`written ${join(OUT_DIR, 'latest.md')} and latest.json`);
  process.exit(0);
}

// Servers go to core 0; the load generator runs on core 1.
await runPinned(import.meta.url, main);
