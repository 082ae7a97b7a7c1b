/**
 * isolated-vm on Node 20 and later needs V8's startup snapshot off: isolates
 * built from different snapshots in one process crash it (SIGSEGV; isolated-vm's
 * README and laverdet/isolated-vm#420). Seen here as a test process and a node
 * dying at random, mostly while workers start. Every process that runs functions
 * must be started as `node --no-node-snapshot …`; the `stateweave` command and
 * the npm scripts do so.
 */
export const SANDBOX_NODE_FLAG = '--no-node-snapshot';

/** True when this process was started without the flag (on the command line or in NODE_OPTIONS). */
export const sandboxFlagMissing = (): boolean =>
  !process.execArgv.includes(SANDBOX_NODE_FLAG) &&
  !(process.env.NODE_OPTIONS ?? '').split(/\s+/).includes(SANDBOX_NODE_FLAG);
