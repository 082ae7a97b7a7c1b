/**
 * `stateweave backtest FUNCTION --doc NAME --since 24h --local FILE`: replays a
 * document's history through the deployed version of a function and a local
 * one, and prints the versions where their outputs differ — a new version is
 * tried on real data before it is deployed. Without --local it prints the
 * deployed version's output at each version (a query at past versions).
 *
 * It runs here, not on the node: the node gives the deployed code (admin
 * right), the versions and the document at each (read right), and the code
 * runs in a sandbox like the node's (functions/replay.ts). Nothing is written;
 * a mutation's output is its result and the document it would have left.
 */
import * as Y from 'yjs';
import { parseTtlSeconds } from '../auth/token-ttl.js';
import { CliError } from '../cli-failure.js';
import { compileFile } from '../functions/compile.js';
import { createReplayer, type ReplayOutcome } from '../functions/replay.js';
import { docToJson } from '../hub/doc-json.js';
import { request, type CliIo } from './export-import.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const BACKTEST_USAGE = `Usage: stateweave backtest FUNCTION --doc NAME --url URL [--local FILE] [--since 24h]
                          [--input JSON] [--limit N] [--json] [--token T]

  Replays the history of document NAME since --since, change by change,
  through the deployed version of FUNCTION and, with --local, through the
  version in FILE; prints each version (the document after a change) where
  their outputs differ, and exits 1 if any do. Without --local, prints the
  deployed version's output at every version (a query at past versions). Runs on this machine in a sandbox like the node's; writes
  nothing (a mutation's output is its result and the document it would leave).

  --doc      the document whose history is replayed (doc(input) must name it)
  --url      the node, e.g. http://localhost:1234
  --local    a function source file (.ts or .js), compiled like stateweave deploy
  --since    how far back: seconds, or 30m, 1h, 7d (default 24h)
  --input    the input of every call, JSON (default {})
  --limit    at most N changes, the newest (default 200)
  --json     one JSON line per version instead of text
  --token    a token with admin (the deployed code) and read (default: STATEWEAVE_TOKEN)
`;

const usage = (message: string): CliError => usageError(message, BACKTEST_USAGE);

interface VersionRow {
  readonly id: string;
  readonly time: string;
}

/** What an output is compared by: the result, and for a write the document it would leave. */
const outputOf = (state: Uint8Array, outcome: ReplayOutcome): unknown => {
  if (outcome.error) return { error: outcome.error.code, message: outcome.error.message };
  const result: unknown = JSON.parse(outcome.result ?? 'null');
  if (outcome.update === null) return { result };
  const doc = new Y.Doc();
  try {
    Y.applyUpdate(doc, state);
    Y.applyUpdate(doc, outcome.update);
    return { result, doc: docToJson(doc) };
  } finally {
    doc.destroy();
  }
};

/** Stable JSON (sorted keys), so equal outputs print and compare equal. */
const stable = (value: unknown): string =>
  JSON.stringify(value, (_k, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(
          Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
        )
      : v,
  );

const docPath = (name: string): string => name.split('/').map(encodeURIComponent).join('/');

export const backtestCommand = async (args: string[], io: CliIo): Promise<void> => {
  const { values, positionals } = parseCommand(
    {
      args,
      allowPositionals: true,
      options: {
        doc: { type: 'string' },
        url: { type: 'string' },
        local: { type: 'string' },
        since: { type: 'string' },
        input: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    BACKTEST_USAGE,
  );
  if (values.help) return void io.stdout.write(BACKTEST_USAGE);
  const [fnName, ...extra] = positionals;
  if (fnName === undefined || extra.length > 0) throw usage('name one FUNCTION');
  if (values.doc === undefined || values.url === undefined)
    throw usage('--doc and --url are required');
  const doc = values.doc;
  let sinceSeconds: number;
  try {
    sinceSeconds = parseTtlSeconds(values.since ?? '24h');
  } catch (err) {
    throw usage(`--since: ${(err as Error).message}`);
  }
  let input: unknown = {};
  if (values.input !== undefined) {
    try {
      input = JSON.parse(values.input);
    } catch {
      throw usage('--input: expected JSON');
    }
  }
  const limit = values.limit === undefined ? 200 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1) throw usage('--limit: expected a positive integer');
  const base = parseNodeUrl(values.url);
  const token = values.token ?? io.env.STATEWEAVE_TOKEN;
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const get = async (path: string, what: string, accept = 'application/json') => {
    const res = await request(new URL(path, base), { headers: { ...headers, accept } }, what);
    if (res.status === 404) {
      const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
      throw new CliError(`${what}: ${body.error?.message ?? 'not found'}`);
    }
    return res;
  };

  const deployed = (await (
    await get(`v1/functions/${encodeURIComponent(fnName)}/code`, `the code of ${fnName}`)
  ).json()) as {
    version: string;
    code: string;
  };
  const local = values.local !== undefined ? await compileFile(values.local) : undefined;

  // Every change in the window (the change feed, oldest first); the newest `limit` are replayed.
  const cutoff = Date.now() - sinceSeconds * 1000;
  let versions: VersionRow[] = [];
  for (let since = '0', pages = 0; pages < 100_000; pages++) {
    const page = `v1/docs/${docPath(doc)}/changes?since=${since}&wait=0`;
    const body = (await (await get(page, `the changes of ${doc}`)).json()) as {
      changes: Array<{ cursor: string; time: string }>;
      cursor: string;
    };
    for (const c of body.changes)
      if (Date.parse(c.time) >= cutoff) versions.push({ id: c.cursor, time: c.time });
    if (versions.length > limit) versions = versions.slice(-limit);
    if (body.changes.length === 0 || body.cursor === since) break;
    since = body.cursor;
  }
  if (versions.length === 0) {
    io.note(`no changes of ${doc} in the last ${values.since ?? '24h'}`);
    return;
  }

  const replayer = createReplayer({ memoryMb: 128, timeoutMs: 5000, maxResultBytes: 1024 * 1024 });
  let differ = 0;
  try {
    for (const [i, version] of versions.entries()) {
      const stateRes = await get(
        `v1/docs/${docPath(doc)}?at=${version.id}`,
        `${doc} at ${version.id}`,
        'application/octet-stream',
      );
      const state = new Uint8Array(await stateRes.arrayBuffer());
      const run = {
        name: fnName,
        input,
        doc,
        state,
        now: Date.parse(version.time),
        // Another document as it was at the same moment.
        read: async (other: string) =>
          new Uint8Array(
            await (
              await get(
                `v1/docs/${docPath(other)}?at=${encodeURIComponent(version.time)}`,
                `${other} at ${version.time}`,
                'application/octet-stream',
              )
            ).arrayBuffer(),
          ),
      };
      const a = outputOf(state, await replayer.run(deployed.code, run));
      const b = local ? outputOf(state, await replayer.run(local.code, run)) : undefined;
      const same = b === undefined || stable(a) === stable(b);
      if (!same) differ++;
      if (values.json)
        io.stdout.write(
          `${JSON.stringify({ version: version.id, time: version.time, deployed: a, ...(local ? { local: b, same } : {}) })}\n`,
        );
      else if (!local) io.stdout.write(`${version.id}  ${version.time}  ${stable(a)}\n`);
      else if (!same)
        io.stdout.write(
          `${version.id}  ${version.time}  differ\n  deployed ${deployed.version}: ${stable(a)}\n  local:    ${stable(b)}\n`,
        );
      if ((i + 1) % 50 === 0) io.note(`backtest: ${i + 1} of ${versions.length} versions…`);
    }
  } finally {
    replayer.close();
  }
  if (!local) return;
  const summary = `${versions.length} versions of ${doc} since ${new Date(cutoff).toISOString()}: ${differ} differ`;
  if (differ > 0) throw new CliError(summary, 1);
  io.note(`${summary} (deployed ${deployed.version} and ${values.local} agree)`);
};
