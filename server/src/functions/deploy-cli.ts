/**
 * `stateweave deploy DIR --url URL [--token T]`: compiles every function module
 * of DIR locally (esbuild, imports inlined) and uploads the bundles to a running
 * node's `POST /v1/functions` (admin right). Prints the deployed name@version list,
 * then, in a cluster, which peers have the deployment and which will pull it
 * when they are back.
 */
import { parseArgs } from 'node:util';
import { compileDir } from './compile.js';

export const DEPLOY_USAGE = `Usage: stateweave deploy DIR --url URL [--token T]

  DIR       directory of function modules (*.ts, *.js), one bundle per file
  --url     the node, e.g. http://localhost:1234
  --token   an admin token (default: STATEWEAVE_TOKEN)
`;

export class DeployUsageError extends Error {
  override readonly name = 'DeployUsageError';
}

export const deploy = async (
  args: string[],
  env: NodeJS.ProcessEnv,
  print: (line: string) => void,
): Promise<void> => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    throw new DeployUsageError(`${(err as Error).message}\n\n${DEPLOY_USAGE}`);
  }
  if (parsed.values.help) return print(DEPLOY_USAGE);
  const [dir, ...extra] = parsed.positionals;
  const url = parsed.values.url;
  if (dir === undefined || extra.length > 0 || url === undefined)
    throw new DeployUsageError(`DIR and --url are required\n\n${DEPLOY_USAGE}`);
  const token = parsed.values.token ?? env.STATEWEAVE_TOKEN;
  const bundles = await compileDir(dir);
  if (bundles.length === 0) throw new DeployUsageError(`${dir} has no *.ts or *.js modules`);
  const res = await fetch(`${url.replace(/\/+$/, '')}/v1/functions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ bundles }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`deploy failed: HTTP ${res.status}: ${text.slice(0, 500)}`);
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
