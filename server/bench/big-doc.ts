#!/usr/bin/env node
/**
 * `npm run bench:big-doc` — a large document under a join storm, and its sync
 * with a pending update (issue 18), side by side with `@y/websocket-server` and
 * Hocuspocus.
 *
 * The document: BENCH_BIG_MB (20) MB of text in one Y.Text, written as 1,000-
 * character inserts at random positions (every fifth insert also deletes 200
 * characters somewhere), built once in this process and seeded by one client as
 * updates of about 1 MB (our node's frame limit is 8 MB). Each run starts the
 * system fresh, seeds it, checks that a joiner receives all of it, then:
 *
 * - join storm: BENCH_BIG_JOINERS (150) clients connect at once from
 *   BENCH_BIG_PROCS (3) processes and each asks for the whole document (sync step 1,
 *   empty state vector); time from its connect to its complete sync step 2
 *   (raw-joiner.ts: a raw socket that counts bytes, so the generator holds
 *   nothing); the server's peak RSS during the storm (VmHWM, reset before it);
 * - sync with a pending update: the seeder writes one small edit and a new
 *   client joins at once; time to its complete sync step 2 (5 times; median, max).
 *
 * Environment: BENCH_BIG_MB [20], BENCH_BIG_JOINERS [150; 0: no storm, only the
 * pending-update sync], BENCH_BIG_PROCS [3],
 * BENCH_BIG_RUNS [1], BENCH_BIG_SYSTEMS [ours-memory,reference,hocuspocus],
 * BENCH_OUT (writes big-doc.md and big-doc.json), BENCH_OUR_NODE_ARGS (extra node flags for
 * our node, e.g. `--cpu-prof --cpu-prof-dir=DIR`).
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as decoding from 'lib0/decoding';
import * as prng from 'lib0/prng';
import type { JoinersResult, JoinersSpec } from './big-doc-joiners.js';
import type { SystemEndpoint } from './light-client.js';
import { RESULTS_DIR, benchScript, isEntryPoint } from './paths.js';
import { rawJoin, type RawJoin } from './raw-joiner.js';
import {
  pct,
  renderBigDoc,
  type BigDocResults,
  type BigDocRun,
  type Storm,
} from './big-doc-report.js';
import { cpuTimesMs } from './proc-stats.js';
import {
  procMemKb,
  resetPeakRss,
  startSystem,
  waitLine,
  type IpcSystem,
} from './system-process.js';
import { errorMessage, sleep } from './wait.js';

interface BuiltDocument {
  doc: Y.Doc;
  updates: Uint8Array[];
  bytes: number;
}
type JoinersProcess = ChildProcessByStdio<Writable, Readable, null>;

const env = process.env;
const MB = Number(env.BENCH_BIG_MB ?? 20);
const JOINERS = Number(env.BENCH_BIG_JOINERS ?? 150);
const PROCS = Number(env.BENCH_BIG_PROCS ?? 3);
const RUNS = Number(env.BENCH_BIG_RUNS ?? 1);
const SYSTEMS = (env.BENCH_BIG_SYSTEMS ?? 'ours-memory,reference,hocuspocus').split(',');
const PENDING_JOINS = 5;
/** Extra node flags for our node only, e.g. `--cpu-prof --cpu-prof-dir=DIR` (profile-summary.ts). */
const OUR_NODE_ARGS = (env.BENCH_OUR_NODE_ARGS ?? '').split(' ').filter(Boolean);
const OUT = env.BENCH_OUT ?? RESULTS_DIR;
const log = (m: string): void => {
  process.stderr.write(`[big-doc ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
};

/** The document as ~1 MB updates, and its size as one update. */
function buildDocument(): BuiltDocument {
  const doc = new Y.Doc();
  doc.clientID = 7;
  const text = doc.getText('text');
  const gen = prng.create(42);
  const chunk = 'x'.repeat(1000);
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  const target = MB * 1024 * 1024;
  for (let guard = 0; text.length < target && guard < 1_000_000; guard++) {
    doc.transact(() => {
      for (let i = 0; i < 1000 && text.length < target; i++) {
        text.insert(prng.uint32(gen, 0, text.length), chunk);
        if (i % 5 === 0 && text.length > 1000)
          text.delete(prng.uint32(gen, 0, text.length - 200), 200);
      }
    });
  }
  return { doc, updates, bytes: Y.encodeStateAsUpdate(doc).byteLength };
}

function frame(
  system: SystemEndpoint,
  room: string,
  write: (e: encoding.Encoder) => void,
): Uint8Array {
  const e = encoding.createEncoder();
  if (system.client === 'hocuspocus') encoding.writeVarString(e, room);
  write(e);
  return encoding.toUint8Array(e);
}
const syncFrame = (
  system: SystemEndpoint,
  room: string,
  type: number,
  payload: Uint8Array,
): Uint8Array =>
  frame(system, room, (e) => {
    encoding.writeVarUint(e, 0);
    encoding.writeVarUint(e, type);
    encoding.writeVarUint8Array(e, payload);
  });

/** A `ws` client that writes updates to `room`; resolves once the server answered its step 1. */
interface Seeder {
  send(update: Uint8Array): void;
  /** resolves once the socket's buffer is empty (bounded: 30 s) */
  flushed(): Promise<void>;
  close(): void;
}

async function seeder(system: SystemEndpoint, room: string): Promise<Seeder> {
  const hocuspocus = system.client === 'hocuspocus';
  const ws = new WebSocket(hocuspocus ? system.url : `${system.url}/${room}`, {
    perMessageDeflate: false,
    maxPayload: 1024 * 1024 * 1024,
  });
  await new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('open', () => {
      if (hocuspocus)
        ws.send(
          frame(system, room, (e) => {
            encoding.writeVarUint(e, 2);
            encoding.writeVarUint(e, 0);
            encoding.writeVarString(e, '');
          }),
        );
      ws.send(syncFrame(system, room, 0, Y.encodeStateVector(new Y.Doc())));
    });
    ws.on('message', (data: Buffer) => {
      const d = decoding.createDecoder(data);
      if (hocuspocus) decoding.readVarString(d);
      if (decoding.readVarUint(d) !== 0) return;
      if (decoding.readVarUint(d) === 1) resolve();
    });
  });
  return {
    send: (update) => ws.send(syncFrame(system, room, 2, update)),
    flushed: async () => {
      for (let i = 0; i < 600 && ws.bufferedAmount > 0; i++) await sleep(50);
    },
    close: () => ws.terminate(),
  };
}

async function storm(system: IpcSystem, room: string): Promise<Storm> {
  const per = Math.ceil(JOINERS / PROCS);
  const procs: JoinersProcess[] = [];
  for (let p = 0; p < PROCS; p++) {
    const count = Math.min(per, JOINERS - p * per);
    if (count <= 0) break;
    const spec: JoinersSpec = {
      port: system.port,
      room,
      hocuspocus: system.client === 'hocuspocus',
      count,
      localAddress: `127.0.200.${2 + p}`,
      timeoutMs: 120_000,
    };
    const child = spawn(process.execPath, [benchScript('big-doc-joiners'), JSON.stringify(spec)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    child.stdout.setEncoding('utf8');
    procs.push(child);
  }
  await Promise.all(procs.map((c, p) => waitLine(c, /READY/, 20_000, `joiners ${p}`)));
  const results = procs.map((c, p) => waitLine(c, /(\{.*\})\n/, 150_000, `joiners ${p}`));
  const reset = resetPeakRss(system.pid);
  const cpu0 = cpuTimesMs(system.pid);
  const started = performance.now();
  for (const c of procs) c.stdin.write('GO\n');
  const all: JoinersResult = { times: [], bytes: [], errors: [] };
  let joinersCpuMs = 0;
  for (const r of await Promise.all(results)) {
    const part = JSON.parse(r[1] ?? '{}') as JoinersResult;
    all.times.push(...part.times);
    all.bytes.push(...part.bytes);
    all.errors.push(...part.errors);
    joinersCpuMs += part.cpuMs ?? NaN;
  }
  const wallMs = performance.now() - started;
  const cpu1 = cpuTimesMs(system.pid);
  const serverCpuMs = cpu1.user + cpu1.system - cpu0.user - cpu0.system;
  const serverKernelMs = cpu1.system - cpu0.system;
  const { hwm } = procMemKb(system.pid);
  for (const c of procs) c.stdin.end();
  return {
    ...all,
    wallMs,
    peakRssKb: reset ? hwm : undefined,
    serverCpuMs,
    serverKernelMs,
    joinersCpuMs,
  };
}

async function oneRun(
  name: string,
  built: BuiltDocument,
  run: number,
  log: (m: string) => void,
): Promise<BigDocRun> {
  const system = await startSystem(name, name.startsWith('ours') ? OUR_NODE_ARGS : []);
  const room = `big-r${run}-${Date.now().toString(36)}`;
  try {
    const seed = await seeder(system, room);
    const t0 = performance.now();
    for (const u of built.updates) seed.send(u);
    await seed.flushed();
    // Seeded when a joiner receives (nearly) all of it; bounded.
    let check: RawJoin = { ms: NaN, bytes: 0 };
    for (let i = 0; i < 60; i++) {
      check = await rawJoin({
        port: system.port,
        room,
        hocuspocus: system.client === 'hocuspocus',
        timeoutMs: 60_000,
      });
      if (check.bytes >= built.bytes * 0.95) break;
      await sleep(500);
    }
    const seedMs = performance.now() - t0;
    if (check.bytes < built.bytes * 0.95)
      throw new Error(`seeded ${check.bytes} of ${built.bytes} bytes`);
    log(
      `  seeded ${(check.bytes / 1048576).toFixed(1)} MB in ${seedMs.toFixed(0)} ms; first join ${check.ms.toFixed(0)} ms`,
    );
    const rssBeforeKb = procMemKb(system.pid).rss;
    // BENCH_BIG_JOINERS=0 measures only the sync with a pending update.
    const s = JOINERS > 0 ? await storm(system, room) : undefined;
    if (s)
      log(
        `  storm: ${s.times.length}/${JOINERS} joined, p50 ${pct(s.times, 50).toFixed(0)} ms, p99 ${pct(s.times, 99).toFixed(0)} ms, peak RSS ${((s.peakRssKb ?? NaN) / 1024).toFixed(0)} MB, CPU: server ${(s.serverCpuMs ?? NaN).toFixed(0)} ms (kernel ${(s.serverKernelMs ?? NaN).toFixed(0)}), joiners ${(s.joinersCpuMs ?? NaN).toFixed(0)} ms in ${s.wallMs.toFixed(0)} ms${s.errors.length ? `, errors: ${s.errors.slice(0, 2).join('; ')}` : ''}`,
      );
    await sleep(1000);
    // Sync with a pending update: one small edit, then a join at once.
    const pending: number[] = [];
    const gen = prng.create(run + 1);
    const edit = new Y.Doc();
    edit.clientID = 1000 + run;
    Y.applyUpdate(edit, Y.encodeStateAsUpdate(built.doc));
    let update: Uint8Array | undefined;
    edit.on('update', (u: Uint8Array) => (update = u));
    for (let i = 0; i < PENDING_JOINS; i++) {
      edit.getText('text').insert(prng.uint32(gen, 0, 1000), 'pending edit ');
      if (update) seed.send(update);
      const j = await rawJoin({
        port: system.port,
        room,
        hocuspocus: system.client === 'hocuspocus',
        timeoutMs: 60_000,
      });
      pending.push(j.ms);
      await sleep(300);
    }
    edit.destroy();
    log(`  pending-update sync: ${pending.map((x) => x.toFixed(0)).join(' / ')} ms`);
    seed.close();
    return {
      seedMs,
      firstJoinMs: check.ms,
      step2Bytes: check.bytes,
      rssBeforeKb,
      storm: s,
      pendingMs: pending,
    };
  } finally {
    await system.stop();
  }
}

export { bigDocSummaryRows, renderBigDoc, type BigDocResults } from './big-doc-report.js';

/** Systems this bench can drive. */
export const BIG_DOC_SYSTEMS = new Set(['ours-memory', 'reference', 'hocuspocus']);

/** Builds the document and runs every system `runs` times, rotated; returns the results. */
export async function runBigDoc({
  runs = RUNS,
  systems = SYSTEMS,
  log: say = log,
}: { runs?: number; systems?: string[]; log?: (m: string) => void } = {}): Promise<BigDocResults> {
  say(`building a ${MB} MB document`);
  const built = buildDocument();
  say(`  ${built.updates.length} updates, ${(built.bytes / 1048576).toFixed(1)} MB as one update`);
  const results: BigDocResults = {
    startedAt: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      model: cpus()[0]?.model,
      loadavg: loadavg(),
      node: process.version,
    },
    config: { MB, JOINERS, PROCS, RUNS: runs, SYSTEMS: systems, docBytes: built.bytes },
    perSystem: Object.fromEntries(systems.map((n) => [n, []])),
  };
  for (let r = 0; r < runs; r++) {
    for (let k = 0; k < systems.length; k++) {
      const name = systems[(k + r) % systems.length] ?? '';
      const list = results.perSystem[name] ?? [];
      say(`${name}, run ${r + 1}/${runs}`);
      try {
        list.push(await oneRun(name, built, r * systems.length + k, say));
      } catch (err) {
        say(`  ${name} failed: ${errorMessage(err)}`);
        list.push({ error: errorMessage(err) });
      }
    }
  }
  built.doc.destroy();
  results.loadavgAfter = loadavg();
  return results;
}

async function main(): Promise<void> {
  const results = await runBigDoc();
  const md = renderBigDoc(results);
  await mkdir(OUT, { recursive: true });
  await writeFile(join(OUT, 'big-doc.json'), JSON.stringify(results, null, 2));
  await writeFile(join(OUT, 'big-doc.md'), md);
  process.stdout.write(md);
}

if (isEntryPoint(import.meta.url)) await main();
