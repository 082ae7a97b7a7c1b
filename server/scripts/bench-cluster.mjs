#!/usr/bin/env node
/**
 * `npm run bench:cluster`: three node processes on 127.0.0.1 (fresh data
 * directories), n3 reachable only through TCP proxies so it can be cut off.
 *
 * 1. Replication latency at a steady load: a stock client on n1 writes
 *    BENCH_RATE updates/s (default 1,000) for BENCH_LOAD_MS; a client on n3
 *    timestamps each arrival. Prints p50/p99, and the CPU the nodes (and
 *    redis-server) spent per update, against one node serving the same writer
 *    and reader alone ("single"): CPU time is steadier than latency on a shared
 *    machine.
 * 2. Catch-up after a partition: n3 is cut off for BENCH_PARTITION_MS (default
 *    30 s) while clients on n1 and n3 keep writing; then healed. Prints the time
 *    until both clients hold everything, and the bytes the catch-up cost.
 *
 * Both run on the WebSocket mesh and then on a Redis backplane (a redis-server
 * this script starts on a free port and stops; n3 reaches it through a proxy),
 * side by side. BENCH_BACKPLANE=mesh or redis runs only one. Everything runs
 * BENCH_RUNS times (default 3), interleaved; the summary gives medians and
 * ranges.
 */
import { readFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer as createTcpServer, Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';

const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
/** Writes/s on each side of the partition (one client each). */
const PARTITION_RATE = 100;
const LOAD_MS = Number(process.env.BENCH_LOAD_MS ?? 10_000);
const PARTITION_MS = Number(process.env.BENCH_PARTITION_MS ?? 30_000);
const SECRET = 'bench-peer-secret-0123456789abcdef';
const BACKPLANES = (process.env.BENCH_BACKPLANE ?? 'single,mesh,redis').split(',');
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS_PER_S = 100;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const until = async (check, what, timeoutMs = 60_000) => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
};

const listen = (server) =>
  new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
const freePort = async () => {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
};

/**
 * A TCP proxy that counts bytes and can cut every connection. Without Nagle's
 * algorithm, as the nodes' own sockets (ws and ioredis set TCP_NODELAY): the
 * proxy must not hold small writes back where a direct link would not.
 */
const proxyTo = async (target) => {
  const sockets = new Set();
  const state = { cut: false, bytes: 0 };
  const server = createTcpServer({ noDelay: true }, (client) => {
    if (state.cut) return client.destroy();
    const upstream = new Socket().connect(target, '127.0.0.1');
    upstream.setNoDelay(true);
    for (const [from, to] of [
      [client, upstream],
      [upstream, client],
    ]) {
      sockets.add(from);
      from.on('data', (chunk) => {
        state.bytes += chunk.length;
        to.write(chunk);
      });
      from.on('error', () => to.destroy());
      from.on('close', () => (sockets.delete(from), to.destroy()));
    }
  });
  const port = await listen(server);
  return {
    url: `ws://127.0.0.1:${port}`,
    state,
    cut: () => ((state.cut = true), sockets.forEach((s) => s.destroy())),
    heal: () => (state.cut = false),
    close: () => ((state.cut = true), sockets.forEach((s) => s.destroy()), server.close()),
  };
};

const children = [];
const dirs = [];
/** `links`: `['--peers', urls]` or `['--redis', url]`. */
const startNode = async (id, port, links) => {
  const dir = await mkdtemp(join(tmpdir(), `stateweave-bench-${id}-`));
  dirs.push(dir);
  const args = [
    '--no-node-snapshot', // isolated-vm on Node 20+ (docs/functions.md)
    MAIN,
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--data',
    dir,
    '--node-id',
    id,
    ...links,
    '--log-level',
    'warn',
  ];
  const child = spawn(process.execPath, args, {
    stdio: 'ignore',
    env: { ...process.env, STATEWEAVE_PEER_SECRET: SECRET },
  });
  children.push(child);
  await until(
    async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.ok,
    `${id} to start`,
    10_000,
  );
};

const client = async (port, doc) => {
  const ydoc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${port}`, doc, ydoc, {
    WebSocketPolyfill: WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  await until(() => provider.synced, 'a client to sync', 10_000);
  return { ydoc, provider };
};

const percentile = (sorted, p) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];

/** CPU time (user + system) a process has used so far, in ms. */
const cpuMs = async (pid) => {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_S;
};
const cpuOf = async (pids) => (await Promise.all(pids.map(cpuMs))).reduce((a, b) => a + b, 0);

/** Starts redis-server on a free port; resolves with its port once it accepts connections. */
const startRedis = async () => {
  const port = await freePort();
  const dir = await mkdtemp(join(tmpdir(), 'stateweave-bench-redis-'));
  dirs.push(dir);
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', ''],
    {
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  children.push(child);
  await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
      if (out.includes('Ready to accept connections')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code})`)));
  });
  return port;
};

/** One node, no peers: the writer and the reader both on it (the baseline). */
const singleNode = async () => {
  const port = await freePort();
  await startNode('n1', port, []);
  return { ports: [port, port, port], proxies: [] };
};

/** Three nodes on the mesh; every link touching n3 goes through a proxy. */
const meshCluster = async () => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const toN3 = await proxyTo(p3);
  const n3ToN1 = await proxyTo(p1);
  const n3ToN2 = await proxyTo(p2);
  const peers = (urls) => ['--peers', urls.join(',')];
  await startNode('n1', p1, peers([`ws://127.0.0.1:${p2}`, toN3.url]));
  await startNode('n2', p2, peers([`ws://127.0.0.1:${p1}`, toN3.url]));
  await startNode('n3', p3, peers([n3ToN1.url, n3ToN2.url]));
  await until(async () => {
    const status = await (await fetch(`http://127.0.0.1:${p3}/v1/cluster`)).json();
    return status.peers.filter((p) => p.state === 'connected').length === 2;
  }, 'n3 to link with n1 and n2');
  return { ports: [p1, p2, p3], proxies: [toN3, n3ToN1, n3ToN2] };
};

/** Three nodes on one Redis; n3 reaches it through a proxy. */
const redisCluster = async () => {
  const redisPort = await startRedis();
  const n3ToRedis = await proxyTo(redisPort);
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const direct = ['--redis', `redis://127.0.0.1:${redisPort}`];
  await startNode('n1', p1, direct);
  await startNode('n2', p2, direct);
  await startNode('n3', p3, ['--redis', n3ToRedis.url.replace('ws:', 'redis:')]);
  await until(async () => {
    const status = await (await fetch(`http://127.0.0.1:${p3}/v1/cluster`)).json();
    return status.members.length === 3;
  }, 'n3 to see n1 and n2 on Redis');
  return { ports: [p1, p2, p3], proxies: [n3ToRedis] };
};

const measure = async (label, { ports: [p1, , p3], proxies }) => {
  // One stock client may send 200 messages/s (the node's default limit): the
  // load comes from one writer per 100 writes/s, all on n1.
  const writers = await Promise.all(
    Array.from({ length: Math.max(1, Math.ceil(RATE / 100)) }, () => client(p1, 'bench')),
  );
  const writer = writers[0];
  const reader = await client(p3, 'bench');
  const sentAt = new Map();
  const latencies = [];
  reader.ydoc.getMap('seq').observe((event) => {
    for (const key of event.keysChanged) {
      const t = sentAt.get(key);
      if (t !== undefined) latencies.push(performance.now() - t);
    }
  });
  // The first write opens the document everywhere; it is not measured.
  writer.ydoc.getMap('warm').set('up', 1);
  await until(() => reader.ydoc.getMap('warm').get('up') === 1, 'the first write to arrive');
  const writes = Math.round((RATE * LOAD_MS) / 1000);
  const pids = children.filter((c) => c.exitCode === null).map((c) => c.pid);
  const cpuBefore = await cpuOf(pids);
  const started = performance.now();
  for (let i = 0; i < writes; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    sentAt.set(`k${i}`, performance.now());
    writers[i % writers.length].ydoc.getMap('seq').set(`k${i}`, i);
  }
  await until(() => latencies.length >= writes, 'the reader to see every write', 30_000);
  const cpuPerUpdateUs = (((await cpuOf(pids)) - cpuBefore) * 1000) / writes;
  // The 1-minute load average at the end of the load: what else the machine ran.
  const load = loadavg()[0];
  latencies.sort((a, b) => a - b);
  const figures = {
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    cpuPerUpdateUs,
    processes: pids.length,
    load,
  };
  console.log(
    `[${label}] replication latency n1 client -> n3 client at ${RATE} writes/s for ${LOAD_MS / 1000} s (${writes} writes): ` +
      `p50 ${figures.p50.toFixed(2)} ms, p99 ${figures.p99.toFixed(2)} ms, max ${latencies.at(-1).toFixed(2)} ms; ` +
      `CPU ${cpuPerUpdateUs.toFixed(0)} µs per update over ${pids.length} processes (${(cpuPerUpdateUs / pids.length).toFixed(0)} µs each); load average ${load.toFixed(1)}`,
  );
  for (const w of writers.slice(1)) w.provider.destroy();
  if (proxies.length === 0) {
    writer.provider.destroy();
    reader.provider.destroy();
    return figures;
  }

  // Partition: n3 alone for PARTITION_MS while both sides keep writing.
  proxies.forEach((p) => p.cut());
  const partitionEnd = performance.now() + PARTITION_MS;
  let i = 0;
  while (performance.now() < partitionEnd) {
    writer.ydoc.getMap('a').set(`a${i}`, i);
    reader.ydoc.getMap('b').set(`b${i}`, i);
    i++;
    // One client per side: within the node's 200 messages/s per connection.
    await sleep(1000 / PARTITION_RATE);
  }
  const last = i - 1;
  proxies.forEach((p) => (p.state.bytes = 0));
  const healed = performance.now();
  proxies.forEach((p) => p.heal());
  await until(
    () =>
      reader.ydoc.getMap('a').get(`a${last}`) === last &&
      writer.ydoc.getMap('b').get(`b${last}`) === last,
    'catch-up',
  );
  const catchUpMs = performance.now() - healed;
  const bytes = proxies.reduce((sum, p) => sum + p.state.bytes, 0);
  console.log(
    `[${label}] catch-up after a ${PARTITION_MS / 1000} s partition (${i} writes on each side): ${catchUpMs.toFixed(0)} ms until both clients held everything ` +
      `(reconnect backoff included), ${bytes} bytes over n3's links; document ${Y.encodeStateAsUpdate(writer.ydoc).length} bytes`,
  );
  writer.provider.destroy();
  reader.provider.destroy();
  proxies.forEach((p) => p.close());
  return { ...figures, catchUpMs, catchUpBytes: bytes };
};

const stopAll = async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await sleep(200);
};

const SETUPS = { single: singleNode, mesh: meshCluster, redis: redisCluster };

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};
const spread = (values, digits = 1) =>
  `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;

const main = async () => {
  const results = Object.fromEntries(BACKPLANES.map((b) => [b, []]));
  // Interleaved, so that a noisy minute of the machine hits every setup alike.
  for (let run = 1; run <= RUNS; run++) {
    for (const backplane of BACKPLANES) {
      results[backplane].push(await measure(`${backplane} run ${run}`, await SETUPS[backplane]()));
      await stopAll();
    }
  }
  const single = results.single?.map((r) => r.cpuPerUpdateUs);
  console.log(`\nsummary: median (min–max) of ${RUNS} runs at ${RATE} writes/s`);
  for (const backplane of BACKPLANES) {
    const rs = results[backplane];
    const cpu = rs.map((r) => r.cpuPerUpdateUs);
    // Every node of a three-node cluster stores every update (replication factor 3):
    // the total is compared with one node's, and so is the mean per process.
    const perProcess = cpu.map((c, i) => c / rs[i].processes);
    const ratio = single
      ? ` = ${(median(cpu) / median(single)).toFixed(2)}× single; per process ${spread(perProcess, 0)} µs = ${(median(perProcess) / median(single)).toFixed(2)}×`
      : '';
    const catchUp =
      rs[0].catchUpMs === undefined
        ? ''
        : `, catch-up ${spread(
            rs.map((r) => r.catchUpMs),
            0,
          )} ms, ${spread(
            rs.map((r) => r.catchUpBytes / 1024),
            0,
          )} KiB`;
    console.log(
      `- ${backplane}: p50 ${spread(
        rs.map((r) => r.p50),
        2,
      )} ms, p99 ${spread(
        rs.map((r) => r.p99),
        2,
      )} ms, ` +
        `CPU/update ${spread(cpu, 0)} µs${ratio}${catchUp}; load average ${spread(
          rs.map((r) => r.load),
          1,
        )}`,
    );
  }
};

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const child of children) child.kill('SIGKILL');
    await sleep(200);
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
    // Providers left by a failed run keep reconnecting: end here.
    process.exit();
  });
