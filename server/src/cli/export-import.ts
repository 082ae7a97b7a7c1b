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
import { parseArgs } from 'node:util';
import * as Y from 'yjs';
import { CliError, explainFailure } from '../cli-failure.js';
import { createLevelStore } from '../storage/level-store.js';
import { parseNodeUrl } from './node-url.js';

export const EXPORT_USAGE = `Usage: stateweave export (--url URL | --data DIR) [--prefix P] [--token T] > docs.ndjson

  --url      a running node, e.g. http://localhost:1234 (needs read on the documents)
  --data     a stopped node's data directory, read directly
  --prefix   only documents whose names start with P
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

interface ExportedDoc {
  readonly name: string;
  readonly update: string;
}

const usage = (message: string, text: string): CliError => new CliError(`${message}\n\n${text}`, 2);

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

const exportFromNode = async (url: URL, prefix: string, token: string | undefined, io: CliIo) => {
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
      await writeLine(io, { name, update: Buffer.from(bytes).toString('base64') });
      count.add(bytes.byteLength);
    }
    cursor = next ?? undefined;
  } while (cursor !== undefined);
  count.done();
};

const exportFromData = async (dir: string, prefix: string, io: CliIo) => {
  const store = await createLevelStore(dir).catch((err: unknown) => {
    throw new CliError(explainFailure(err, { dataDir: dir }));
  });
  const count = progress(io, 'exported');
  try {
    for await (const name of store.list()) {
      if (!name.startsWith(prefix)) continue;
      const { updates } = await store.load(name);
      const merged = Y.mergeUpdates(updates.map((u) => new Uint8Array(u)));
      await writeLine(io, { name, update: Buffer.from(merged).toString('base64') });
      count.add(merged.byteLength);
    }
  } finally {
    await store.close();
  }
  count.done();
};

export const exportDocs = async (args: string[], io: CliIo): Promise<void> => {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        data: { type: 'string' },
        prefix: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw usage((err as Error).message, EXPORT_USAGE);
  }
  if (values.help) return void io.stdout.write(EXPORT_USAGE);
  if ((values.url === undefined) === (values.data === undefined))
    throw usage('give exactly one of --url and --data', EXPORT_USAGE);
  const prefix = values.prefix ?? '';
  if (values.data !== undefined) return exportFromData(values.data, prefix, io);
  return exportFromNode(
    parseNodeUrl(values.url!),
    prefix,
    values.token ?? io.env.STATEWEAVE_TOKEN,
    io,
  );
};

export const importDocs = async (args: string[], io: CliIo): Promise<void> => {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw usage((err as Error).message, IMPORT_USAGE);
  }
  if (values.help) return void io.stdout.write(IMPORT_USAGE);
  if (values.url === undefined) throw usage('--url is required', IMPORT_USAGE);
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
