/**
 * One plain sentence for each way the `stateweave` command can fail: what went
 * wrong and what to do instead. A stack trace helps the engineer who wrote the
 * node, not the user who mistyped a flag, so main.ts prints it only with
 * `--verbose` or `DEBUG` set.
 */

/** A failure whose message is already the sentence to print. */
export class CliError extends Error {
  override readonly name: string = 'CliError';
  constructor(
    message: string,
    /** Process exit code: 2 for a usage mistake, 1 for everything else. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

/** What the command was doing, so a sentence can name the flag to change. */
export interface FailureContext {
  readonly port?: number;
  readonly host?: string;
  readonly dataDir?: string;
  readonly url?: string;
}

interface Coded {
  readonly code?: unknown;
  readonly message?: unknown;
  readonly cause?: unknown;
  readonly hostname?: unknown;
}

/** Every error in a `cause` chain, outermost first (bounded: causes can loop). */
const causes = (err: unknown): Coded[] => {
  const chain: Coded[] = [];
  for (let e = err; typeof e === 'object' && e !== null && chain.length < 8;) {
    chain.push(e as Coded);
    e = (e as Coded).cause;
  }
  return chain;
};

const codeIn = (chain: Coded[], code: string): Coded | undefined =>
  chain.find((e) => e.code === code);

/** The sentence for `err`; its own message when no better one is known. */
export const explainFailure = (err: unknown, context: FailureContext = {}): string => {
  if (err instanceof CliError) return err.message;
  const chain = causes(err);
  const where = context.url ?? 'the node';
  if (codeIn(chain, 'EADDRINUSE')) {
    const port = context.port ?? '?';
    return `port ${port} is already in use (another node, or \`npm start\` running twice?): stop it, or pass --port N (STATEWEAVE_PORT)`;
  }
  if (codeIn(chain, 'EACCES') && context.port !== undefined)
    return `no permission to listen on port ${context.port}: use a port above 1023 with --port N`;
  if (codeIn(chain, 'EADDRNOTAVAIL'))
    return `cannot listen on ${context.host ?? 'that address'}: it is not an address of this machine; pass --host 0.0.0.0 or one of its addresses`;
  if (chain.some((e) => /LOCK: Resource temporarily unavailable|LEVEL_LOCKED/.test(text(e))))
    return `the data directory ${context.dataDir ?? ''} is in use by another running node (LevelDB allows one process): stop that node, or pass --data DIR for this one`;
  if (codeIn(chain, 'ECONNREFUSED'))
    return `cannot reach ${where}: connection refused. Is a node running there (stateweave serve)?`;
  const notFound = codeIn(chain, 'ENOTFOUND');
  if (notFound)
    return `cannot reach ${where}: host ${String(notFound.hostname ?? '')} not found; check --url`;
  if (codeIn(chain, 'ETIMEDOUT') || codeIn(chain, 'UND_ERR_CONNECT_TIMEOUT'))
    return `cannot reach ${where}: the connection timed out; check --url and the network`;
  const message = text(chain[0] ?? {});
  return message === '' ? String(err) : message;
};

const text = (e: Coded): string => (typeof e.message === 'string' ? e.message : '');

/** Whether `--verbose` or DEBUG asks for stacks. */
export const wantsStack = (argv: readonly string[], env: NodeJS.ProcessEnv): boolean =>
  argv.includes('--verbose') || (env.DEBUG !== undefined && env.DEBUG !== '');
