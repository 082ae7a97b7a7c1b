/**
 * Scenarios 1, 2, 3 and 7 (steady fan-out load) and 4 (saturation: the per-client
 * rate raised step by step until p99 > 100 ms, a loss, or < 90 % delivered). Each
 * system gets a discarded warm-up, then the runs alternate between systems.
 */
import { RUNS, SAT, SECONDS, SYSTEM_LIST, log } from './config.js';
import { fanOutRun } from './fanout.js';
import { rotate, withSystem, withSystems } from './launcher.js';
import { fmt } from './render.js';
import {
  summarizeFanout,
  summarizeSaturation,
  type FanOutRun,
  type FanOutScenario,
  type RunsBySystem,
  type SaturationRun,
  type SaturationScenario,
  type SaturationStep,
} from './results.js';
import { errorMessage } from './wait.js';

export interface LoadSpec {
  title: string;
  docs: number;
  perDoc: number;
  /** edits/s per client */
  rate: number;
}

export const LOAD: Record<number, LoadSpec> = {
  1: { title: 'collaboration: 10 docs × 5 clients × 10 edits/s', docs: 10, perDoc: 5, rate: 10 },
  2: { title: 'hot document: 1 doc × 50 clients × 2 edits/s', docs: 1, perDoc: 50, rate: 2 },
  3: { title: 'many documents: 100 docs × 2 clients × 20 edits/s', docs: 100, perDoc: 2, rate: 20 },
  7: {
    title: 'durability cost: scenario 1 with fsync on every batch',
    docs: 10,
    perDoc: 5,
    rate: 10,
  },
  // Issue 18: a large room, where every edit is a frame to 499 others (the same edits/s as scenario 2).
  13: { title: 'large room: 1 doc × 500 clients × 0.2 edits/s', docs: 1, perDoc: 500, rate: 0.2 },
};

const emptyRuns = <R extends object>(names: readonly string[]): RunsBySystem<R> =>
  Object.fromEntries(names.map((n) => [n, []]));

export async function runFanOutScenario(id: number, spec: LoadSpec): Promise<FanOutScenario> {
  const names = id === 7 ? ['ours-memory', 'ours-leveldb', 'ours-fsync'] : SYSTEM_LIST;
  log(`scenario ${id}: ${spec.title}`);
  const perSystem = emptyRuns<FanOutRun>(names);
  await withSystems(names, async (systems) => {
    // warm-up (JIT, first allocations), discarded
    for (const s of systems)
      await fanOutRun(s, { ...spec, seconds: 1, tag: `s${id}warm` }).catch(() => undefined);
    for (let r = 0; r < RUNS; r++) {
      for (const s of rotate(systems, r)) {
        const runs = perSystem[s.name] ?? [];
        try {
          const run = await fanOutRun(s, { ...spec, seconds: SECONDS, tag: `s${id}r${r}` });
          runs.push(run);
          log(
            `  run ${r + 1} ${s.name.padEnd(12)} p50 ${fmt(run.p50)} ms  p99 ${fmt(run.p99)} ms  ${fmt(run.achievedPerSec, 0)} edits/s  lost ${run.lostEdits}  rss ${fmt(run.rssKb / 1024, 0)} MB  cpu ${fmt(run.cpuMsPer1k, 0)} ms/1k  steal ${fmt(run.stealMs, 0)} ms`,
          );
        } catch (err) {
          runs.push({ error: errorMessage(err) });
          log(`  run ${r + 1} ${s.name}: ${errorMessage(err)}`);
        }
      }
    }
  });
  return {
    title: spec.title,
    kind: 'fanout',
    load: { docs: spec.docs, perDoc: spec.perDoc, rate: spec.rate },
    runs: perSystem,
    summary: summarizeFanout(perSystem),
  };
}

export async function runSaturationScenario(): Promise<SaturationScenario> {
  const title = `saturation: ${SAT.docs} docs × ${SAT.perDoc} clients, per-client rate raised ${SAT.rates.join(' → ')}/s, ${SAT.seconds} s a step, until p99 > 100 ms or an edit is lost`;
  log(`scenario 4: ${title}`);
  const perSystem = emptyRuns<SaturationRun>(SYSTEM_LIST);
  const load = { docs: SAT.docs, perDoc: SAT.perDoc };
  for (let r = 0; r < SAT.runs; r++) {
    for (const name of rotate(SYSTEM_LIST, r)) {
      const runs = perSystem[name] ?? [];
      try {
        const run = await withSystem(name, async (s): Promise<SaturationRun> => {
          await fanOutRun(s, { ...load, rate: 10, seconds: 1, tag: `s4r${r}warm` }); // warm-up, discarded
          const steps: SaturationStep[] = [];
          let best = 0;
          for (const rate of SAT.rates) {
            const step = await fanOutRun(s, {
              ...load,
              rate,
              seconds: SAT.seconds,
              tag: `s4r${r}x${rate}`,
            });
            steps.push({ rate, ...step });
            const held =
              step.p99 <= 100 &&
              step.lostEdits === 0 &&
              step.achievedPerSec >= 0.9 * step.offeredPerSec;
            log(
              `  run ${r + 1} ${name.padEnd(12)} ${rate}/s per client: ${fmt(step.achievedPerSec, 0)} edits/s, p99 ${fmt(step.p99)} ms, lost ${step.lostEdits}, cpu ${fmt(step.cpuMsPer1k, 0)} ms/1k${held ? '' : ' — saturated'}`,
            );
            if (!held) break;
            best = step.achievedPerSec;
          }
          return { best, steps };
        });
        runs.push(run);
      } catch (err) {
        runs.push({ error: errorMessage(err) });
        log(`  run ${r + 1} ${name}: ${errorMessage(err)}`);
      }
    }
  }
  return { title, kind: 'saturation', runs: perSystem, summary: summarizeSaturation(perSystem) };
}
