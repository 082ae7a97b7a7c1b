/**
 * Scenario 9 of `npm run bench`: presence traffic in one document, in the units
 * y-hub reports — N clients each sending a cursor (an awareness update) once a
 * second, phase-shifted so the load is even; the server's CPU as a share of one
 * core while it relays them, and the presence frames the clients received per
 * second. Every system in the same run, runs rotated.
 * Its summary-table row: CPU % of a core at the largest client count.
 *
 * Environment: BENCH_PRESENCE_CLIENTS [200,500], BENCH_PRESENCE_SECONDS [8].
 */
import * as encoding from 'lib0/encoding';
import { encodeAwarenessEntries } from '@stateweave/client/protocol';
import { log } from './config.js';
import { rotate, withSystem, type RunningSystem } from './launcher.js';
import { connectLight, type LightClient, type SystemEndpoint } from './light-client.js';
import { cpuMs } from './proc-stats.js';
import { SUMMARY_COLUMNS, fmt, label, ratio } from './render.js';
import { isFailed, type ExtrasScenario, type RunsBySystem } from './results.js';
import { median } from './stats.js';
import { errorMessage, sleep } from './wait.js';

const AWARENESS = 1;

/** One client's awareness frame in the system's framing (Hocuspocus prefixes the document name). */
function awarenessFrame(
  system: SystemEndpoint,
  room: string,
  clientId: number,
  clock: number,
): Uint8Array {
  const update = encodeAwarenessEntries([
    {
      clientId,
      clock,
      state: { user: { name: `user ${clientId}`, color: '#30bced' }, cursor: { anchor: clock } },
    },
  ]);
  const e = encoding.createEncoder();
  if (system.client === 'hocuspocus') encoding.writeVarString(e, room);
  encoding.writeVarUint(e, AWARENESS);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
}

export interface PresenceRun {
  clients: number;
  sentPerSec: number;
  /** the server's CPU (user + system) as a share of one core, % */
  cpuPct: number;
  /** presence frames all clients received together, per second */
  framesInPerSec: number;
}

async function presenceRun(
  system: RunningSystem,
  { clients, seconds, tag }: { clients: number; seconds: number; tag: string },
): Promise<PresenceRun> {
  const room = `bench-presence-${tag}`;
  const conns: LightClient[] = [];
  let framesIn = 0;
  try {
    for (let i = 0; i < clients; i += 50) {
      const batch = Array.from({ length: Math.min(50, clients - i) }, () =>
        connectLight(
          system,
          room,
          () => undefined,
          () => framesIn++,
        ),
      );
      conns.push(...batch);
      await Promise.all(batch.map((c) => c.ready));
    }
    // Everyone announces itself once, then the measured window starts from a settled room.
    conns.forEach((c, i) => c.send(awarenessFrame(system, room, 1_000_000 + i, 1)));
    await sleep(1000);
    const clock = new Array<number>(clients).fill(1);
    const cpuBefore = cpuMs(system.pid);
    const framesBefore = framesIn;
    const started = Date.now();
    let sent = 0;
    // One tick per 1/clients s sends the next client's update: each client once a second.
    const end = started + seconds * 1000;
    let next = 0;
    while (Date.now() < end) {
      const due = Math.floor(((Date.now() - started) / 1000) * clients);
      for (; next < due && Date.now() < end; next++) {
        const i = next % clients;
        const c = (clock[i] ?? 1) + 1;
        clock[i] = c;
        conns[i]?.send(awarenessFrame(system, room, 1_000_000 + i, c));
        sent++;
      }
      await sleep(5);
    }
    const wallMs = Date.now() - started;
    const cpu = cpuMs(system.pid) - cpuBefore;
    await sleep(300); // frames in flight at the end still count as delivered
    return {
      clients,
      sentPerSec: (sent / wallMs) * 1000,
      cpuPct: (cpu / wallMs) * 100,
      framesInPerSec: ((framesIn - framesBefore) / wallMs) * 1000,
    };
  } finally {
    for (const c of conns) c.close();
  }
}

const range = (xs: number[]): string => {
  const s = xs.filter(Number.isFinite);
  return s.length ? `${Math.min(...s).toFixed(0)}–${Math.max(...s).toFixed(0)}` : '–';
};

export interface PresenceSummary {
  cpuPct: number;
  framesInPerSec: number;
}
export interface PresenceData {
  runs: Record<string, RunsBySystem<PresenceRun>>;
  /** by client count, then system */
  summary: Record<string, Record<string, PresenceSummary>>;
}

/** Runs scenario 9 for `systems` (names; not the relay nor LevelDB), `runs` times each, rotated. */
export async function runPresence({
  systems,
  runs,
  quick,
}: {
  systems: string[];
  runs: number;
  quick: boolean;
}): Promise<ExtrasScenario & { data: PresenceData }> {
  const env = process.env;
  const sizes = (env.BENCH_PRESENCE_CLIENTS ?? (quick ? '100' : '200,500')).split(',').map(Number);
  const seconds = Number(env.BENCH_PRESENCE_SECONDS ?? (quick ? 4 : 8));
  const names = systems.filter((n) => n !== 'relay' && n !== 'ours-leveldb');
  const results: Record<string, RunsBySystem<PresenceRun>> = {};
  for (const clients of sizes) {
    const bySystem: RunsBySystem<PresenceRun> = Object.fromEntries(names.map((n) => [n, []]));
    results[clients] = bySystem;
    for (let r = 0; r < runs; r++) {
      for (const name of rotate(names, r)) {
        const list = bySystem[name] ?? [];
        try {
          const run = await withSystem(name, (s) =>
            presenceRun(s, { clients, seconds, tag: `p${clients}r${r}` }),
          );
          list.push(run);
          log(
            `  ${clients} clients, run ${r + 1} ${name.padEnd(12)} cpu ${run.cpuPct.toFixed(1)}% of a core, ${run.sentPerSec.toFixed(0)} updates/s in, ${run.framesInPerSec.toFixed(0)} frames/s out`,
          );
        } catch (err) {
          list.push({ error: errorMessage(err) });
          log(`  ${clients} clients, run ${r + 1} ${name}: ${errorMessage(err)}`);
        }
      }
    }
  }
  const lines = [
    `Each client sends its cursor once a second for ${seconds} s (phase-shifted); the server's CPU (user + system, /proc) as a share of one core, median and range over ${runs} run(s); frames/s is what all clients received together. y-hub's reference figure: 500 clients at 1 Hz saturate one core. Goal (issue 18): ≤ 15 % of a core at 500 clients.`,
    '',
    '| clients | system | CPU % of a core | range | frames/s received | ÷ ref CPU | ÷ hp CPU |',
    '|--:|---|--:|--:|--:|--:|--:|',
  ];
  const summary: PresenceData['summary'] = {};
  for (const [clients, perSystem] of Object.entries(results)) {
    const good = (name: string): PresenceRun[] =>
      (perSystem[name] ?? []).filter((r): r is PresenceRun => !isFailed(r));
    const cpu = (name: string): number => median(good(name).map((r) => r.cpuPct));
    const bySystem: Record<string, PresenceSummary> = {};
    summary[clients] = bySystem;
    for (const name of names) {
      const ok = good(name);
      const failed = (perSystem[name]?.length ?? 0) - ok.length;
      bySystem[name] = {
        cpuPct: cpu(name),
        framesInPerSec: median(ok.map((r) => r.framesInPerSec)),
      };
      lines.push(
        `| ${clients} | ${label(name)}${failed > 0 ? ` (${failed} failed)` : ''} | ${fmt(cpu(name))} | ${range(ok.map((r) => r.cpuPct))} | ${fmt(median(ok.map((r) => r.framesInPerSec)), 0)} | ${ratio(cpu(name), cpu('reference'))} | ${ratio(cpu(name), cpu('hocuspocus'))} |`,
      );
    }
  }
  return {
    title: `presence: one document, ${sizes.join(' and ')} clients each sending a cursor at 1 Hz`,
    kind: 'extras',
    markdown: lines.join('\n'),
    summaryRow: presenceSummaryRow(summary),
    data: { runs: results, summary },
  };
}

/** The summary table's row: CPU % of a core at the largest client count, per system. */
function presenceSummaryRow(summary: PresenceData['summary']): string | undefined {
  const largest = Math.max(...Object.keys(summary).map(Number));
  const bySystem = summary[largest];
  if (!bySystem) return undefined;
  const cell = (c: string): string => {
    const r = bySystem[c];
    return r ? `${fmt(r.cpuPct)} %` : '';
  };
  return `| 9. presence, ${largest} clients at 1 Hz — server CPU % of a core | ${SUMMARY_COLUMNS.map(cell).join(' | ')} |`;
}
