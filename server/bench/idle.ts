#!/usr/bin/env node
/**
 * `npm run bench:idle` — server memory per idle connection and per open small
 * document (issue 18), side by side with `@y/websocket-server` and Hocuspocus.
 *
 * Each run starts one system fresh (`systems.ts`, in-memory, `--expose-gc`, an IPC
 * channel for `process.memoryUsage()`), reads its RSS, then opens the shape's
 * connections from BENCH_IDLE_PROCS client processes (`idle-clients.ts`), each from
 * its own loopback source address (127.0.r.p: no shortage of ephemeral ports, and our
 * node's per-address cap is raised in systems.ts as for every bench). Each connection
 * syncs, sends one presence state and stays idle (for Hocuspocus, which closes a
 * socket silent for 60 s, the presence is renewed every 30 s). After 3 s: RSS as it stands, then
 * heap and RSS after a full collection. Per connection = the growth ÷ connections.
 *
 * Two shapes separate what a connection costs from what a document costs: with
 * C₁ connections over D₁ documents and C₂ over D₂ (default 10,000 / 500 and
 * 2,000 / 2,000), growth = C·c + D·d is solved for c (per connection, no document
 * share) and d (per open document holding one small edit); `5000/5000,5000/500` measures
 * 5,000 small documents (d from the difference ÷ 4,500). Memory is steady on a
 * loaded machine; the runs alternate systems and the table gives min–max over runs.
 *
 * Environment: BENCH_IDLE_SHAPES ["10000/500,2000/2000"], BENCH_IDLE_RUNS [2],
 * BENCH_IDLE_SYSTEMS [ours-memory,reference,hocuspocus], BENCH_IDLE_PROCS [4],
 * BENCH_OUT [server/bench/results] (writes idle.md and idle.json).
 * BENCH_IDLE_SNAPSHOT=dir also writes a heap snapshot before and after the connections
 * of every run (the RSS figures of such a run include the snapshots' own memory).
 * A shape needs connections + 200 file descriptors in the server (`ulimit -n`); one
 * that does not fit is skipped and said so.
 */
import { spawn, spawnSync, type ChildProcessByStdio } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import type { IdleClientsSpec } from './idle-clients.js';
import { RESULTS_DIR, benchScript, isEntryPoint } from './paths.js';
import { isFailed, type RunsBySystem } from './results.js';
import { median } from './stats.js';
import { rssKb, startSystem, waitLine, type IpcSystem } from './system-process.js';
import { errorMessage, sleep } from './wait.js';

/** C connections over D documents. */
export interface IdleShape {
  conns: number;
  docs: number;
}
/** One run's growth over the system's baseline, in KB, and per connection. */
export interface IdleRun {
  rssKb: number;
  rssAfterGcKb: number;
  heapKb: number;
  externalKb: number;
  perConnRssKb: number;
  perConnRssGcKb: number;
  perConnHeapKb: number;
  perConnExternalKb: number;
}
export interface IdleShapeResult extends IdleShape {
  skipped?: string;
  perSystem?: RunsBySystem<IdleRun>;
}
interface Fit {
  perConnKb: number;
  perDocKb: number;
  perDocKbRuns: number[];
}
export interface IdleResults {
  startedAt: string;
  machine: {
    cpus: number;
    model: string | undefined;
    loadavg: number[];
    fdLimit: number;
    node: string;
  };
  config: { SHAPES: IdleShape[]; RUNS: number; SYSTEMS: string[]; PROCS: number };
  shapes: IdleShapeResult[];
  loadavgAfter?: number[];
  perDocument?: Record<string, { rss: Fit; heap: Fit }>;
}
type ClientsProcess = ChildProcessByStdio<Writable, Readable, null>;

const env = process.env;
const SHAPES: IdleShape[] = (env.BENCH_IDLE_SHAPES ?? '10000/500,2000/2000').split(',').map((s) => {
  const [conns = NaN, docs = NaN] = s.split('/').map(Number);
  return { conns, docs };
});
const RUNS = Number(env.BENCH_IDLE_RUNS ?? 2);
const SYSTEMS = (env.BENCH_IDLE_SYSTEMS ?? 'ours-memory,reference,hocuspocus').split(',');
const PROCS = Number(env.BENCH_IDLE_PROCS ?? 4);
const OUT = env.BENCH_OUT ?? RESULTS_DIR;
const SNAPSHOT_DIR = env.BENCH_IDLE_SNAPSHOT;
const LABEL: Record<string, string> = {
  'ours-memory': 'Stateweave',
  reference: '@y/websocket-server',
  hocuspocus: '@hocuspocus/server',
  relay: 'raw relay',
};

const log = (m: string): void => {
  process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};
const fdLimit = (): number =>
  Number(spawnSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).stdout);

async function openClients(
  system: IpcSystem,
  { conns, docs }: IdleShape,
  run: number,
): Promise<ClientsProcess[]> {
  const procs: ClientsProcess[] = [];
  const tag = `idle-r${run}-${Date.now().toString(36)}`;
  const rooms = Array.from({ length: conns }, (_, i) => `${tag}-d${i % docs}`);
  const per = Math.ceil(conns / PROCS);
  try {
    for (let p = 0; p < PROCS; p++) {
      const slice = rooms.slice(p * per, (p + 1) * per);
      if (slice.length === 0) break;
      const spec: IdleClientsSpec = {
        url: system.url,
        client: system.client,
        localAddress: `127.0.${1 + (run % 250)}.${2 + p}`,
        rooms: slice,
        clientIdBase: 1 + p * per,
        editors: Math.max(0, Math.min(slice.length, docs - p * per)),
        // Hocuspocus closes a socket silent for 60 s (its `timeout`); the others need nothing.
        renewMs: system.name === 'hocuspocus' ? 30_000 : 0,
      };
      const child = spawn(process.execPath, [benchScript('idle-clients'), JSON.stringify(spec)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      child.stdout.setEncoding('utf8');
      procs.push(child);
    }
    await Promise.all(procs.map((c, p) => waitLine(c, /READY (\d+)/, 330_000, `clients ${p}`)));
  } catch (err) {
    await closeClients(procs);
    throw err;
  }
  return procs;
}

async function closeClients(procs: ClientsProcess[]): Promise<void> {
  await Promise.all(
    procs.map(async (c) => {
      c.stdin.end();
      const exited = await Promise.race([
        new Promise<boolean>((r) => c.once('exit', () => r(true))),
        sleep(5000).then(() => false),
      ]);
      if (!exited) c.kill('SIGKILL');
    }),
  );
}

async function oneRun(name: string, shape: IdleShape, run: number): Promise<IdleRun> {
  const system = await startSystem(name);
  try {
    await sleep(1000);
    const base = await system.memory();
    const baseRss = rssKb(system.pid);
    const snapshots =
      SNAPSHOT_DIR && `${SNAPSHOT_DIR}/${name}-${shape.conns}-${shape.docs}-r${run}`;
    if (snapshots) log(`  ${await system.snapshot(`${snapshots}-before.heapsnapshot`)}`);
    const procs = await openClients(system, shape, run);
    await sleep(3000);
    const rss = rssKb(system.pid);
    const after = await system.memory();
    if (snapshots) log(`  ${await system.snapshot(`${snapshots}-after.heapsnapshot`)}`);
    await closeClients(procs);
    const { conns } = shape;
    return {
      rssKb: rss - baseRss,
      rssAfterGcKb: after.rssAfterGcKb - base.rssAfterGcKb,
      heapKb: (after.heapUsed - base.heapUsed) / 1024,
      externalKb: (after.external - base.external) / 1024,
      perConnRssKb: (rss - baseRss) / conns,
      perConnRssGcKb: (after.rssAfterGcKb - base.rssAfterGcKb) / conns,
      perConnHeapKb: (after.heapUsed - base.heapUsed) / 1024 / conns,
      perConnExternalKb: (after.external - base.external) / 1024 / conns,
    };
  } finally {
    await system.stop();
  }
}

const range = (xs: number[], digits = 1): string => {
  const lo = Math.min(...xs).toFixed(digits);
  const hi = Math.max(...xs).toFixed(digits);
  return lo === hi ? lo : `${lo}–${hi}`;
};

const good = (perSystem: RunsBySystem<IdleRun>, name: string): IdleRun[] =>
  (perSystem[name] ?? []).filter((r): r is IdleRun => !isFailed(r));

/** Systems this bench can drive (systems.ts with a sync answer; not the relay). */
export const IDLE_SYSTEMS = new Set(['ours-memory', 'reference', 'hocuspocus']);

/** Runs every shape for every system, `runs` times, rotated; returns the results (nothing written). */
export async function runIdle({
  shapes = SHAPES,
  runs = RUNS,
  systems = SYSTEMS,
  log: say = log,
}: {
  shapes?: IdleShape[];
  runs?: number;
  systems?: string[];
  log?: (m: string) => void;
} = {}): Promise<IdleResults> {
  const limit = fdLimit();
  const results: IdleResults = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      loadavg: loadavg(),
      fdLimit: limit,
      node: process.version,
    },
    config: { SHAPES: shapes, RUNS: runs, SYSTEMS: systems, PROCS },
    shapes: [],
  };
  for (const shape of shapes) {
    if (shape.conns + 200 > limit) {
      say(
        `skipping ${shape.conns} connections: ulimit -n is ${limit} (the server needs one descriptor each)`,
      );
      results.shapes.push({ ...shape, skipped: `ulimit -n ${limit}` });
      continue;
    }
    const perSystem: RunsBySystem<IdleRun> = Object.fromEntries(systems.map((n) => [n, []]));
    for (let r = 0; r < runs; r++) {
      for (let k = 0; k < systems.length; k++) {
        const name = systems[(k + r) % systems.length] ?? '';
        const list = perSystem[name] ?? [];
        say(`${shape.conns} connections / ${shape.docs} documents: ${name}, run ${r + 1}/${runs}`);
        try {
          const res = await oneRun(name, shape, r * systems.length + k);
          say(
            `  RSS ${res.perConnRssKb.toFixed(2)} KB/conn (after GC ${res.perConnRssGcKb.toFixed(2)}), heap ${res.perConnHeapKb.toFixed(2)} KB, external ${res.perConnExternalKb.toFixed(2)} KB`,
          );
          list.push(res);
        } catch (err) {
          say(`  ${name} failed: ${errorMessage(err)}`);
          list.push({ error: errorMessage(err) });
        }
      }
    }
    results.shapes.push({ ...shape, perSystem });
  }
  results.loadavgAfter = loadavg();
  results.perDocument = solve(results.shapes);
  return results;
}

/** The summary table's row (columns: ours-memory, ours-leveldb, reference, hocuspocus, relay). */
export function idleSummaryRow(results: IdleResults): string | undefined {
  const shape = results.shapes.find((s) => s.perSystem);
  const perSystem = shape?.perSystem;
  if (!shape || !perSystem) return undefined;
  const cell = (name: string): string => {
    const ok = good(perSystem, name);
    return ok.length ? `${median(ok.map((r) => r.perConnRssKb)).toFixed(1)} KB` : '';
  };
  return `| 6. idle memory — RSS per connection (${shape.conns.toLocaleString('en')} over ${shape.docs} docs) | ${cell('ours-memory')} | | ${cell('reference')} | ${cell('hocuspocus')} | |`;
}

async function main(): Promise<void> {
  const results = await runIdle();
  const md = renderIdle(results);
  await mkdir(OUT, { recursive: true });
  await writeFile(join(OUT, 'idle.json'), JSON.stringify(results, null, 2));
  await writeFile(join(OUT, 'idle.md'), md);
  process.stdout.write(md);
}

/** Per connection (c) and per document (d) from two shapes: growth = C·c + D·d, medians over runs. */
function solve(shapes: IdleShapeResult[]): IdleResults['perDocument'] {
  const [a, b] = shapes.filter((s) => s.perSystem);
  if (!a?.perSystem || !b) return undefined;
  const out: NonNullable<IdleResults['perDocument']> = {};
  for (const name of Object.keys(a.perSystem)) {
    const ok = (s: IdleShapeResult): IdleRun[] => (s.perSystem ? good(s.perSystem, name) : []);
    if (!ok(a).length || !ok(b).length) continue;
    const fit = (key: keyof IdleRun): Omit<Fit, 'perDocKbRuns'> => {
      const ga = median(ok(a).map((r) => r[key]));
      const gb = median(ok(b).map((r) => r[key]));
      const det = a.conns * b.docs - b.conns * a.docs;
      return {
        perConnKb: (ga * b.docs - gb * a.docs) / det,
        perDocKb: (a.conns * gb - b.conns * ga) / det,
      };
    };
    // Run i of one shape with run i of the other: the spread over runs.
    const pairs = (key: keyof IdleRun): number[] => {
      const det = a.conns * b.docs - b.conns * a.docs;
      const n = Math.min(ok(a).length, ok(b).length);
      return Array.from(
        { length: n },
        (_, i) => (a.conns * (ok(b)[i]?.[key] ?? NaN) - b.conns * (ok(a)[i]?.[key] ?? NaN)) / det,
      );
    };
    out[name] = {
      rss: { ...fit('rssKb'), perDocKbRuns: pairs('rssKb') },
      heap: { ...fit('heapKb'), perDocKbRuns: pairs('heapKb') },
    };
  }
  return out;
}

export function renderIdle(results: IdleResults): string {
  const lines: string[] = [];
  const { machine } = results;
  lines.push(`## Idle memory (${results.startedAt})`, '');
  lines.push(
    `${machine.cpus} × ${machine.model}, ${machine.node}, load average ${machine.loadavg.map((x) => x.toFixed(1)).join(' / ')} at the start and ${(results.loadavgAfter ?? []).map((x) => x.toFixed(1)).join(' / ')} at the end; ${results.config.RUNS} runs per system, ${results.config.PROCS} client processes, ulimit -n ${machine.fdLimit}. Min–max over runs.`,
    '',
  );
  for (const shape of results.shapes) {
    lines.push(
      `### ${shape.conns.toLocaleString('en')} idle connections over ${shape.docs} documents`,
      '',
    );
    if (shape.skipped || !shape.perSystem) {
      lines.push(`Skipped: ${shape.skipped ?? 'no runs'}.`, '');
      continue;
    }
    lines.push(
      '| system | RSS per connection | after a full GC | JS heap per connection | external per connection |',
    );
    lines.push('|---|--:|--:|--:|--:|');
    for (const [name, runs] of Object.entries(shape.perSystem)) {
      const ok = good(shape.perSystem, name);
      if (!ok.length) {
        const first = runs[0];
        lines.push(
          `| ${LABEL[name] ?? name} | failed: ${first && isFailed(first) ? first.error : 'no runs'} | | | |`,
        );
        continue;
      }
      const kb = (key: keyof IdleRun): string =>
        `${range(
          ok.map((r) => r[key]),
          2,
        )} KB`;
      lines.push(
        `| ${LABEL[name] ?? name} | ${kb('perConnRssKb')} | ${kb('perConnRssGcKb')} | ${kb('perConnHeapKb')} | ${kb('perConnExternalKb')} |`,
      );
    }
    lines.push('');
  }
  const [a, b] = results.shapes.filter((s) => s.perSystem);
  if (results.perDocument && a && b) {
    lines.push(
      `### Split into per connection and per open document`,
      '',
      `Solved from the two shapes (${a.conns}/${a.docs} and ${b.conns}/${b.docs}; medians, and run i of one shape with run i of the other for the spread; each document holds one small edit, and a presence state per connection).`,
      '',
      '| system | RSS per connection | RSS per document | (run by run) | heap per connection | heap per document | (run by run) |',
      '|---|--:|--:|--:|--:|--:|--:|',
    );
    for (const [name, f] of Object.entries(results.perDocument)) {
      const runs = (xs: number[]): string => (xs.length ? `${range(xs, 2)} KB` : '');
      lines.push(
        `| ${LABEL[name] ?? name} | ${f.rss.perConnKb.toFixed(2)} KB | ${f.rss.perDocKb.toFixed(2)} KB | ${runs(f.rss.perDocKbRuns)} | ${f.heap.perConnKb.toFixed(2)} KB | ${f.heap.perDocKb.toFixed(2)} KB | ${runs(f.heap.perDocKbRuns)} |`,
      );
    }
    lines.push('');
  }
  return lines.join('\n');
}

if (isEntryPoint(import.meta.url)) await main();
