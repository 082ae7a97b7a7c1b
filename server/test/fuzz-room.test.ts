/**
 * Room.applyUpdate / applyAwareness either refuse with a StateweaveError and leave the
 * document (or presence) exactly as it was, or apply; the room stays usable, a fresh
 * client syncs to the same state, and the store holds it too. Fixed seeds
 * (STATEWEAVE_FUZZ_SEED=<seed> replays a failure), in a watched worker.
 */
import { describe, it } from 'node:test';
import { runSuite } from './fuzz/in-process.js';

describe('fuzz: the update path of a Room', () => {
  it('refuses a mutated update with INVALID_UPDATE or DOC_TOO_LARGE and no trace, or applies it as Yjs does', async (t) => {
    await runSuite(t, 'updates-strict', 0x0bd47e, 800);
  });
  it('stays usable after any mutated update: later updates apply, fresh clients and the store agree', async (t) => {
    await runSuite(t, 'updates-usable', 0x05ab1e, 800);
  });
  it('refuses a mutated awareness update with INVALID_FRAME (or FORBIDDEN) and no trace, or applies it', async (t) => {
    await runSuite(t, 'awareness', 0xa3a7e, 1500);
  });
});
