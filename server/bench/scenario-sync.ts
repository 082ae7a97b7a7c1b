/**
 * Scenario 5: initial sync of a large document. One stock client seeds a Y.Text of
 * single-character edits (random cursor jumps, 10 % deletes, fixed seed; cached in
 * the results folder); each run times a new stock client from its creation to holding
 * the whole text.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as prng from 'lib0/prng';
import * as Y from 'yjs';
import { LARGE_EDITS, OUT_DIR, RUNS, SYSTEM_LIST, log } from './config.js';
import { rotate, withSystems } from './launcher.js';
import type { SystemEndpoint } from './light-client.js';
import { rssKb } from './proc-stats.js';
import { fmt } from './render.js';
import {
  isFailed,
  summarizeSync,
  type RunsBySystem,
  type SyncRun,
  type SyncScenario,
} from './results.js';
import { connectStock, type StockClient } from './stock-client.js';
import { errorMessage, until, within } from './wait.js';

async function buildLargeDoc(edits: number): Promise<Uint8Array> {
  const cache = join(OUT_DIR, `large-doc-${edits}.bin`);
  try {
    return new Uint8Array(await readFile(cache));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // not built yet: build it below
  }
  const doc = new Y.Doc();
  const text = doc.getText('t');
  const generator = prng.create(42);
  const rnd = (): number => prng.real53(generator);
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
  await mkdir(OUT_DIR, { recursive: true });
  await writeFile(cache, update);
  return update;
}

async function syncOnce(
  system: SystemEndpoint,
  room: string,
  expectedLength: number,
  timeoutMs = 60_000,
): Promise<number> {
  const t0 = performance.now();
  const client = connectStock(system, room);
  const text = client.doc.getText('t');
  try {
    const synced = (async () => {
      await client.ready;
      await until(() => text.length === expectedLength, 'large document', timeoutMs);
    })();
    await within(synced, timeoutMs, `${system.name}: sync timed out`);
    return performance.now() - t0;
  } finally {
    client.destroy();
  }
}

export async function runSyncScenario(): Promise<SyncScenario> {
  const title = `initial sync of a large document (${LARGE_EDITS.toLocaleString('en')} single-character edits)`;
  log(`scenario 5: ${title}`);
  const update = await buildLargeDoc(LARGE_EDITS);
  const probe = new Y.Doc();
  Y.applyUpdate(probe, update);
  const expected = probe.getText('t').length;
  probe.destroy();
  const perSystem: RunsBySystem<SyncRun> = Object.fromEntries(SYSTEM_LIST.map((n) => [n, []]));
  await withSystems(SYSTEM_LIST, async (systems) => {
    const seeders: StockClient[] = [];
    for (const s of systems) {
      try {
        const seeder = connectStock(s, 'bench-large');
        seeders.push(seeder);
        await seeder.ready;
        Y.applyUpdate(seeder.doc, update);
        // warm-up sync (discarded) also proves the server holds the document
        await syncOnce(s, 'bench-large', expected);
      } catch (err) {
        perSystem[s.name]?.push({ error: errorMessage(err) });
        log(`  ${s.name} seeding: ${errorMessage(err)}`);
      }
    }
    for (let r = 0; r < RUNS; r++) {
      for (const s of rotate(systems, r)) {
        const runs = perSystem[s.name] ?? [];
        if (runs.some(isFailed)) continue;
        try {
          const ms = await syncOnce(s, 'bench-large', expected);
          runs.push({ ms, rssKb: rssKb(s.pid) });
          log(`  run ${r + 1} ${s.name.padEnd(12)} ${fmt(ms)} ms`);
        } catch (err) {
          runs.push({ error: errorMessage(err) });
        }
      }
    }
    for (const c of seeders) c.destroy();
  });
  return {
    title,
    kind: 'sync',
    updateBytes: update.length,
    textLength: expected,
    runs: perSystem,
    summary: summarizeSync(perSystem),
  };
}
