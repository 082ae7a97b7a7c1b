/**
 * Scenario 9 of `npm run bench`: presence traffic in one document, in the units
 * y-hub reports — N clients each sending a cursor (an awareness update) once a
 * second, phase-shifted so the load is even; the server's CPU as a share of one
 * core while it relays them, and the presence frames the clients received per
 * second. Every system in the same run, runs rotated.
 *
 * Environment: BENCH_PRESENCE_CLIENTS [200,500], BENCH_PRESENCE_SECONDS [8].
 */
import * as encoding from 'lib0/encoding';
import { encodeAwarenessEntries } from '@stateweave/client/protocol';

const AWARENESS = 1;

/** One client's awareness frame in the system's framing (Hocuspocus prefixes the document name). */
function awarenessFrame(system, room, clientId, clock) {
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

async function presenceRun(system, { clients, seconds, tag }, { connectLight, cpuMs, sleep }) {
  const room = `bench-presence-${tag}`;
  const conns = [];
  let framesIn = 0;
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
  try {
    // Everyone announces itself once, then the measured window starts from a settled room.
    conns.forEach((c, i) => c.send(awarenessFrame(system, room, 1_000_000 + i, 1)));
    await sleep(1000);
    const clock = new Array(clients).fill(1);
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
        clock[i]++;
        conns[i].send(awarenessFrame(system, room, 1_000_000 + i, clock[i]));
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

const median = (xs) => {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs) => {
  const s = xs.filter(Number.isFinite);
  return s.length ? `${Math.min(...s).toFixed(0)}–${Math.max(...s).toFixed(0)}` : '–';
};

/**
 * Runs scenario 9 for `systems` (names), `runs` times each, rotated; `helpers`
 * are run.mjs's: withSystems, connectLight, cpuMs, sleep, log, label.
 */
export async function runPresence({ systems, runs, quick, helpers }) {
  const env = process.env;
  const sizes = (env.BENCH_PRESENCE_CLIENTS ?? (quick ? '100' : '200,500')).split(',').map(Number);
  const seconds = Number(env.BENCH_PRESENCE_SECONDS ?? (quick ? 4 : 8));
  const names = systems.filter((n) => n !== 'relay' && n !== 'ours-leveldb');
  const results = {};
  for (const clients of sizes) {
    results[clients] = Object.fromEntries(names.map((n) => [n, []]));
    for (let r = 0; r < runs; r++) {
      for (const name of names.map((_, i) => names[(i + r) % names.length])) {
        try {
          const run = await helpers.withSystems([name], ([s]) =>
            presenceRun(s, { clients, seconds, tag: `p${clients}r${r}` }, helpers),
          );
          results[clients][name].push(run);
          helpers.log(
            `  ${clients} clients, run ${r + 1} ${name.padEnd(12)} cpu ${run.cpuPct.toFixed(1)}% of a core, ${run.sentPerSec.toFixed(0)} updates/s in, ${run.framesInPerSec.toFixed(0)} frames/s out`,
          );
        } catch (err) {
          results[clients][name].push({ error: String(err?.message ?? err) });
          helpers.log(`  ${clients} clients, run ${r + 1} ${name}: ${err?.message ?? err}`);
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
  const summary = {};
  for (const [clients, perSystem] of Object.entries(results)) {
    const cpu = (name) =>
      median((perSystem[name] ?? []).filter((r) => !r.error).map((r) => r.cpuPct));
    summary[clients] = {};
    for (const name of names) {
      const ok = perSystem[name].filter((r) => !r.error);
      summary[clients][name] = {
        cpuPct: cpu(name),
        framesInPerSec: median(ok.map((r) => r.framesInPerSec)),
      };
      const ratio = (peer) =>
        Number.isFinite(cpu(peer)) && cpu(peer) > 0
          ? `${(cpu(name) / cpu(peer)).toFixed(2)}×`
          : '–';
      lines.push(
        `| ${clients} | ${helpers.label(name)}${ok.length < perSystem[name].length ? ` (${perSystem[name].length - ok.length} failed)` : ''} | ${cpu(name).toFixed(1)} | ${range(ok.map((r) => r.cpuPct))} | ${median(ok.map((r) => r.framesInPerSec)).toFixed(0)} | ${ratio('reference')} | ${ratio('hocuspocus')} |`,
      );
    }
  }
  return {
    title: `presence: one document, ${sizes.join(' and ')} clients each sending a cursor at 1 Hz`,
    kind: 'extras',
    runs: results,
    summary,
    markdown: lines.join('\n'),
  };
}
