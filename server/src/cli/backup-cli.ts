/**
 * `stateweave backup --url URL --out DIR`: an online backup of a running node.
 * The node streams its store as of one instant (GET /v1/backup, admin right);
 * this writes it into a new data directory, which `stateweave serve --data DIR`
 * starts from with exactly that content (history, named versions, function and
 * webhook records included). Progress on stderr.
 */
import { CliError } from '../cli-failure.js';
import { decodeBackup } from '../storage/backup-format.js';
import { writeBackupDir } from '../storage/backup-dir.js';
import { request, type CliIo } from './export-import.js';
import { parseNodeUrl } from './node-url.js';
import { parseCommand, usageError } from './parse-command.js';

export const BACKUP_USAGE = `Usage: stateweave backup --url URL --out DIR [--token T]

  Copies a running node's store, as of one instant, into the new directory DIR
  while the node keeps serving. Start a node from it with
  stateweave serve --data DIR (or read it with stateweave export --data DIR).

  --url      the node, e.g. http://localhost:1234
  --out      a directory that does not exist yet
  --token    a token with the admin right (default: STATEWEAVE_TOKEN)
`;

export const backupCommand = async (args: string[], io: CliIo): Promise<void> => {
  const { values } = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        out: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    BACKUP_USAGE,
  );
  if (values.help) return void io.stdout.write(BACKUP_USAGE);
  if (values.url === undefined || values.out === undefined)
    throw usageError('--url and --out are required', BACKUP_USAGE);
  const token = values.token ?? io.env.STATEWEAVE_TOKEN;
  const res = await request(
    new URL('v1/backup', parseNodeUrl(values.url)),
    { headers: token ? { authorization: `Bearer ${token}` } : {} },
    'the backup',
  );
  if (!res.ok || res.body === null)
    throw new CliError('the backup: the node has no such route (is --url a node?)');
  const started = Date.now();
  let last = started;
  const written = await writeBackupDir(
    values.out,
    decodeBackup(res.body as AsyncIterable<Uint8Array>),
    ({ entries, bytes }) => {
      if (Date.now() - last < 1000) return;
      last = Date.now();
      io.note(`backup: ${entries} entries, ${bytes} bytes…`);
    },
  ).catch((err: unknown) => {
    throw new CliError(`backup into ${values.out}: ${(err as Error).message}`);
  });
  io.note(
    `backup: ${written.entries} entries, ${written.bytes} bytes in ${Date.now() - started} ms → ${values.out}`,
  );
};
