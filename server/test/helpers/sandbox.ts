/** A sandbox for tests that enter one directly (apart from functions.ts: it loads isolated-vm). */
import { createSandbox, type Sandbox } from '../../src/functions/sandbox.js';
import { guestScript } from '../../src/functions/guest-script.js';

/** A sandbox of `bundle` as the workers build one (32 MiB, 1 KiB results, 5 s to load), for tests that enter it directly. */
export const testSandbox = async (bundle: string): Promise<Sandbox> =>
  createSandbox(
    { code: await guestScript() },
    bundle,
    { memoryMb: 32, maxResultBytes: 1024 },
    5000,
  );
