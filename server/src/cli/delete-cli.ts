/**
 * `stateweave delete`: deletes a document on every node of the cluster, over
 * the node's `DELETE /v1/docs/:name` (docs/cluster.md, "Deleting a document").
 */
import { CliError } from '../cli-failure.js';
import { request, type CliIo } from './export-import.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const DELETE_USAGE = `Usage: stateweave delete NAME --url URL [--token T]

  Deletes the document on every node of the cluster: its clients are closed with
  4410 DOC_DELETED, and nodes that are down learn it when they are back. Prints
  the nodes that stored the deletion and those still pending.

  --url      any node, e.g. http://localhost:1234 (needs the admin right)
  --token    a token (default: STATEWEAVE_TOKEN)
`;

interface Report {
  readonly replicatedTo?: readonly string[];
  readonly pending?: ReadonlyArray<{ node: string; reason: string }>;
}

export const deleteCommand = async (args: string[], io: CliIo): Promise<void> => {
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
    DELETE_USAGE,
  );
  if (values.help) return void io.stdout.write(DELETE_USAGE);
  const [name] = positionals;
  if (name === undefined || positionals.length > 1 || values.url === undefined)
    throw usageError('give one document NAME and --url', DELETE_USAGE);
  const token = values.token ?? io.env.STATEWEAVE_TOKEN;
  const url = new URL(
    `v1/docs/${name.split('/').map(encodeURIComponent).join('/')}`,
    parseNodeUrl(values.url),
  );
  const res = await request(
    url,
    {
      method: 'DELETE',
      headers: {
        accept: 'application/json',
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    },
    `deleting ${name}`,
  );
  if (!res.ok) throw new CliError(`deleting ${name}: HTTP ${res.status}`);
  const report = (await res.json()) as Report;
  const pending = report.pending ?? [];
  io.note(
    `deleted ${name}` +
      (report.replicatedTo?.length ? `; also on ${report.replicatedTo.join(', ')}` : '') +
      (pending.length
        ? `; pending (told when back): ${pending.map((p) => `${p.node} (${p.reason})`).join(', ')}`
        : ''),
  );
};
