/**
 * The steady-load rows of `npm run bench:cluster`: cross-node edit latency and
 * CPU per update, then catch-up after a partition of n3. Writers on n1, a stock
 * y-websocket reader on n3 that timestamps each arrival (one process, one
 * clock). The writers are light clients (light-client.ts): stock ones would
 * each apply every other writer's update too, ten Yjs integrations per edit in
 * this process, whose delays would be counted as the cluster's latency.
 */
import { loadavg } from 'node:os';
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import type { BenchCluster } from './cluster-setup.js';
import { connectLight } from './light-client.js';
import { cpuMs } from './proc-stats.js';
import { quantile } from './stats.js';
import { sleep, until } from './wait.js';

export interface BenchClient {
  readonly ydoc: Y.Doc;
  destroy(): void;
}

export async function connectClient(port: number, doc: string): Promise<BenchClient> {
  const ydoc = new Y.Doc();
  const provider = new WebsocketProvider(`ws://127.0.0.1:${port}`, doc, ydoc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  await until(() => provider.synced, 'a client to sync', 15_000);
  return {
    ydoc,
    destroy() {
      provider.destroy();
      ydoc.destroy();
    },
  };
}

export interface LoadFigures {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly writes: number;
  /** CPU time of every server process per update, in µs. */
  readonly cpuPerUpdateUs: number;
  /** The same by process (n1, n2, n3, redis). */
  readonly cpuByProcessUs: Readonly<Record<string, number>>;
  /** CPU time of this process (the writers and the reader) per update, in µs. */
  readonly clientCpuPerUpdateUs: number;
  readonly processes: number;
  /** 1-minute load average at the end of the load. */
  readonly load: number;
}

export interface PartitionFigures {
  readonly writesPerSide: number;
  /** From the heal until both clients hold everything (reconnect backoff included). */
  readonly catchUpMs: number;
  /** Bytes over n3's links from the heal until then. */
  readonly catchUpBytes: number;
  readonly docBytes: number;
}

/** One stock client may send 200 messages/s (the node's default limit): one writer per 100/s. */
const PER_WRITER = 100;
const WRITER_ID = 1_000_000;
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/**
 * Writers on the first node, the reader on the last (n3; the same node when
 * single), `rate` writes/s for `loadMs`. The clients stay open for the partition.
 */
export async function measureLoad(
  cluster: BenchCluster,
  rate: number,
  loadMs: number,
  /** Given every write's [sent at, ms since the load began; latency ms], in order of arrival. */
  onLatencies?: (writes: ReadonlyArray<readonly [sentMs: number, latencyMs: number]>) => void,
): Promise<{ figures: LoadFigures; writer: BenchClient; reader: BenchClient }> {
  const first = cluster.nodes[0]!;
  const last = cluster.nodes[cluster.nodes.length - 1]!;
  const endpoint = {
    name: 'ours',
    url: `ws://127.0.0.1:${first.port}`,
    client: 'y-websocket',
  } as const;
  const writers = Array.from({ length: Math.max(1, Math.ceil(rate / PER_WRITER)) }, () =>
    connectLight(endpoint, 'bench', () => undefined),
  );
  await Promise.all(writers.map((w) => w.ready));
  /** Yjs client ids of the light writers (a stock client's are random 32-bit numbers). */
  const clocks = writers.map(() => 0);
  const writer = await connectClient(first.port, 'bench');
  const reader = await connectClient(last.port, 'bench');
  const sentAt = new Map<string, number>();
  const latencies: number[] = [];
  const timeline: Array<[number, number]> = [];
  let started = 0;
  reader.ydoc.getMap('e').observe((event) => {
    const now = performance.now();
    for (const key of event.keysChanged) {
      const t = sentAt.get(key);
      if (t === undefined) continue;
      latencies.push(now - t);
      if (onLatencies) timeline.push([t - started, now - t]);
    }
  });
  // The first write opens the document everywhere; it is not measured.
  writer.ydoc.getMap('warm').set('up', 1);
  await until(() => reader.ydoc.getMap('warm').get('up') === 1, 'the first write', 30_000);
  const writes = Math.round((rate * loadMs) / 1000);
  const processes = cluster.processes();
  const cpuBefore = processes.map(({ pid }) => cpuMs(pid));
  const clientCpuBefore = process.cpuUsage();
  started = performance.now();
  for (let i = 0; i < writes; i++) {
    const wait = started + (i * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const w = i % writers.length;
    sentAt.set(`k${i}`, performance.now());
    writers[w]!.send(writers[w]!.edit(WRITER_ID + w, clocks[w]!++, `k${i}`));
  }
  await until(() => latencies.length >= writes, 'the reader to see every write', 60_000);
  const cpuUs = processes.map(({ pid }, i) => ((cpuMs(pid) - cpuBefore[i]!) * 1000) / writes);
  const cpuPerUpdateUs = sum(cpuUs);
  const clientCpu = process.cpuUsage(clientCpuBefore);
  const load = loadavg()[0] ?? NaN;
  onLatencies?.(timeline);
  latencies.sort((a, b) => a - b);
  for (const w of writers) w.close();
  return {
    figures: {
      p50Ms: quantile(latencies, 0.5),
      p99Ms: quantile(latencies, 0.99),
      maxMs: latencies[latencies.length - 1] ?? NaN,
      writes,
      cpuPerUpdateUs,
      cpuByProcessUs: Object.fromEntries(processes.map(({ name }, i) => [name, cpuUs[i]!])),
      processes: processes.length,
      clientCpuPerUpdateUs: (clientCpu.user + clientCpu.system) / writes,
      load,
    },
    writer,
    reader,
  };
}

/** Writes/s on each side of the partition (one client each). */
const PARTITION_RATE = 100;

/** n3 alone for `partitionMs` while both clients keep writing; then healed. */
export async function measurePartition(
  cluster: BenchCluster,
  writer: BenchClient,
  reader: BenchClient,
  partitionMs: number,
): Promise<PartitionFigures> {
  cluster.proxies.forEach((p) => p.cut());
  const end = performance.now() + partitionMs;
  let i = 0;
  while (performance.now() < end) {
    writer.ydoc.getMap('a').set(`a${i}`, i);
    reader.ydoc.getMap('b').set(`b${i}`, i);
    i++;
    await sleep(1000 / PARTITION_RATE);
  }
  const lastWrite = i - 1;
  cluster.proxies.forEach((p) => p.resetBytes());
  const healed = performance.now();
  cluster.proxies.forEach((p) => p.heal());
  await until(
    () =>
      reader.ydoc.getMap('a').get(`a${lastWrite}`) === lastWrite &&
      writer.ydoc.getMap('b').get(`b${lastWrite}`) === lastWrite,
    'catch-up after the partition',
    60_000,
  );
  const catchUpMs = performance.now() - healed;
  return {
    writesPerSide: i,
    catchUpMs,
    catchUpBytes: sum(cluster.proxies.map((p) => p.bytes())),
    docBytes: Y.encodeStateAsUpdate(writer.ydoc).length,
  };
}
