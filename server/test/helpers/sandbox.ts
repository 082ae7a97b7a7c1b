/** A sandbox for tests that enter one directly, as the function workers build one. */
import { createSandbox, type Sandbox } from '../../src/functions/sandbox.js';
import { guestScript } from '../../src/functions/guest-script.js';

/** A sandbox of `bundle` as the workers build one (32 MiB, 1 KiB results, 5 s to load). */
export const testSandbox = async (bundle: string): Promise<Sandbox> =>
  createSandbox(
    { code: await guestScript() },
    bundle,
    { memoryMb: 32, maxResultBytes: 1024 },
    5000,
  );

/** The host's `ctx.read` where a test expects none. */
export const noRead = (): Promise<Uint8Array> => Promise.reject(new Error('no ctx.read here'));
