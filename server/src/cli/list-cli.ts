/**
 * `stateweave list`: the stored documents of a node with their size and last
 * change, over `GET /v1/docs` a page at a time (docs/history.md, "The document list").
 */
import { CliError } from '../cli-failure.js';
import { request, type CliIo } from './export-import.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const LIST_USAGE = `Usage: stateweave list --url URL [--prefix P] [--json] [--token T]

  Prints the stored documents the token may read, in name order: name, size in
  bytes and the time of the last change (ISO; "-" when unknown).

  --url      any node, e.g. http://localhost:1234
  --prefix   only documents whose names start with P
  --json     one JSON object per line: {"name","bytes","lastChange"}
  --token    a token (default: STATEWEAVE_TOKEN)
`;

interface Page {
  readonly docs: ReadonlyArray<{ name: string; bytes: number; lastChange: string | null }>;
  readonly next: string | null;
}

/** Pages asked for, at most (1000 documents each): a listing ends even if a node misbehaves. */
const MAX_PAGES = 100_000;

export const listCommand = async (args: string[], io: CliIo): Promise<void> => {
  const { values } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        prefix: { type: 'string' },
        json: { type: 'boolean' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    LIST_USAGE,
  );
  if (values.help) return void io.stdout.write(LIST_USAGE);
  if (values.url === undefined) throw usageError('give --url', LIST_USAGE);
  const token = values.token ?? io.env.STATEWEAVE_TOKEN;
  const base = parseNodeUrl(values.url);
  let cursor: string | null = null;
  for (let pages = 0; pages < MAX_PAGES; pages++) {
    const url = new URL('v1/docs', base);
    url.searchParams.set('limit', '1000');
    if (values.prefix) url.searchParams.set('prefix', values.prefix);
    if (cursor !== null) url.searchParams.set('cursor', cursor);
    const res = await request(
      url,
      {
        headers: {
          accept: 'application/json',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
        },
      },
      'listing documents',
    );
    if (!res.ok) throw new CliError(`listing documents: HTTP ${res.status}`);
    const page = (await res.json()) as Page;
    for (const doc of page.docs)
      io.stdout.write(
        values.json
          ? `${JSON.stringify(doc)}\n`
          : `${doc.name}\t${doc.bytes}\t${doc.lastChange ?? '-'}\n`,
      );
    if (page.next === null) return;
    cursor = page.next;
  }
};
