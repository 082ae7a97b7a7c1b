#!/usr/bin/env node
/**
 * `npm run bench` — Stateweave against the other Yjs backends, side by side.
 *
 * Every system runs as its own process on 127.0.0.1 (pinned to core 0 with
 * taskset when available); this process is the load generator (pinned to core 1).
 * Systems are started fresh for each scenario and the runs alternate between them
 * (run 1: A B C …, run 2: B C … A, …). Every load loop is bounded in count and time.
 *
 * Environment (defaults in brackets):
 *   BENCH_RUNS [3]           runs per scenario and system (median and p99 reported)
 *   BENCH_SECONDS [5]        load duration of one run of scenarios 1, 2, 3, 7
 *   BENCH_SCENARIOS [1,2,3,4,5,6,7,8,9,10,11] (6: idle memory — idle.mjs; 8: our extras, only our node —
 *                            extras.mjs; 9: presence — presence.mjs; 10: large document — big-doc.mjs;
 *                            11: many documents over one socket, only our node — multiplex.mjs)
 *   BENCH_SAT_RUNS [BENCH_RUNS] runs of scenario 4;  BENCH_SAT_SECONDS [2] per rate step
 *   BENCH_SYSTEMS [ours-memory,ours-leveldb,reference,hocuspocus,relay]
 *   BENCH_IDLE_SHAPES, BENCH_IDLE_RUNS [2], BENCH_IDLE_PROCS: scenario 6 (see idle.mjs)
 *   BENCH_BIG_MB, BENCH_BIG_JOINERS, BENCH_BIG_RUNS, BENCH_BIG_PROCS: scenario 10 (see big-doc.mjs)
 *   BENCH_LARGE_EDITS [250000] scenario 5 single-character edits
 *   BENCH_CLIENTS [light]    fan-out clients: light (light-client.mjs, no Y.Doc) or stock (y-websocket /
 *                            Hocuspocus providers, each applying every update; the generator saturates first)
 *   BENCH_QUICK=1            1 run, 3 s, 400 idle connections, 50k edits: a smoke test
 *   BENCH_OUR_NODE_ARGS      extra node flags for our node only (profiling: see profile-summary.mjs)
 *   BENCH_RENDER=file.json   only re-render a saved result as Markdown
 *   BENCH_OUT [server/bench/results] where latest.md and latest.json are written
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, rm, mkdir, writeFile, readFile } from 'node:fs/promises';
import { createServer as createTcpServer } from 'node:net';
import { tmpdir, availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as prng from 'lib0/prng';
import { WebsocketProvider } from 'y-websocket';
import { HocuspocusProvider } from '@hocuspocus/provider';
import { connectLight } from './light-client.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const SYSTEMS_JS = join(HERE, 'systems.mjs');

const env = process.env;
const QUICK = env.BENCH_QUICK === '1';
const RUNS = Number(env.BENCH_RUNS ?? (QUICK ? 1 : 3));
const SECONDS = Number(env.BENCH_SECONDS ?? (QUICK ? 3 : 5));
const SCENARIOS = (env.BENCH_SCENARIOS ?? '1,2,3,4,5,6,7,8,9,10,11').split(',').map(Number);
const LARGE_EDITS = Number(env.BENCH_LARGE_EDITS ?? (QUICK ? 50_000 : 250_000));
const OUT = env.BENCH_OUT ?? join(HERE, 'results');
const DEFAULT_SYSTEMS = ['ours-memory', 'ours-leveldb', 'reference', 'hocuspocus', 'relay'];
const hasTaskset = spawnSync('taskset', ['-V'], { stdio: 'ignore' }).status === 0;
const PIN =
  env.BENCH_PINNED === '1' ||
  (hasTaskset && availableParallelism() >= 2 && env.BENCH_NO_PIN !== '1');
const CLIENTS = env.BENCH_CLIENTS ?? 'light';
if (CLIENTS !== 'light' && CLIENTS !== 'stock')
  throw new Error(`BENCH_CLIENTS must be light or stock, not ${CLIENTS}`);
const SYSTEM_LIST = (env.BENCH_SYSTEMS ?? DEFAULT_SYSTEMS.join(',')).split(',');

// ---------------------------------------------------------------------------

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
async function until(check, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
/** `promise`, or a rejection with `message` once `ms` have passed. */
async function within(promise, ms, message) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
function freePort() {
  return new Promise((resolve) => {
    const s = createTcpServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}
function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
/** CPU time (user + system) a process has used so far, in ms, from /proc/<pid>/stat. */
const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
function cpuMs(pid) {
  const stat = spawnSync('cat', [`/proc/${pid}/stat`], { encoding: 'utf8' }).stdout ?? '';
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}
/**
 * Time the hypervisor took from each CPU so far (the "steal" column of /proc/stat),
 * in ms: on a shared VM it comes in chunks of milliseconds, and a chunk on the
 * server's core is a latency spike no server can avoid. Reported next to each run.
 */
function stealMs() {
  const stat = spawnSync('cat', ['/proc/stat'], { encoding: 'utf8' }).stdout ?? '';
  const out = {};
  for (const m of stat.matchAll(/^cpu(\d+) (.*)$/gm))
    out[m[1]] = (Number(m[2].split(' ')[7]) * 1000) / CLK_TCK;
  return out;
}
/** Steal on the server's core (core 0 when pinned, all cores otherwise) between two stealMs() readings. */
function serverSteal(before, after) {
  const cores = PIN ? ['0'] : Object.keys(after);
  return cores.reduce((sum, c) => sum + ((after[c] ?? 0) - (before[c] ?? 0)), 0);
}
/** Starts measuring a system's process over a load; `end()` gives { mem, cpu, steal } for fanOutResult. */
function measureServer(system) {
  const cpuBefore = cpuMs(system.pid);
  const stealBefore = stealMs();
  return {
    end: () => ({
      mem: rssKb(system.pid),
      cpu: cpuMs(system.pid) - cpuBefore,
      steal: serverSteal(stealBefore, stealMs()),
    }),
  };
}
function rssKb(pid) {
  try {
    const status = spawnSync('cat', [`/proc/${pid}/status`], { encoding: 'utf8' }).stdout;
    const rss = /VmRSS:\s+(\d+)/.exec(status);
    const hwm = /VmHWM:\s+(\d+)/.exec(status);
    return { rss: rss ? Number(rss[1]) : NaN, hwm: hwm ? Number(hwm[1]) : NaN };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

// ---- systems ----

const CLIENT_OF = {
  'ours-memory': 'y-websocket',
  'ours-leveldb': 'y-websocket',
  'ours-fsync': 'y-websocket',
  reference: 'y-websocket',
  hocuspocus: 'hocuspocus',
  relay: 'y-websocket',
};

// Our per-IP connection cap and per-connection message rate limit would otherwise be
// what scenarios 4 and 6 measure (every client comes from 127.0.0.1); the peers have none.
const OUR_LIMITS = [
  '--max-connections-per-ip',
  '1000000',
  '--max-messages-per-second',
  '100000',
  '--message-burst',
  '100000',
];

// BENCH_OUR_NODE_ARGS, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof": extra node flags for our node only.
// --no-node-snapshot: isolated-vm needs it on Node 20 and later (docs/functions.md).
const OUR_NODE_ARGS = [
  '--no-node-snapshot',
  ...(env.BENCH_OUR_NODE_ARGS ?? '').split(' ').filter(Boolean),
];

async function startSystem(name) {
  const port = await freePort();
  const pin = PIN ? ['taskset', '-c', '0'] : [];
  let argv;
  let dir;
  if (name === 'ours-leveldb' || name === 'ours-fsync') {
    dir = await mkdtemp(join(tmpdir(), `stateweave-bench-${name}-`));
    argv = [
      process.execPath,
      ...OUR_NODE_ARGS,
      MAIN,
      'serve',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--data',
      dir,
      '--log-level',
      'warn',
      ...OUR_LIMITS,
      name === 'ours-fsync' ? '--fsync' : '--no-fsync',
    ];
  } else {
    argv = [
      process.execPath,
      ...(name.startsWith('ours') ? OUR_NODE_ARGS : []),
      SYSTEMS_JS,
      name,
      String(port),
    ];
  }
  const full = [...pin, ...argv];
  const child = spawn(full[0], full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: HERE });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  let dead = false;
  exited.then(() => (dead = true));
  await until(
    async () => {
      if (dead) throw new Error(`${name} exited during start:\n${out}`);
      if (argv.includes(MAIN))
        return (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok;
      return out.includes('READY');
    },
    `${name} to start`,
    20_000,
  );
  return {
    name,
    url: `ws://127.0.0.1:${port}`,
    pid: child.pid,
    client: CLIENT_OF[name],
    output: () => out,
    async stop() {
      if (!dead) {
        child.kill('SIGTERM');
        await Promise.race([exited, sleep(5000)]);
        if (!dead) child.kill('SIGKILL');
      }
      if (dir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One client: a Y.Doc and the provider that matches the system. */
function connect(system, room, doc = new Y.Doc()) {
  let provider;
  let resolveReady;
  const ready = new Promise((resolve) => (resolveReady = resolve));
  if (system.client === 'hocuspocus') {
    provider = new HocuspocusProvider({
      url: system.url,
      name: room,
      document: doc,
      WebSocketPolyfill: WebSocket,
    });
    provider.on('synced', () => resolveReady());
  } else {
    provider = new WebsocketProvider(system.url, room, doc, {
      WebSocketPolyfill: WebSocket,
      disableBc: true,
    });
    provider.on('sync', (s) => s && resolveReady());
    // The relay has no server-side document: a socket that is open is as ready as it gets.
    if (system.name === 'relay')
      provider.on('status', (e) => e.status === 'connected' && resolveReady());
  }
  return {
    doc,
    provider,
    ready,
    destroy() {
      provider.destroy();
      doc.destroy();
    },
  };
}

async function connectMany(system, rooms, timeoutMs = 60_000) {
  const clients = [];
  const BATCH = 50;
  for (let i = 0; i < rooms.length; i += BATCH) {
    const batch = rooms.slice(i, i + BATCH).map((room) => connect(system, room));
    clients.push(...batch);
    await within(
      Promise.all(batch.map((c) => c.ready)),
      timeoutMs,
      `${system.name}: clients not synced within ${timeoutMs} ms`,
    );
  }
  return clients;
}

// ---- scenario: fan-out under steady load ----

function fanOutRun(system, spec) {
  return CLIENTS === 'light' ? fanOutRunLight(system, spec) : fanOutRunStock(system, spec);
}

/**
 * Fan-out with light clients (light-client.mjs): every client sends `rate` edits/s on a
 * fixed schedule (one ticker for all, random phase per client) and counts the edits of
 * the others in the frames it receives. Latency: from the send to the moment the last
 * other client of the document received the edit.
 */
async function fanOutRunLight(system, { docs, perDoc, rate, seconds, tag }) {
  const perClient = Math.round(rate * seconds);
  const period = 1000 / rate;
  const senders = new Map(); // Yjs client id -> sender state
  const clients = [];
  const latencies = [];
  let sent = 0;
  let delivered = 0;
  let outstanding = 0;
  let firstSend = Infinity;
  let lastComplete = 0;
  const receive = (receiver, update) => {
    const now = performance.now();
    const meta = Y.parseUpdateMeta(update);
    for (const [client, from] of meta.from) {
      if (client === receiver.id) continue; // the reference server echoes the sender's own edits
      const sender = senders.get(client);
      if (!sender) continue;
      const seen = receiver.seen.get(client) ?? 0; // edits of one sender arrive in order: count each once
      const to = Math.min(meta.to.get(client), sender.sent);
      for (let clock = Math.max(from, seen); clock < to; clock++) {
        if (--sender.remaining[clock] === 0) {
          latencies.push(now - sender.t0[clock]);
          delivered++;
          outstanding--;
          lastComplete = now;
        }
      }
      if (to > seen) receiver.seen.set(client, to);
    }
  };
  for (let d = 0; d < docs; d++) {
    for (let c = 0; c < perDoc; c++) {
      const state = {
        id: (Math.random() * 0xffffffff) >>> 0, // as Yjs picks them: most take five bytes
        key: `c${clients.length}`,
        t0: new Float64Array(perClient),
        remaining: new Int32Array(perClient),
        sent: 0,
        offset: Math.random() * period,
        seen: new Map(),
      };
      state.conn = connectLight(system, `bench-${tag}-d${d}`, (update) => receive(state, update));
      senders.set(state.id, state);
      clients.push(state);
    }
  }
  const closeAll = () => clients.forEach((c) => c.conn.close());
  try {
    await within(
      Promise.all(clients.map((c) => c.conn.ready)),
      60_000,
      `${system.name}: clients not synced within 60 s`,
    );
  } catch (err) {
    closeAll();
    throw err;
  }
  await sleep(300);
  const usage = measureServer(system);
  const start = performance.now() + 50;
  const total = clients.length * perClient;
  await new Promise((resolve) => {
    const tick = () => {
      const now = performance.now();
      for (const s of clients) {
        while (s.sent < perClient && start + s.offset + s.sent * period <= now) {
          const clock = s.sent;
          const frame = s.conn.edit(s.id, clock, `${s.key}:${clock}`);
          const t0 = performance.now();
          if (t0 < firstSend) firstSend = t0;
          s.t0[clock] = t0;
          s.remaining[clock] = perDoc - 1;
          s.sent++;
          sent++;
          outstanding++;
          s.conn.send(frame);
        }
      }
      if (sent >= total) resolve();
      else setTimeout(tick, 1);
    };
    setTimeout(tick, Math.max(0, start - performance.now()));
  });
  const lastSend = performance.now();
  await until(async () => outstanding === 0, 'drain', 3000).catch(() => {});
  const server = usage.end();
  let lostEdits = 0;
  let lostDeliveries = 0;
  for (const s of clients) {
    for (let clock = 0; clock < s.sent; clock++) {
      if (s.remaining[clock] > 0) {
        lostEdits++;
        lostDeliveries += s.remaining[clock];
      }
    }
  }
  closeAll();
  await sleep(300);
  return fanOutResult({
    latencies,
    sent,
    delivered,
    firstSend,
    lastSend,
    lastComplete,
    lostEdits,
    lostDeliveries,
    ...server,
  });
}

/** Fan-out with the stock providers: every client holds a Y.Doc and applies every update. */
async function fanOutRunStock(system, { docs, perDoc, rate, seconds, tag }) {
  const rooms = [];
  for (let d = 0; d < docs; d++) for (let c = 0; c < perDoc; c++) rooms.push(`bench-${tag}-d${d}`);
  const clients = await connectMany(system, rooms);
  const ledger = new Map(); // key -> { t0, remaining }
  const latencies = [];
  let sent = 0;
  let delivered = 0;
  let firstSend = Infinity;
  let lastComplete = 0;
  clients.forEach((client, i) => {
    client.id = `c${i}`;
    client.map = client.doc.getMap('e');
    client.map.observe((event, tr) => {
      if (tr.local) return;
      const now = performance.now();
      for (const key of event.keysChanged) {
        const rec = ledger.get(key);
        if (!rec) continue;
        if (--rec.remaining === 0) {
          latencies.push(now - rec.t0);
          ledger.delete(key);
          delivered++;
          lastComplete = now;
        }
      }
    });
  });
  await sleep(300);
  const usage = measureServer(system);
  const perClient = Math.round(rate * seconds);
  const period = 1000 / rate;
  const start = performance.now() + 50;
  const timers = new Set();
  await new Promise((resolve) => {
    let active = clients.length;
    for (const client of clients) {
      let seq = 0;
      const offset = Math.random() * period;
      const tick = () => {
        timers.delete(handle);
        const key = `${client.id}:${seq}`;
        const t0 = performance.now();
        if (t0 < firstSend) firstSend = t0;
        ledger.set(key, { t0, remaining: perDoc - 1 });
        client.map.set(key, t0);
        sent++;
        seq++;
        if (seq >= perClient) {
          if (--active === 0) resolve();
          return;
        }
        const due = start + offset + seq * period;
        handle = setTimeout(tick, Math.max(0, due - performance.now()));
        timers.add(handle);
      };
      let handle = setTimeout(tick, Math.max(0, start + offset - performance.now()));
      timers.add(handle);
    }
  });
  const lastSend = performance.now();
  await until(async () => ledger.size === 0, 'drain', 3000).catch(() => {});
  const server = usage.end();
  let missing = 0;
  for (const rec of ledger.values()) missing += rec.remaining;
  for (const c of clients) c.destroy();
  await sleep(300);
  return fanOutResult({
    latencies,
    sent,
    delivered,
    firstSend,
    lastSend,
    lastComplete,
    lostEdits: ledger.size,
    lostDeliveries: missing,
    ...server,
  });
}

/** One fan-out run's figures, from what either kind of client measured. */
function fanOutResult({
  latencies,
  sent,
  delivered,
  firstSend,
  lastSend,
  lastComplete,
  lostEdits,
  lostDeliveries,
  mem,
  cpu,
  steal,
}) {
  latencies.sort((a, b) => a - b);
  const loadSeconds = Math.max(lastSend, lastComplete) - firstSend;
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies[latencies.length - 1],
    sent,
    delivered,
    offeredPerSec: sent / ((lastSend - firstSend) / 1000),
    achievedPerSec: delivered / (loadSeconds / 1000),
    lostEdits,
    lostDeliveries,
    rssKb: mem.rss,
    peakRssKb: mem.hwm,
    // server CPU per 1,000 edits sent: less sensitive than p99 to other load on the machine
    cpuMsPer1k: (cpu / sent) * 1000,
    stealMs: steal,
  };
}

// ---- scenario 5: initial sync of a large document ----

async function buildLargeDoc(edits) {
  const cache = join(OUT, `large-doc-${edits}.bin`);
  try {
    return new Uint8Array(await readFile(cache));
  } catch (err) {
    if (err.code !== 'ENOENT') throw err; // not built yet: build it below
  }
  const doc = new Y.Doc();
  const text = doc.getText('t');
  const generator = prng.create(42);
  const rnd = () => prng.real53(generator);
  let cursor = 0;
  for (let i = 0; i < edits; i++) {
    if (i % 32 === 0) cursor = Math.floor(rnd() * (text.length + 1));
    if (rnd() < 0.1 && cursor > 0) {
      text.delete(cursor - 1, 1);
      cursor--;
    } else {
      text.insert(cursor, String.fromCharCode(97 + (i % 26)));
      cursor++;
    }
  }
  const update = Y.encodeStateAsUpdate(doc);
  await mkdir(OUT, { recursive: true });
  await writeFile(cache, update);
  return update;
}

async function syncOnce(system, room, expectedLength, timeoutMs = 60_000) {
  const t0 = performance.now();
  const client = connect(system, room);
  const text = client.doc.getText('t');
  try {
    const synced = (async () => {
      await client.ready;
      await until(async () => text.length === expectedLength, 'large document', timeoutMs);
    })();
    await within(synced, timeoutMs, `${system.name}: sync timed out`);
    return performance.now() - t0;
  } finally {
    client.destroy();
  }
}

// ---- driver ----

const LOAD = {
  1: { title: 'collaboration: 10 docs × 5 clients × 10 edits/s', docs: 10, perDoc: 5, rate: 10 },
  2: { title: 'hot document: 1 doc × 50 clients × 2 edits/s', docs: 1, perDoc: 50, rate: 2 },
  3: { title: 'many documents: 100 docs × 2 clients × 20 edits/s', docs: 100, perDoc: 2, rate: 20 },
  7: {
    title: 'durability cost: scenario 1 with fsync on every batch',
    docs: 10,
    perDoc: 5,
    rate: 10,
  },
};

const SAT = {
  docs: 10,
  perDoc: 5,
  rates: [20, 40, 80, 160, 240, 320, 400, 480, 560, 640, 720, 800],
  seconds: Number(env.BENCH_SAT_SECONDS ?? 2),
  runs: Number(env.BENCH_SAT_RUNS ?? RUNS),
};

function rotate(list, k) {
  const n = list.length;
  return list.map((_, i) => list[(i + k) % n]);
}

async function withSystems(names, fn) {
  const systems = [];
  try {
    for (const n of names) systems.push(await startSystem(n));
    return await fn(systems);
  } finally {
    for (const s of systems) await s.stop();
  }
}

async function main() {
  if (env.BENCH_RENDER) {
    // re-render a saved latest.json (no load)
    process.stdout.write(renderMarkdown(JSON.parse(await readFile(env.BENCH_RENDER, 'utf8'))));
    process.exit(0);
  }
  process.setMaxListeners(0); // y-websocket adds a process 'exit' listener per provider
  const startedAt = new Date();
  const results = {
    startedAt: startedAt.toISOString(),
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
      if (LOAD[id]) {
        const spec = LOAD[id];
        const names = id === 7 ? ['ours-memory', 'ours-leveldb', 'ours-fsync'] : SYSTEM_LIST;
        log(`scenario ${id}: ${spec.title}`);
        const perSystem = Object.fromEntries(names.map((n) => [n, []]));
        await withSystems(names, async (systems) => {
          // warm-up (JIT, first allocations), discarded
          for (const s of systems)
            await fanOutRun(s, { ...spec, seconds: 1, tag: `s${id}warm` }).catch(() => {});
          for (let r = 0; r < RUNS; r++) {
            for (const s of rotate(systems, r)) {
              try {
                const run = await fanOutRun(s, { ...spec, seconds: SECONDS, tag: `s${id}r${r}` });
                perSystem[s.name].push(run);
                log(
                  `  run ${r + 1} ${s.name.padEnd(12)} p50 ${fmt(run.p50)} ms  p99 ${fmt(run.p99)} ms  ${fmt(run.achievedPerSec, 0)} edits/s  lost ${run.lostEdits}  rss ${fmt(run.rssKb / 1024, 0)} MB  cpu ${fmt(run.cpuMsPer1k, 0)} ms/1k  steal ${fmt(run.stealMs, 0)} ms`,
                );
              } catch (err) {
                perSystem[s.name].push({ error: String(err?.message ?? err) });
                log(`  run ${r + 1} ${s.name}: ${err?.message ?? err}`);
              }
            }
          }
        });
        results.scenarios[id] = {
          title: spec.title,
          kind: 'fanout',
          runs: perSystem,
          summary: summarizeFanout(perSystem),
        };
      } else if (id === 5) {
        const title = `initial sync of a large document (${LARGE_EDITS.toLocaleString('en')} single-character edits)`;
        log(`scenario 5: ${title}`);
        const update = await buildLargeDoc(LARGE_EDITS);
        const probe = new Y.Doc();
        Y.applyUpdate(probe, update);
        const expected = probe.getText('t').length;
        probe.destroy();
        const perSystem = Object.fromEntries(SYSTEM_LIST.map((n) => [n, []]));
        await withSystems(SYSTEM_LIST, async (systems) => {
          const seeders = new Map();
          for (const s of systems) {
            try {
              const seeder = connect(s, 'bench-large');
              seeders.set(s.name, seeder);
              await seeder.ready;
              Y.applyUpdate(seeder.doc, update);
              // warm-up sync (discarded) also proves the server holds the document
              await syncOnce(s, 'bench-large', expected);
            } catch (err) {
              perSystem[s.name].push({ error: String(err?.message ?? err) });
              log(`  ${s.name} seeding: ${err?.message ?? err}`);
            }
          }
          for (let r = 0; r < RUNS; r++) {
            for (const s of rotate(systems, r)) {
              if (perSystem[s.name].some((x) => x.error)) continue;
              try {
                const ms = await syncOnce(s, 'bench-large', expected);
                perSystem[s.name].push({ ms, rssKb: rssKb(s.pid).rss });
                log(`  run ${r + 1} ${s.name.padEnd(12)} ${fmt(ms)} ms`);
              } catch (err) {
                perSystem[s.name].push({ error: String(err?.message ?? err) });
              }
            }
          }
          for (const c of seeders.values()) c.destroy();
        });
        results.scenarios[5] = {
          title,
          kind: 'sync',
          updateBytes: update.length,
          textLength: expected,
          runs: perSystem,
          summary: summarizeSync(perSystem),
        };
      } else if (id === 6) {
        // idle.mjs: several client processes, RSS and heap from inside, per connection and per document
        if (QUICK) process.env.BENCH_IDLE_SHAPES ??= '400/40,200/200';
        const idle = await import('./idle.mjs');
        log('scenario 6: idle memory (idle.mjs)');
        const res = await idle.runIdle({
          systems: SYSTEM_LIST.filter((n) => idle.IDLE_SYSTEMS.has(n)),
          runs: Number(env.BENCH_IDLE_RUNS ?? (QUICK ? 1 : 2)),
          log,
        });
        results.scenarios[6] = {
          title: 'idle memory: server memory per idle connection and per open small document',
          kind: 'extras',
          markdown: idle.renderIdle(res),
          summaryRow: idle.idleSummaryRow(res),
          data: res,
        };
      } else if (id === 10) {
        if (QUICK) {
          process.env.BENCH_BIG_MB ??= '2';
          process.env.BENCH_BIG_JOINERS ??= '20';
        }
        const big = await import('./big-doc.mjs');
        log('scenario 10: join storm and pending-update sync of a large document (big-doc.mjs)');
        const res = await big.runBigDoc({
          systems: SYSTEM_LIST.filter((n) => big.BIG_DOC_SYSTEMS.has(n)),
          runs: Number(env.BENCH_BIG_RUNS ?? 1),
          log,
        });
        results.scenarios[10] = {
          title: 'large document: join storm and sync with a pending update',
          kind: 'extras',
          markdown: big.renderBigDoc(res),
          summaryRow: big.bigDocSummaryRows(res),
          data: res,
        };
      } else if (id === 11) {
        // multiplex.mjs (issue 15): our node only; its own process, its lines as the result
        log('scenario 11: many documents over one socket (multiplex.mjs)');
        const run = spawnSync(
          process.execPath,
          [fileURLToPath(new URL('./multiplex.mjs', import.meta.url))],
          {
            env: { ...env, BENCH_MUX_RUNS: env.BENCH_MUX_RUNS ?? (QUICK ? '2' : '5') },
            encoding: 'utf8',
            timeout: 10 * 60_000,
          },
        );
        if (run.status !== 0)
          throw new Error(`multiplex.mjs exited ${run.status ?? run.signal}: ${run.stderr}`);
        const lines = run.stdout.trim().split('\n');
        for (const line of lines) log(`  ${line}`);
        results.scenarios[11] = {
          title: 'many documents over one socket (our node; SDK client, in-memory store)',
          kind: 'extras',
          markdown: lines.map((l) => `- ${l}`).join('\n'),
        };
      } else if (id === 4) {
        const title = `saturation: ${SAT.docs} docs × ${SAT.perDoc} clients, per-client rate raised ${SAT.rates.join(' → ')}/s, ${SAT.seconds} s a step, until p99 > 100 ms or an edit is lost`;
        log(`scenario 4: ${title}`);
        const perSystem = Object.fromEntries(SYSTEM_LIST.map((n) => [n, []]));
        for (let r = 0; r < SAT.runs; r++) {
          for (const name of rotate(SYSTEM_LIST, r)) {
            try {
              const run = await withSystems([name], async ([s]) => {
                await fanOutRun(s, {
                  docs: SAT.docs,
                  perDoc: SAT.perDoc,
                  rate: 10,
                  seconds: 1,
                  tag: `s4r${r}warm`,
                }); // warm-up, discarded
                const steps = [];
                let best = 0;
                for (const rate of SAT.rates) {
                  const step = await fanOutRun(s, {
                    docs: SAT.docs,
                    perDoc: SAT.perDoc,
                    rate,
                    seconds: SAT.seconds,
                    tag: `s4r${r}x${rate}`,
                  });
                  steps.push({ rate, ...step });
                  const ok =
                    step.p99 <= 100 &&
                    step.lostEdits === 0 &&
                    step.achievedPerSec >= 0.9 * step.offeredPerSec;
                  log(
                    `  run ${r + 1} ${name.padEnd(12)} ${rate}/s per client: ${fmt(step.achievedPerSec, 0)} edits/s, p99 ${fmt(step.p99)} ms, lost ${step.lostEdits}, cpu ${fmt(step.cpuMsPer1k, 0)} ms/1k${ok ? '' : ' — saturated'}`,
                  );
                  if (!ok) break;
                  best = step.achievedPerSec;
                }
                return { best, steps };
              });
              perSystem[name].push(run);
            } catch (err) {
              perSystem[name].push({ error: String(err?.message ?? err) });
              log(`  run ${r + 1} ${name}: ${err?.message ?? err}`);
            }
          }
        }
        results.scenarios[4] = {
          title,
          kind: 'saturation',
          runs: perSystem,
          summary: summarizeSaturation(perSystem),
        };
      } else if (id === 8) {
        log('scenario 8: our extras (functions, three-node replication)');
        results.scenarios[8] = await (
          await import('./extras.mjs')
        ).runExtras({ log, pin: PIN, quick: QUICK });
      } else if (id === 9) {
        log('scenario 9: presence at 1 Hz in one document');
        results.scenarios[9] = await (
          await import('./presence.mjs')
        ).runPresence({
          systems: SYSTEM_LIST,
          runs: RUNS,
          quick: QUICK,
          helpers: { withSystems, connectLight, cpuMs, sleep, log, label: (n) => LABEL[n] ?? n },
        });
      } else {
        log(`scenario ${id}: not implemented`);
      }
    } catch (err) {
      log(`scenario ${id} failed: ${err?.stack ?? err}`);
      results.scenarios[id] = { error: String(err?.message ?? err) };
    }
  }
  results.finishedAt = new Date().toISOString();
  const md = renderMarkdown(results);
  await mkdir(OUT, { recursive: true });
  await writeFile(join(OUT, 'latest.md'), md);
  await writeFile(join(OUT, 'latest.json'), JSON.stringify(results, null, 2));
  process.stdout.write(`\n${md}\n`);
  log(`written ${join(OUT, 'latest.md')} and latest.json`);
  process.exit(0);
}

function summarizeFanout(perSystem) {
  const out = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const ok = runs.filter((r) => !r.error);
    out[name] = {
      runs: ok.length,
      errors: runs.length - ok.length,
      p50: median(ok.map((r) => r.p50)),
      p99: median(ok.map((r) => r.p99)),
      achievedPerSec: median(ok.map((r) => r.achievedPerSec)),
      offeredPerSec: median(ok.map((r) => r.offeredPerSec)),
      lostEdits: ok.reduce((a, r) => a + r.lostEdits, 0),
      cpuMsPer1k: median(ok.map((r) => r.cpuMsPer1k)),
      stealMs: Math.max(...ok.map((r) => r.stealMs ?? NaN)),
      rssKb: Math.max(...ok.map((r) => r.rssKb)),
    };
  }
  return out;
}
function summarizeSaturation(perSystem) {
  const out = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const ok = runs.filter((r) => !r.error);
    out[name] = {
      runs: ok.length,
      errors: runs.length - ok.length,
      best: median(ok.map((r) => r.best)),
      rssKb: Math.max(...ok.flatMap((r) => r.steps.map((x) => x.rssKb))),
    };
  }
  return out;
}
function summarizeSync(perSystem) {
  const out = {};
  for (const [name, runs] of Object.entries(perSystem)) {
    const ok = runs.filter((r) => !r.error);
    const ms = ok.map((r) => r.ms).sort((a, b) => a - b);
    out[name] = {
      runs: ok.length,
      errors: runs.length - ok.length,
      median: median(ms),
      p99: quantile(ms, 0.99),
      rssKb: Math.max(...ok.map((r) => r.rssKb)),
    };
  }
  return out;
}
// ---- rendering ----

function fmt(x, digits = 1) {
  return Number.isFinite(x) ? x.toFixed(digits) : '–';
}
function ratio(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}×` : '–';
}
/**
 * 95% interval of median(xs) / median(ys) by bootstrap over runs (2,000 resamples,
 * fixed seed, so a re-render gives the same figures). Why: one run's p99 on a shared
 * VM swings 3–5× between runs, so a ratio of medians alone cannot say "faster" —
 * only an interval that stays on one side of a target can.
 */
function ratioInterval(xs, ys) {
  const a = (xs ?? []).filter(Number.isFinite);
  const b = (ys ?? []).filter(Number.isFinite);
  if (a.length < 3 || b.length < 3) return undefined;
  const generator = prng.create(0x5eed);
  const rand = () => prng.real53(generator);
  const resample = (v) => v.map(() => v[Math.floor(rand() * v.length)]);
  const ratios = [];
  for (let i = 0; i < 2000; i++) {
    const d = median(resample(b));
    if (d > 0) ratios.push(median(resample(a)) / d);
  }
  ratios.sort((x, y) => x - y);
  return { lo: quantile(ratios, 0.025), hi: quantile(ratios, 0.975) };
}
/** "1.12× (0.61–2.05)": the ratio of medians and its 95% interval when there are runs enough. */
function ratioWithInterval(aRuns, bRuns) {
  const ci = ratioInterval(aRuns, bRuns);
  const r = ratio(median(aRuns ?? []), median(bRuns ?? []));
  return ci && r !== '–' ? `${r} (${ci.lo.toFixed(2)}–${ci.hi.toFixed(2)})` : r;
}
/**
 * An issue target on the ratio a ÷ b: met when the whole 95% interval is on the
 * good side of `bound`, missed when it is all on the other, undecided otherwise.
 */
function targetVerdict(aRuns, bRuns, bound, higherIsBetter = false) {
  const ci = ratioInterval(aRuns, bRuns);
  if (!ci) return '–';
  const [good, bad] = higherIsBetter
    ? [ci.lo >= bound, ci.hi < bound]
    : [ci.hi <= bound, ci.lo > bound];
  return good ? 'met' : bad ? 'missed' : 'undecided';
}
/** One line: each of ours (and the relay, as the ceiling) against each peer. */
function verdictLine(what, runsOf, bound, higherIsBetter = false) {
  const peers = ['reference', 'hocuspocus'].filter((p) => runsOf(p).length > 0);
  if (peers.length === 0) return [];
  const short = { reference: 'ref', hocuspocus: 'hp' };
  const rows = ['ours-memory', 'ours-leveldb', 'relay']
    .filter((n) => runsOf(n).length > 0)
    .map(
      (n) =>
        `${LABEL[n]} ${peers.map((p) => `${targetVerdict(runsOf(n), runsOf(p), bound, higherIsBetter)} vs ${short[p]}`).join(', ')}`,
    );
  return [
    '',
    `Target ${what} (met: the 95% interval lies on the target's side of ${bound}; missed: on the other; undecided: it straddles ${bound}): ${rows.join('; ')}.` +
      (runsOf('relay').length > 0
        ? ' The relay is the ceiling: where even it is not "met", no server could meet the target in this run.'
        : ''),
  ];
}
/** `name => [that system's figure in each good run]` for a scenario's result. */
function runsOf(sc, field) {
  return (name) =>
    (sc.runs?.[name] ?? [])
      .filter((x) => !x.error && Number.isFinite(x[field]))
      .map((x) => x[field]);
}
function pct(a, b) {
  return Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${Math.round((a / b) * 100)}%` : '–';
}
const LABEL = {
  'ours-memory': 'Stateweave (memory)',
  'ours-leveldb': 'Stateweave (LevelDB)',
  'ours-fsync': 'Stateweave (LevelDB, fsync)',
  reference: '@y/websocket-server',
  hocuspocus: '@hocuspocus/server',
  relay: 'raw relay (ceiling)',
};

function renderMarkdown(results) {
  const v = results.versions;
  const lines = [];
  lines.push(
    `Stateweave bench, ${results.startedAt.slice(0, 16).replace('T', ' ')} UTC — ${results.machine.cpus}× ${results.machine.cpu}, Node ${process.versions.node}, ` +
      `${results.config.PIN ? 'servers pinned to core 0, load generator to core 1' : 'not pinned'}; ${results.config.RUNS} run(s) per system, ${results.config.SECONDS} s each; ` +
      `fan-out clients: ${results.config.CLIENTS === 'stock' ? 'stock providers (a Y.Doc each)' : 'light (protocol only, no Y.Doc)'}.`,
  );
  lines.push(
    `Peers: @y/websocket-server ${v['@y/websocket-server']}, @hocuspocus/server ${v['@hocuspocus/server']} (provider ${v['@hocuspocus/provider']}), y-websocket ${v['y-websocket']}, yjs ${v.yjs}.`,
  );
  lines.push('');
  lines.push('');
  lines.push(...renderSummary(results));
  lines.push('');
  lines.push(
    'Latencies in ms (median over runs of each run\'s p50 / p99). "steal" is the time the hypervisor took from the server\'s core during the worst run (/proc/stat): a shared VM\'s pauses that no server can avoid. "÷ ref" and "÷ hp" are this row\'s p99 divided by the peer\'s (below 1 is better), with its 95% interval (bootstrap over runs) when both have 3 runs or more; "vs relay" is the relay\'s p99 as a share of this row\'s (100% = as fast as the ceiling).',
  );
  for (const [id, sc] of Object.entries(results.scenarios)) {
    lines.push('');
    if (sc.error) {
      lines.push(`### ${id}. failed: ${sc.error}`);
      continue;
    }
    lines.push(`### ${id}. ${sc.title}`);
    lines.push('');
    const s = sc.summary;
    if (sc.kind === 'fanout') {
      lines.push(
        '| system | p50 ms | p99 ms | edits/s offered | edits/s delivered | edits lost | server RSS MB | server CPU ms / 1k edits | steal ms, worst run | ÷ ref | ÷ hp | vs relay |',
      );
      lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|');
      const base = id === '7' ? s['ours-memory'] : undefined;
      // Each run's figure, for the intervals (read from the runs, so older result files re-render too).
      const p99s = runsOf(sc, 'p99');
      for (const [name, r] of Object.entries(s)) {
        const cmp =
          id === '7'
            ? `${name === 'ours-memory' ? '–' : ratio(r.p99, base?.p99) + ' of memory'} | – | –`
            : `${ratioWithInterval(p99s(name), p99s('reference'))} | ${ratioWithInterval(p99s(name), p99s('hocuspocus'))} | ${pct(s.relay?.p99, r.p99)}`;
        lines.push(
          `| ${LABEL[name]}${r.errors ? ` (${r.errors} failed)` : ''} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.offeredPerSec, 0)} | ${fmt(r.achievedPerSec, 0)} | ${r.lostEdits} | ${fmt(r.rssKb / 1024, 0)} | ${fmt(r.cpuMsPer1k, 0)} | ${fmt(r.stealMs, 0)} | ${cmp} |`,
        );
      }
      if (id !== '7') lines.push(...verdictLine('p99 ≤ 0.8× each peer', p99s, 0.8));
    } else if (sc.kind === 'sync') {
      lines.push(
        `Document: ${sc.textLength.toLocaleString('en')} characters, ${(sc.updateBytes / 1024).toFixed(0)} KiB as one update. Time from creating the provider to holding the whole text.`,
      );
      lines.push('');
      const times = runsOf(sc, 'ms');
      lines.push('| system | median ms | p99 ms | server RSS MB | ÷ ref | ÷ hp | vs relay |');
      lines.push('|---|--:|--:|--:|--:|--:|--:|');
      for (const [name, r] of Object.entries(s)) {
        lines.push(
          `| ${LABEL[name]}${r.errors ? ` (${r.errors} failed)` : ''} | ${fmt(r.median)} | ${fmt(r.p99)} | ${fmt(r.rssKb / 1024, 0)} | ${ratioWithInterval(times(name), times('reference'))} | ${ratioWithInterval(times(name), times('hocuspocus'))} | ${pct(s.relay?.median, r.median)} |`,
        );
      }
      lines.push(...verdictLine('sync time ≤ 1× each peer', times, 1));
      lines.push('');
      lines.push(
        'The relay has no copy of the document: a connected peer (the seeding client) answers the sync, so its figure is a peer-to-peer sync through a relay.',
      );
    } else if (sc.kind === 'saturation') {
      lines.push(
        'Highest total edits/s sustained with p99 ≤ 100 ms, nothing lost and ≥ 90% of the offered rate delivered (median over runs; higher is better; ratios are this row ÷ the peer). The load generator is one Node process on one core, so it may saturate before a server does.',
      );
      lines.push('');
      const bests = runsOf(sc, 'best');
      lines.push('| system | sustained edits/s | server RSS MB | ÷ ref | ÷ hp | vs relay |');
      lines.push('|---|--:|--:|--:|--:|--:|');
      for (const [name, r] of Object.entries(s)) {
        const first = SAT.docs * SAT.perDoc * SAT.rates[0];
        lines.push(
          `| ${LABEL[name]}${r.errors ? ` (${r.errors} failed)` : ''} | ${r.best > 0 ? fmt(r.best, 0) : `< ${first} (failed the first step)`} | ${fmt(r.rssKb / 1024, 0)} | ${ratioWithInterval(bests(name), bests('reference'))} | ${ratioWithInterval(bests(name), bests('hocuspocus'))} | ${pct(r.best, s.relay?.best)} |`,
        );
      }
      lines.push(...verdictLine('sustained rate ≥ 1.5× each peer', bests, 1.5, true));
    } else if (sc.kind === 'extras') {
      lines.push(sc.markdown);
    } else if (sc.kind === 'idle') {
      lines.push('| system | KB per connection | server RSS MB | ÷ ref | ÷ hp | vs relay |');
      lines.push('|---|--:|--:|--:|--:|--:|');
      for (const [name, r] of Object.entries(s)) {
        lines.push(
          `| ${LABEL[name]}${r.errors ? ` (${r.errors} failed)` : ''} | ${fmt(r.perConnKb)} | ${fmt(r.rssKb / 1024, 0)} | ${ratio(r.perConnKb, s.reference?.perConnKb)} | ${ratio(r.perConnKb, s.hocuspocus?.perConnKb)} | ${pct(s.relay?.perConnKb, r.perConnKb)} |`,
        );
      }
    }
  }
  return lines.join('\n') + '\n';
}

/** One row per scenario, one column per system: the headline figure of each. */
function renderSummary(results) {
  const cols = ['ours-memory', 'ours-leveldb', 'reference', 'hocuspocus', 'relay'];
  const out = [
    `| scenario | ${cols.map((c) => LABEL[c]).join(' | ')} |`,
    `|---|${cols.map(() => '--:').join('|')}|`,
  ];
  for (const [id, sc] of Object.entries(results.scenarios)) {
    if (sc.summaryRow) out.push(sc.summaryRow); // scenario 8 (extras.mjs) renders its own line
    if (sc.error || !sc.summary) continue;
    const s = sc.summary;
    const cell = (c) => {
      const r = s[c];
      if (!r) return '';
      if (sc.kind === 'fanout') return `${fmt(r.p50)} / ${fmt(r.p99)} ms`;
      if (sc.kind === 'saturation') return r.best > 0 ? `${fmt(r.best, 0)}/s` : 'failed 1st step';
      if (sc.kind === 'sync') return `${fmt(r.median, 0)} ms`;
      if (sc.kind === 'idle') return `${fmt(r.perConnKb)} KB`;
      return '';
    };
    const what = {
      fanout: 'fan-out p50 / p99',
      saturation: 'sustained edits/s',
      sync: 'sync time (median)',
      idle: 'RSS per connection',
    }[sc.kind];
    let row = `| ${id}. ${sc.title.split(/[:(]/)[0].trim()} — ${what} | ${cols.map(cell).join(' | ')} |`;
    if (id === '7') {
      const f = s['ours-fsync'];
      row = `| 7. durability — fan-out p50 / p99 | ${cell('ours-memory')} | ${cell('ours-leveldb')}; with fsync ${f ? `${fmt(f.p50)} / ${fmt(f.p99)} ms` : '–'} | | | |`;
    }
    out.push(row);
  }
  return out;
}

function machineInfo() {
  const cpuinfo = spawnSync('cat', ['/proc/cpuinfo'], { encoding: 'utf8' }).stdout ?? '';
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown CPU';
  return {
    cpus: cpus().length,
    cpu: model.trim(),
    node: process.version,
    platform: process.platform,
  };
}
function versions() {
  const out = {};
  for (const pkg of [
    '@y/websocket-server',
    '@hocuspocus/server',
    '@hocuspocus/provider',
    'y-websocket',
    'yjs',
    'ws',
  ]) {
    out[pkg] = '?';
    // bench/node_modules holds the peers (its own package.json), the rest comes from the workspace.
    for (const base of [
      join(HERE, 'node_modules'),
      join(HERE, '..', 'node_modules'),
      join(HERE, '..', '..', 'node_modules'),
    ]) {
      const r = spawnSync('cat', [join(base, pkg, 'package.json')], { encoding: 'utf8' });
      if (r.status === 0) {
        out[pkg] = JSON.parse(r.stdout).version;
        break;
      }
    }
  }
  return out;
}
function log(msg) {
  process.stderr.write(`${msg}\n`);
}

// ---- pinning: re-exec the load generator on core 1, servers go to core 0 ----
if (PIN && env.BENCH_PINNED !== '1') {
  const child = spawn(
    'taskset',
    [
      '-c',
      '1',
      process.execPath,
      ...process.execArgv,
      fileURLToPath(import.meta.url),
      ...process.argv.slice(2),
    ],
    {
      stdio: 'inherit',
      env: { ...env, BENCH_PINNED: '1' },
    },
  );
  const forward = (sig) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
} else {
  await main();
}
