/**
 * The node under test of the functions bench (functions.ts): `stateweave serve` as
 * its own process, LevelDB in a temporary directory, the fixtures deployed, HS256
 * tokens on (one minted with every right), pinned to core 0 when asked.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { NodeAddress } from './functions-load.js';
import { startOurNode } from './launcher.js';
import { FIXTURES_DIR, MAIN_JS as MAIN } from './paths.js';

// Every client comes from 127.0.0.1: startOurNode raises the node's per-address
// and per-connection limits (OUR_LIMITS, as run.ts does).
const FIXTURES = join(FIXTURES_DIR, 'functions');
const env = process.env;

/** The node under test, with its token. */
export interface FunctionsNode extends NodeAddress {
  pid: number;
  base: string;
  wsUrl: string;
  output(): string;
  stop(): Promise<void>;
}

/** `{ sum, count }` of one of the node's histograms. */
export interface HistogramStats {
  sum: number;
  count: number;
}

/**
 * The node's batch-size histogram (invocations per document batch: worker group
 * and store write) and its groups-per-message histogram (document batches per
 * worker message); undefined without them.
 */
export async function batchStats(
  node: FunctionsNode,
): Promise<{ batch: HistogramStats; groups: HistogramStats | undefined } | undefined> {
  const text = await (
    await fetch(`${node.base}/metrics`).catch(() => undefined)
  )
    ?.text()
    .catch(() => undefined);
  const histogram = (name: string): HistogramStats | undefined => {
    const sum = new RegExp(`^${name}_sum (\\S+)$`, 'm').exec(text ?? '');
    const count = new RegExp(`^${name}_count (\\S+)$`, 'm').exec(text ?? '');
    return sum && count ? { sum: Number(sum[1]), count: Number(count[1]) } : undefined;
  };
  const batch = histogram('stateweave_function_batch_size');
  return batch ? { batch, groups: histogram('stateweave_function_message_groups') } : undefined;
}

export async function startNode({
  pin,
  nodeArgs,
}: {
  pin: boolean;
  nodeArgs: string[];
}): Promise<FunctionsNode> {
  const nodeEnv = { ...env, STATEWEAVE_AUTH_SECRET: randomBytes(32).toString('hex') };
  const minted = spawnSync(
    process.execPath,
    [
      MAIN,
      'token',
      '--docs',
      '*',
      '--rights',
      'read,write,invoke,admin',
      '--ttl',
      '4h',
      '--sub',
      'bench',
    ],
    { env: nodeEnv, encoding: 'utf8' },
  );
  if (minted.status !== 0) throw new Error(`stateweave token failed: ${minted.stderr}`);
  const token = minted.stdout.trim();
  const node = await startOurNode({
    name: 'functions',
    pin,
    nodeArgs,
    env: nodeEnv,
    serveArgs: ['--functions', FIXTURES],
    timeoutMs: 30_000,
    pollMs: 50,
    ready: async (base) => {
      const res = await fetch(`${base}/v1/functions`, {
        headers: { authorization: `Bearer ${token}` },
      }).catch(() => undefined);
      return (
        res?.ok === true &&
        ((await res.json()) as FunctionList).functions.some((f) => f.name === 'chainOut')
      );
    },
  });
  return { ...node, token, wsUrl: `ws://127.0.0.1:${node.port}` };
}

/** The answer of GET and POST /v1/functions. */
export interface FunctionList {
  functions: { name: string; version?: string }[];
}
