/**
 * The frame decoder returns a message or throws ProtocolError, for any bytes; document
 * names are accepted only when they are safe. Property tests with fast-check over fixed
 * seeds (STATEWEAVE_FUZZ_SEED=<seed> replays a failure), in a watched worker.
 */
import { describe, it } from 'node:test';
import { runSuite } from './fuzz/in-process.js';

describe('fuzz: frame decoder', () => {
  it('returns a message or throws ProtocolError for any bytes, quickly, reading only inside the frame', async (t) => {
    await runSuite(t, 'frames', 0xf4a3e, 6000);
  });
});

describe('fuzz: document names', () => {
  it('accepts a name unchanged only when it is safe, else throws INVALID_DOC_NAME', async (t) => {
    await runSuite(t, 'names', 0x4a3e5, 6000);
  });
});
