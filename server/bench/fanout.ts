/**
 * The load generator of the fan-out scenarios (1–4, 7): every client of a document
 * sends `rate` edits/s, every other client of the document must receive each one.
 * Fan-out latency is the time from the send until the last other client received the
 * edit (one clock: all clients live in this process). An edit not seen by every peer
 * within 3 s after the load ends counts as lost. The server's CPU, RSS and the steal
 * on its core come from /proc over the load and its drain.
 */
import * as Y from 'yjs';
import { CLIENTS, PIN } from './config.js';
import type { RunningSystem } from './launcher.js';
import { connectLight, type LightClient } from './light-client.js';
import { cpuMs, procMemKb, stealBetween, stealMs } from './proc-stats.js';
import type { FanOutRun } from './results.js';
import { quantile } from './stats.js';
import { connectMany } from './stock-client.js';
import { sleep, until, within } from './wait.js';

export interface FanOutSpec {
  docs: number;
  perDoc: number;
  /** edits/s per client */
  rate: number;
  seconds: number;
  /** unique per run: the documents' names start with it */
  tag: string;
}

interface ServerUsage {
  mem: { rss: number; hwm: number };
  cpu: number;
  steal: number;
}

/** Starts measuring a system's process over a load; `end()` gives its usage since. */
function measureServer(system: RunningSystem): { end: () => ServerUsage } {
  const cpuBefore = cpuMs(system.pid);
  const stealBefore = stealMs();
  // Steal on the server's core: core 0 when pinned, all cores otherwise.
  const cores = PIN ? ['0'] : undefined;
  return {
    end: () => ({
      mem: procMemKb(system.pid),
      cpu: cpuMs(system.pid) - cpuBefore,
      steal: stealBetween(stealBefore, stealMs(), cores),
    }),
  };
}

export function fanOutRun(system: RunningSystem, spec: FanOutSpec): Promise<FanOutRun> {
  return CLIENTS === 'light' ? fanOutRunLight(system, spec) : fanOutRunStock(system, spec);
}

interface LightSender {
  /** Yjs client id */
  id: number;
  key: string;
  /** send time of each clock */
  t0: Float64Array;
  /** receivers still to see each clock */
  remaining: Int32Array;
  sent: number;
  /** phase of this client's schedule, ms */
  offset: number;
  /** per sender: the clock up to which this client has counted its edits */
  seen: Map<number, number>;
  conn: LightClient;
}

/**
 * Fan-out with light clients (light-client.ts): every client sends `rate` edits/s on a
 * fixed schedule (one ticker for all, random phase per client) and counts the edits of
 * the others in the frames it receives.
 */
async function fanOutRunLight(
  system: RunningSystem,
  { docs, perDoc, rate, seconds, tag }: FanOutSpec,
): Promise<FanOutRun> {
  const perClient = Math.round(rate * seconds);
  const period = 1000 / rate;
  const senders = new Map<number, LightSender>();
  const clients: LightSender[] = [];
  const latencies: number[] = [];
  let sent = 0;
  let delivered = 0;
  let outstanding = 0;
  let firstSend = Infinity;
  let lastComplete = 0;
  const receive = (receiver: LightSender, update: Uint8Array): void => {
    const now = performance.now();
    const meta = Y.parseUpdateMeta(update);
    for (const [client, from] of meta.from) {
      if (client === receiver.id) continue; // the reference server echoes the sender's own edits
      const sender = senders.get(client);
      if (!sender) continue;
      const seen = receiver.seen.get(client) ?? 0; // edits of one sender arrive in order: count each once
      const to = Math.min(meta.to.get(client) ?? 0, sender.sent);
      for (let clock = Math.max(from, seen); clock < to; clock++) {
        if (--sender.remaining[clock]! === 0) {
          latencies.push(now - sender.t0[clock]!);
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
      const id = (Math.random() * 0xffffffff) >>> 0; // as Yjs picks them: most take five bytes
      const state: LightSender = {
        id,
        key: `c${clients.length}`,
        t0: new Float64Array(perClient),
        remaining: new Int32Array(perClient),
        sent: 0,
        offset: Math.random() * period,
        seen: new Map(),
        conn: connectLight(system, `bench-${tag}-d${d}`, (update) => receive(state, update)),
      };
      senders.set(state.id, state);
      clients.push(state);
    }
  }
  const closeAll = (): void => clients.forEach((c) => c.conn.close());
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
  await new Promise<void>((resolve) => {
    const tick = (): void => {
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
  await until(() => outstanding === 0, 'drain', 3000).catch(() => undefined); // undrained = lost
  const server = usage.end();
  let lostEdits = 0;
  let lostDeliveries = 0;
  for (const s of clients) {
    for (let clock = 0; clock < s.sent; clock++) {
      const remaining = s.remaining[clock] ?? 0;
      if (remaining > 0) {
        lostEdits++;
        lostDeliveries += remaining;
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
async function fanOutRunStock(
  system: RunningSystem,
  { docs, perDoc, rate, seconds, tag }: FanOutSpec,
): Promise<FanOutRun> {
  const rooms: string[] = [];
  for (let d = 0; d < docs; d++) for (let c = 0; c < perDoc; c++) rooms.push(`bench-${tag}-d${d}`);
  const clients = await connectMany(system, rooms);
  const ledger = new Map<string, { t0: number; remaining: number }>();
  const latencies: number[] = [];
  let sent = 0;
  let delivered = 0;
  let firstSend = Infinity;
  let lastComplete = 0;
  const writers = clients.map((client, i) => {
    const map = client.doc.getMap<number>('e');
    map.observe((event, tr) => {
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
    return { id: `c${i}`, map };
  });
  await sleep(300);
  const usage = measureServer(system);
  const perClient = Math.round(rate * seconds);
  const period = 1000 / rate;
  const start = performance.now() + 50;
  await new Promise<void>((resolve) => {
    let active = writers.length;
    for (const writer of writers) {
      let seq = 0;
      const offset = Math.random() * period;
      const tick = (): void => {
        const key = `${writer.id}:${seq}`;
        const t0 = performance.now();
        if (t0 < firstSend) firstSend = t0;
        ledger.set(key, { t0, remaining: perDoc - 1 });
        writer.map.set(key, t0);
        sent++;
        seq++;
        if (seq >= perClient) {
          if (--active === 0) resolve();
          return;
        }
        const due = start + offset + seq * period;
        setTimeout(tick, Math.max(0, due - performance.now()));
      };
      setTimeout(tick, Math.max(0, start + offset - performance.now()));
    }
  });
  const lastSend = performance.now();
  await until(() => ledger.size === 0, 'drain', 3000).catch(() => undefined); // undrained = lost
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

interface Measured extends ServerUsage {
  latencies: number[];
  sent: number;
  delivered: number;
  firstSend: number;
  lastSend: number;
  lastComplete: number;
  lostEdits: number;
  lostDeliveries: number;
}

/** One fan-out run's figures, from what either kind of client measured. */
export function fanOutResult(m: Measured): FanOutRun {
  const latencies = [...m.latencies].sort((a, b) => a - b);
  const loadSeconds = Math.max(m.lastSend, m.lastComplete) - m.firstSend;
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    max: latencies[latencies.length - 1] ?? NaN,
    sent: m.sent,
    delivered: m.delivered,
    offeredPerSec: m.sent / ((m.lastSend - m.firstSend) / 1000),
    achievedPerSec: m.delivered / (loadSeconds / 1000),
    lostEdits: m.lostEdits,
    lostDeliveries: m.lostDeliveries,
    rssKb: m.mem.rss,
    peakRssKb: m.mem.hwm,
    cpuMsPer1k: (m.cpu / m.sent) * 1000,
    stealMs: m.steal,
  };
}
