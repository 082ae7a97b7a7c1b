/**
 * `stateweave deploy DIR --url URL [--token T]`: compiles every function module
 * of DIR locally (esbuild, imports inlined) and uploads the bundles to a running
 * node's `POST /v1/functions` (admin right). Prints the deployed name@version list,
 * then, in a cluster, which peers have the deployment and which will pull it
 * when they are back.
 */
import { stat } from 'node:fs/promises';
import { CliError, explainFailure } from '../cli-failure.js';
import { parseNodeUrl } from '../cli/node-url.js';
import { parseCommand, usageError } from '../cli/parse-command.js';
import { compileDir } from './compile.js';

export const DEPLOY_USAGE = `Usage: stateweave deploy DIR --url URL [--token T]

  DIR       directory of function modules (*.ts, *.js), one bundle per file
  --url     the node, e.g. http://localhost:1234
  --token   an admin token (default: STATEWEAVE_TOKEN)
`;

const checkDir = async (dir: string): Promise<void> => {
  const info = await stat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (info === undefined) throw new CliError(`${dir}: no such directory of function modules`);
  if (!info.isDirectory())
    throw new CliError(`${dir} is a file: pass the directory that holds the function modules`);
};

/** The node's JSON error as one sentence, with what to do for the usual refusals. */
const refusal = (status: number, body: string): string => {
  let code = `HTTP ${status}`;
  let message = body.slice(0, 300);
  try {
    const parsed = JSON.parse(body) as { error?: { code?: string; message?: string } };
    if (parsed.error?.code !== undefined) code = parsed.error.code;
    if (parsed.error?.message !== undefined) message = parsed.error.message;
  } catch {
    // not JSON (a proxy's page, say): its first bytes are the best we have
  }
  const hint =
    status === 401
      ? ': pass an admin token with --token or STATEWEAVE_TOKEN (stateweave token --rights admin)'
      : status === 403
        ? ': the token needs the admin right on every document the functions use'
        : '';
  return `the node refused the deployment (${code}): ${message}${hint}`;
};

export const deploy = async (
  args: string[],
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
): Promise<void> => {
  const parsed = parseCommand(
    {
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    },
    DEPLOY_USAGE,
  );
  if (parsed.values.help) return print(DEPLOY_USAGE);
  const [dir, ...extra] = parsed.positionals;
  const url = parsed.values.url;
  if (dir === undefined || extra.length > 0 || url === undefined)
    throw usageError('DIR and --url are required', DEPLOY_USAGE);
  const base = parseNodeUrl(url);
  const token = parsed.values.token ?? env.STATEWEAVE_TOKEN;
  await checkDir(dir);
  const bundles = await compileDir(dir);
  if (bundles.length === 0) throw new CliError(`${dir} has no *.ts or *.js modules to deploy`);
  const res = await fetch(new URL('v1/functions', base), {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ bundles }),
  }).catch((err: unknown) => {
    throw new CliError(explainFailure(err, { url: base.origin }));
  });
  const text = await res.text();
  if (!res.ok) throw new CliError(refusal(res.status, text));
  const answer = JSON.parse(text) as DeployAnswer;
  for (const fn of answer.functions)
    print(`${fn.name}@${fn.version} (${fn.kind}, ${fn.consistency})`);
  for (const line of replicationLines(answer)) print(line);
};

interface DeployAnswer {
  functions: Array<{ name: string; version: string; kind: string; consistency: string }>;
  deployment?: { id: string; counter: number; origin: string };
  replicatedTo?: string[];
  pending?: Array<{ node: string; reason: string }>;
}

/** What the node said about replication (absent from older nodes' answers). */
const replicationLines = (answer: DeployAnswer): string[] => {
  if (!answer.deployment) return [];
  const lines = [
    `deployment ${answer.deployment.id} (#${answer.deployment.counter}) on ${answer.deployment.origin}`,
  ];
  const to = answer.replicatedTo ?? [];
  const pending = answer.pending ?? [];
  if (to.length > 0) lines.push(`replicated to ${to.join(', ')}`);
  for (const p of pending)
    lines.push(`pending ${p.node}: ${p.reason}; it pulls this deployment when its link is back`);
  return lines;
};
