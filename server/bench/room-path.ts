#!/usr/bin/env node
/**
 * `node server/dist/bench/room-path.js`: the CPU of one edit through the room path
 * alone (`Room.applyUpdate` → the turn's transaction → frame, fan-out, store), no
 * sockets. BENCH_ROOM_DOCS (100) rooms with two subscribers each; every turn, one
 * light-client style edit (`map("e").set(key, n)` by a fresh Yjs client per room)
 * per room; BENCH_ROOM_TURNS (1,500) turns after 200 of warm-up. BENCH_ROOM_STORE:
 * `memory` (default) or `level` (LevelDB in a temporary directory, 4 ms commit
 * window, as the node runs). CPU is the process's per edit, the authors' own Y.Docs
 * included (they are the same in every build): compare builds by running each
 * build's copy alternately, pinned to one core (`taskset -c 1`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as Y from 'yjs';
import { nextConnectionId } from '../src/connection-id.js';
import { validateDocName } from '../src/doc-name.js';
import { Room } from '../src/hub/room.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { createLevelStore } from '../src/storage/level-store.js';
import { createMemoryStore } from '../src/storage/memory-store.js';
import type { Store } from '../src/storage/store.js';

const env = process.env;
const DOCS = Number(env.BENCH_ROOM_DOCS ?? 100);
const TURNS = Number(env.BENCH_ROOM_TURNS ?? 1500);
const STORE = env.BENCH_ROOM_STORE ?? 'memory';

interface Writer {
  readonly room: Room;
  readonly connId: ReturnType<typeof nextConnectionId>;
  readonly author: Y.Doc;
  update: Uint8Array | undefined;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const main = async (): Promise<void> => {
  const dir = STORE === 'level' ? await mkdtemp(join(tmpdir(), 'room-path-')) : undefined;
  const store: Store = dir
    ? await createLevelStore(dir, { commitWindowMs: 4 })
    : await createMemoryStore();
  const options = {
    store,
    logger: createLogger('silent'),
    metrics: createMetrics({ collectDefault: false }),
    maxDocBytes: 1 << 26,
    maxConnectionsPerDoc: 10,
    compactAfterUpdates: 100_000,
  };
  const writers: Writer[] = [];
  for (let i = 0; i < DOCS; i++) {
    const room = new Room(validateDocName(`room-path-${i}`), options);
    await room.load();
    const connId = nextConnectionId();
    room.subscribe({ connId, send: () => undefined });
    room.subscribe({ connId: nextConnectionId(), send: () => undefined });
    const writer: Writer = { room, connId, author: new Y.Doc(), update: undefined };
    writer.author.on('update', (update: Uint8Array) => (writer.update = update));
    writers.push(writer);
  }
  const run = async (turns: number, from: number): Promise<void> => {
    const saved: Array<Promise<void>> = [];
    for (let k = from; k < from + turns; k++) {
      for (const w of writers) {
        w.author.getMap('e').set(`e:${k}`, k);
        saved.push(w.room.applyUpdate(w.update!, { kind: 'client', connId: w.connId }));
      }
      await nextTurn();
    }
    await Promise.all(saved);
  };
  await run(200, 0);
  const before = process.cpuUsage();
  await run(TURNS, 200);
  const cpu = process.cpuUsage(before);
  const us = (cpu.user + cpu.system) / (TURNS * DOCS);
  process.stdout.write(`room path, ${STORE} store: ${us.toFixed(1)} µs of CPU per edit\n`);
  for (const w of writers) w.room.destroy();
  await store.close();
  if (dir) await rm(dir, { recursive: true, force: true });
};

await main();
