/**
 * `stateweave export` and `stateweave import`: documents as newline-delimited
 * JSON, one document per line, `{"name": "...", "update": "<base64 Yjs update>"}`.
 * The update is the document's whole state (Y.encodeStateAsUpdate), so importing
 * into an empty node gives byte-equal state, and importing into a node that has
 * the document merges like any other update (CRDT: nothing is overwritten).
 *
 * Export reads a running node over HTTP (GET /v1/docs pages, then the binary GET
 * of each), or a stopped node's data directory (`--data`, the LevelDB itself).
 * Progress goes to stderr every second, so stdout stays the data.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import * as Y from 'yjs';
import { CliError, explainFailure } from '../cli-failure.js';
import { createLevelStore } from '../storage/level-store.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const EXPORT_USAGE = `Usage: stateweave export (--url URL | --data DIR) [--prefix P] [--history] [--token T] > docs.ndjson

  --url      a running node, e.g. http://localhost:1234 (needs read on the documents)
  --data     a stopped node's data directory (or a backup), read directly
  --prefix   only documents whose names start with P
  --history  add each document's kept changes: "history": [{cursor, time, writers, update}]
             (import reads the state and ignores them; stateweave backup keeps history whole)
  --token    a token with read (default: STATEWEAVE_TOKEN)
`;

export const IMPORT_USAGE = `Usage: stateweave import --url URL [--token T] < docs.ndjson

  --url      the node to write to, e.g. http://localhost:1234 (needs write)
  --token    a token with write (default: STATEWEAVE_TOKEN)
`;

export interface CliIo {
  readonly stdin: Readable;
  readonly stdout: Writable;
  /** One line of progress or warning (stderr). */
  readonly note: (line: string) => void;
  readonly env: NodeJS.ProcessEnv;
}

/** One kept change of a document, as the change feed gives it. */
interface ExportedChange {
  readonly cursor: string;
  readonly time: string;
  readonly writers: readonly string[];
  readonly update: string;
}

interface ExportedDoc {
  readonly name: string;
  readonly update: string;
  readonly history?: readonly ExportedChange[];
}

/** Bounds a history export per document (pages of the change feed). */
const MAX_HISTORY_PAGES = 100_000;

/** fetch with the node's JSON errors and network failures turned into one sentence. */
export const request = async (url: URL, init: RequestInit, what: string): Promise<Response> => {
  const res = await fetch(url, init).catch((err: unknown) => {
    throw new CliError(explainFailure(err, { url: url.origin }));
  });
  if (res.ok || res.status === 404) return res;
  let detail = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error) detail = `${body.error.code ?? res.status}: ${body.error.message ?? ''}`;
  } catch {
    // not JSON: the status is what we know
  }
  const hint = res.status === 401 ? ' (pass --token or STATEWEAVE_TOKEN)' : '';
  throw new CliError(`${what} refused by the node (${detail})${hint}`);
};

/** Prints "N documents, B bytes" to stderr at most once a second, and once at the end. */
const progress = (io: CliIo, verb: string) => {
  let docs = 0;
  let bytes = 0;
  let last = Date.now();
  return {
    add(size: number) {
      docs++;
      bytes += size;
      if (Date.now() - last >= 1000) {
        last = Date.now();
        io.note(`${verb} ${docs} documents, ${bytes} bytes…`);
      }
    },
    done: () => io.note(`${verb} ${docs} documents, ${bytes} bytes`),
  };
};

const writeLine = (io: CliIo, doc: ExportedDoc): Promise<void> =>
  new Promise((resolve, reject) =>
    io.stdout.write(`${JSON.stringify(doc)}\n`, (err) => (err ? reject(err) : resolve())),
  );

/** A document's kept changes over the change feed (long-poll JSON without waiting). */
const historyFromNode = async (
  url: URL,
  name: string,
  auth: Record<string, string>,
): Promise<ExportedChange[]> => {
  const out: ExportedChange[] = [];
  let since = '0';
  for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
    const feed = new URL(
      `v1/docs/${name.split('/').map(encodeURIComponent).join('/')}/changes`,
      url,
    );
    feed.searchParams.set('since', since);
    feed.searchParams.set('wait', '0');
    const res = await request(
      feed,
      { headers: { ...auth, accept: 'application/json' } },
      `reading the history of ${name}`,
    );
    if (res.status === 404) break;
    const body = (await res.json()) as {
      changes: (ExportedChange & { doc?: string })[];
      cursor: string;
    };
    for (const { cursor, time, writers, update } of body.changes)
      out.push({ cursor, time, writers, update });
    if (body.changes.length === 0 || body.cursor === since) break;
    since = body.cursor;
  }
  return out;
};

const exportFromNode = async (
  url: URL,
  prefix: string,
  token: string | undefined,
  io: CliIo,
  withHistory = false,
) => {
  const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const count = progress(io, 'exported');
  let cursor: string | undefined;
  do {
    const page = new URL('v1/docs', url);
    page.searchParams.set('prefix', prefix);
    page.searchParams.set('limit', '500');
    if (cursor !== undefined) page.searchParams.set('cursor', cursor);
    const res = await request(page, { headers: auth }, 'listing documents');
    const { docs, next } = (await res.json()) as { docs: { name: string }[]; next: string | null };
    for (const { name } of docs) {
      const docUrl = new URL(`v1/docs/${name.split('/').map(encodeURIComponent).join('/')}`, url);
      const got = await request(
        docUrl,
        { headers: { ...auth, accept: 'application/octet-stream' } },
        `reading ${name}`,
      );
      if (got.status === 404) {
        io.note(`skipped ${name}: deleted or emptied while exporting`);
        continue;
      }
      const bytes = new Uint8Array(await got.arrayBuffer());
      await writeLine(io, {
        name,
        update: Buffer.from(bytes).toString('base64'),
        ...(withHistory ? { history: await historyFromNode(url, name, auth) } : {}),
      });
      count.add(bytes.byteLength);
    }
    cursor = next ?? undefined;
  } while (cursor !== undefined);
  count.done();
};

const exportFromData = async (dir: string, prefix: string, io: CliIo, withHistory = false) => {
  const store = await createLevelStore(dir).catch((err: unknown) => {
    throw new CliError(explainFailure(err, { dataDir: dir }));
  });
  const count = progress(io, 'exported');
  try {
    for await (const name of store.list()) {
      if (!name.startsWith(prefix)) continue;
      const { updates } = await store.load(name);
      const merged = Y.mergeUpdates(updates.map((u) => new Uint8Array(u)));
      const history: ExportedChange[] = [];
      for (let after = 0, page = 0; withHistory && page < MAX_HISTORY_PAGES; page++) {
        const { changes } = await store.readChanges({ doc: name, afterSeq: after, limit: 1000 });
        for (const c of changes)
          history.push({
            cursor: String(c.seq),
            time: new Date(c.time).toISOString(),
            writers: c.writers,
            update: Buffer.from(c.update).toString('base64'),
          });
        if (changes.length < 1000) break;
        after = changes.at(-1)!.seq;
      }
      await writeLine(io, {
        name,
        update: Buffer.from(merged).toString('base64'),
        ...(withHistory ? { history } : {}),
      });
      count.add(merged.byteLength);
    }
  } finally {
    await store.close();
  }
  count.done();
};

export const exportDocs = async (args: string[], io: CliIo): Promise<void> => {
  const { values } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        data: { type: 'string' },
        prefix: { type: 'string' },
        history: { type: 'boolean' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    EXPORT_USAGE,
  );
  if (values.help) return void io.stdout.write(EXPORT_USAGE);
  if ((values.url === undefined) === (values.data === undefined))
    throw usageError('give exactly one of --url and --data', EXPORT_USAGE);
  const prefix = values.prefix ?? '';
  const withHistory = values.history ?? false;
  if (values.data !== undefined) return exportFromData(values.data, prefix, io, withHistory);
  return exportFromNode(
    parseNodeUrl(values.url!),
    prefix,
    values.token ?? io.env.STATEWEAVE_TOKEN,
    io,
    withHistory,
  );
};

export const importDocs = async (args: string[], io: CliIo): Promise<void> => {
  const { values } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    IMPORT_USAGE,
  );
  if (values.help) return void io.stdout.write(IMPORT_USAGE);
  if (values.url === undefined) throw usageError('--url is required', IMPORT_USAGE);
  const url = parseNodeUrl(values.url);
  const token = values.token ?? io.env.STATEWEAVE_TOKEN;
  const count = progress(io, 'imported');
  let lineNo = 0;
  for await (const line of createInterface({ input: io.stdin, crlfDelay: Infinity })) {
    lineNo++;
    if (line.trim() === '') continue;
    let doc: ExportedDoc;
    try {
      doc = JSON.parse(line) as ExportedDoc;
      if (typeof doc.name !== 'string' || typeof doc.update !== 'string') throw new Error('');
    } catch {
      throw new CliError(
        `line ${lineNo} is not {"name": string, "update": base64} (the format stateweave export writes)`,
      );
    }
    const bytes = Buffer.from(doc.update, 'base64');
    const docUrl = new URL(
      `v1/docs/${doc.name.split('/').map(encodeURIComponent).join('/')}/updates`,
      url,
    );
    const res = await request(
      docUrl,
      {
        method: 'POST',
        headers: {
          'content-type': 'application/octet-stream',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
        body: bytes,
      },
      `writing ${doc.name} (line ${lineNo})`,
    );
    if (!res.ok)
      throw new CliError(`writing ${doc.name}: the node has no such route (is --url a node?)`);
    count.add(bytes.byteLength);
  }
  count.done();
};
