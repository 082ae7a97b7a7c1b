/**
 * `stateweave versions` and `stateweave restore`: a document's history from the
 * command line, over the node's HTTP routes (docs/history.md).
 */
import { CliError } from '../cli-failure.js';
import { request, type CliIo } from './export-import.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const VERSIONS_USAGE = `Usage: stateweave versions NAME --url URL [--limit N] [--json] [--token T]
       stateweave versions NAME --url URL --name LABEL [--token T]

  Lists the document's versions, newest first: id, time, writers, size, name.
  With --name, names the current state instead (named versions outlive retention).

  --url      the node, e.g. http://localhost:1234 (needs read; write for --name)
  --limit    at most N versions (default 20)
  --json     print the node's JSON answer
  --token    a token (default: STATEWEAVE_TOKEN)
`;

export const RESTORE_USAGE = `Usage: stateweave restore NAME VERSION --url URL [--token T]

  Brings back the content of VERSION (a version id, or an ISO time) as a new
  change that every connected client receives; the history keeps what was there.

  --url      the node, e.g. http://localhost:1234 (needs write)
  --token    a token (default: STATEWEAVE_TOKEN)
`;

interface VersionRow {
  readonly id: string;
  readonly time: string;
  readonly writers: readonly string[];
  readonly size: number;
  readonly changes: number;
  readonly name?: string;
}

const docUrl = (base: URL, name: string, rest = ''): URL =>
  new URL(`v1/docs/${name.split('/').map(encodeURIComponent).join('/')}${rest}`, base);

const headersOf = (token: string | undefined): Record<string, string> => ({
  'content-type': 'application/json',
  accept: 'application/json',
  ...(token ? { authorization: `Bearer ${token}` } : {}),
});

const refusal = async (res: Response, what: string): Promise<never> => {
  const body = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
  throw new CliError(`${what}: ${body.error?.message ?? `HTTP ${res.status}`}`);
};

export const versionsCommand = async (args: string[], io: CliIo): Promise<void> => {
  const { values, positionals } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        limit: { type: 'string' },
        json: { type: 'boolean' },
        name: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    },
    VERSIONS_USAGE,
  );
  if (values.help) return void io.stdout.write(VERSIONS_USAGE);
  const [name] = positionals;
  if (name === undefined || positionals.length > 1 || values.url === undefined)
    throw usageError('give one document NAME and --url', VERSIONS_USAGE);
  const base = parseNodeUrl(values.url);
  const headers = headersOf(values.token ?? io.env.STATEWEAVE_TOKEN);
  if (values.name !== undefined) {
    const res = await request(
      docUrl(base, name, '/versions'),
      { method: 'POST', headers, body: JSON.stringify({ name: values.name }) },
      `naming a version of ${name}`,
    );
    if (!res.ok) await refusal(res, name);
    const version = (await res.json()) as VersionRow;
    io.stdout.write(`${version.id}\t${version.time}\t${version.name ?? ''}\n`);
    return;
  }
  const limit = values.limit ?? '20';
  if (!/^\d+$/.test(limit)) throw usageError('--limit: expected a number', VERSIONS_USAGE);
  const url = docUrl(base, name, '/versions');
  url.searchParams.set('limit', limit);
  const res = await request(url, { headers }, `listing the versions of ${name}`);
  if (!res.ok) await refusal(res, name);
  const body = (await res.json()) as { versions: VersionRow[] };
  if (values.json) {
    io.stdout.write(`${JSON.stringify(body)}\n`);
    return;
  }
  for (const v of body.versions)
    io.stdout.write(
      `${v.id}\t${v.time}\t${v.writers.join(',') || '-'}\t${v.size} B\t${v.name ?? `${v.changes} changes`}\n`,
    );
};

export const restoreCommand = async (args: string[], io: CliIo): Promise<void> => {
  const { values, positionals } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    },
    RESTORE_USAGE,
  );
  if (values.help) return void io.stdout.write(RESTORE_USAGE);
  const [name, version] = positionals;
  if (name === undefined || version === undefined || positionals.length > 2 || !values.url)
    throw usageError('give NAME, VERSION and --url', RESTORE_USAGE);
  const res = await request(
    docUrl(parseNodeUrl(values.url), name, '/restore'),
    {
      method: 'POST',
      headers: headersOf(values.token ?? io.env.STATEWEAVE_TOKEN),
      body: JSON.stringify(/^\d+$/.test(version) ? { version } : { at: version }),
    },
    `restoring ${name}`,
  );
  if (!res.ok) await refusal(res, name);
  const { restored, changed } = (await res.json()) as { restored: string; changed: boolean };
  io.note(
    changed
      ? `restored ${name} to version ${restored}`
      : `${name} already has the content of version ${restored}`,
  );
};
