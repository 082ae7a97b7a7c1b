#!/usr/bin/env -S node --no-node-snapshot
/**
 * The `stateweave` command. The only module that reads argv and the environment.
 */
import { readFileSync, statSync } from 'node:fs';
import { isRight, RIGHTS } from './auth/grant.js';
import { MIN_SECRET_BYTES, mintToken } from './auth/tokens.js';
import { parseTtlSeconds } from './auth/token-ttl.js';
import { CliError, explainFailure, wantsStack, type FailureContext } from './cli-failure.js';
import { parseServeConfig, SECRET_ENV, serveUsage, toServerOptions, UsageError } from './config.js';
import { createLogger } from './log.js';
import { SANDBOX_NODE_FLAG, sandboxFlagMissing } from './functions/node-flags.js';
import { createServer } from './server.js';
import { deploy } from './functions/deploy-cli.js';
import { exportDocs, importDocs, type CliIo } from './cli/export-import.js';
import { backupCommand } from './cli/backup-cli.js';
import { restoreCommand, versionsCommand } from './cli/history-cli.js';
import { deleteCommand } from './cli/delete-cli.js';
import { listCommand } from './cli/list-cli.js';
import { parseCommand } from './cli/parse-command.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  }
).version;

/** What `serve` was doing when it failed, for the sentence that explains it. */
let failureContext: FailureContext = {};

const USAGE = `Usage: stateweave <command> [flags]

Commands:
  serve    run a node (stateweave serve --help for its flags)
  token    mint a development token (stateweave token --help)
  deploy   upload function modules to a running node (stateweave deploy --help)
  export   write documents as NDJSON to stdout (stateweave export --help)
  import   read documents as NDJSON from stdin into a node (stateweave import --help)
  backup   copy a running node's store into a new data directory (stateweave backup --help)
  backtest replay a document's history through a deployed and a local function (stateweave backtest --help)
  versions list or name a document's versions (stateweave versions --help)
  restore  bring back a version of a document (stateweave restore --help)
  delete   delete a document on every node (stateweave delete --help)
  list     list stored documents with size and last change (stateweave list --help)

  --version   print the version
  --verbose   print a stack trace with a failure (also: DEBUG=1)
`;

const TOKEN_USAGE = `Usage: stateweave token --docs PATTERNS --rights RIGHTS [--ttl 1h] [--sub NAME] [--secret S]

  --docs     comma list of document names or patterns (team-42/*, or * for all)
  --rights   comma list of ${RIGHTS.join(', ')}
  --ttl      lifetime: seconds, or 30m, 1h, 7d (default 1h)
  --sub      subject, e.g. a user id
  --secret   HS256 secret (default: STATEWEAVE_AUTH_SECRET, as the node reads it)

A --ttl longer than STATEWEAVE_MAX_TOKEN_TTL (the node's --max-token-ttl) is refused.
`;

const token = async (args: string[]): Promise<void> => {
  const { values } = parseCommand(
    {
      args,
      options: {
        docs: { type: 'string' },
        rights: { type: 'string' },
        ttl: { type: 'string' },
        sub: { type: 'string' },
        secret: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    },
    TOKEN_USAGE,
  );
  if (values.help) {
    console.log(TOKEN_USAGE);
    return;
  }
  const secret = values.secret ?? process.env.STATEWEAVE_AUTH_SECRET;
  const list = (raw: string | undefined) =>
    (raw ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const docs = list(values.docs);
  const rights = list(values.rights);
  if (secret === undefined)
    throw new UsageError(
      `no secret: pass --secret or set STATEWEAVE_AUTH_SECRET\n\n${TOKEN_USAGE}`,
    );
  if (Buffer.byteLength(secret) < MIN_SECRET_BYTES)
    throw new UsageError(
      `the secret has ${Buffer.byteLength(secret)} bytes; a node refuses secrets shorter than ${MIN_SECRET_BYTES} (try: openssl rand -base64 32)`,
    );
  if (docs.length === 0 || rights.length === 0)
    throw new UsageError(`--docs and --rights are required\n\n${TOKEN_USAGE}`);
  const bad = rights.find((r) => !isRight(r));
  if (bad !== undefined)
    throw new UsageError(`unknown right ${JSON.stringify(bad)}\n\n${TOKEN_USAGE}`);
  const ttl = parseTtl(values.ttl ?? '1h');
  const maxTtl = process.env.STATEWEAVE_MAX_TOKEN_TTL;
  let maxTtlSeconds: number | undefined;
  if (maxTtl !== undefined) {
    try {
      maxTtlSeconds = parseTtlSeconds(maxTtl);
      const seconds = typeof ttl === 'number' ? ttl : parseTtlSeconds(ttl);
      if (seconds > maxTtlSeconds)
        throw new Error(`--ttl ${ttl} is longer than STATEWEAVE_MAX_TOKEN_TTL (${maxTtl})`);
    } catch (err) {
      throw new UsageError(`${(err as Error).message}\n\n${TOKEN_USAGE}`);
    }
  }
  console.log(
    await mintToken({
      secret,
      docs,
      rights: rights.filter(isRight),
      ttl,
      ...(values.sub !== undefined ? { subject: values.sub } : {}),
      ...(maxTtlSeconds !== undefined ? { maxTtlSeconds } : {}),
    }),
  );
};

/** `--ttl`: whole seconds, or a count of s/m/h/d; never zero or negative. */
const parseTtl = (raw: string): number | string => {
  const match = /^(\d+)\s*([smhd]?)$/.exec(raw.trim());
  if (match === null || Number(match[1]) <= 0)
    throw new UsageError(
      `--ttl ${JSON.stringify(raw)}: expected a positive lifetime such as 3600, 30m, 1h or 7d`,
    );
  return match[2] === '' ? Number(match[1]) : `${match[1]}${match[2]}`;
};

/** `--static` and `--functions` must name directories: a typo should not start a blank node. */
const requireDir = (flag: string, dir: string | undefined): void => {
  if (dir === undefined) return;
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`--${flag} ${dir}: no such directory`);
};

const serve = async (args: string[]): Promise<void> => {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(serveUsage());
    return;
  }
  const { logLevel, ...options } = toServerOptions(parseServeConfig(args, process.env), (path) =>
    readFileSync(path, 'utf8'),
  );
  requireDir('static', options.staticDir);
  requireDir('functions', options.functionsDir);
  failureContext = {
    ...(options.port !== undefined ? { port: options.port } : {}),
    ...(options.host !== undefined ? { host: options.host } : {}),
    ...(options.dataDir !== undefined ? { dataDir: options.dataDir } : {}),
  };
  // Read once: what runs later in this process (a dependency, a dump) finds no secret in env.
  // The kernel's copy of the start environment (/proc/self/environ) stays: prefer the files.
  for (const name of SECRET_ENV) delete process.env[name];
  const logger = createLogger(logLevel);
  if (sandboxFlagMissing())
    logger.warn(
      `node was started without ${SANDBOX_NODE_FLAG}: on Node 20 and later the function sandbox (isolated-vm) can crash the process; start it as node ${SANDBOX_NODE_FLAG} …/main.js or use the stateweave command`,
    );
  const server = createServer({ ...options, logger });
  process.on('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting');
    process.exit(1);
  });
  process.on('unhandledRejection', (err) => {
    logger.fatal({ err }, 'unhandled rejection; exiting');
    process.exit(1);
  });
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting without waiting');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    server.close().then(
      ({ unsaved }) => process.exit(unsaved.length === 0 ? 0 : 1),
      (err: unknown) => {
        logger.fatal({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    const { port } = await server.listen();
    // One plain line for the person who typed `npm start`; the JSON log is for machines.
    if (options.staticDir !== undefined) console.log(`open http://localhost:${port}/`);
  } catch (err) {
    logger.fatal({ err }, 'could not start');
    console.error(`stateweave: ${explainFailure(err, failureContext)}`);
    process.exit(1);
  }
};

const cliIo = (): CliIo => ({
  stdin: process.stdin,
  stdout: process.stdout,
  note: (line) => console.error(line),
  env: process.env,
});

const main = async (): Promise<void> => {
  const [command, ...args] = process.argv.slice(2).filter((a) => a !== '--verbose');
  switch (command) {
    case 'serve':
      return serve(args);
    case 'token':
      return token(args);
    case 'deploy':
      return deploy(args, process.env, (line) => console.log(line));
    case 'export':
      return exportDocs(args, cliIo());
    case 'import':
      return importDocs(args, cliIo());
    case 'backup':
      return backupCommand(args, cliIo());
    case 'backtest':
      // Loaded on demand: it brings the sandbox (isolated-vm, a native addon) into
      // this process, which no other command needs (`--version` in a fresh clone
      // runs before any install script built it).
      return (await import('./cli/backtest-cli.js')).backtestCommand(args, cliIo());
    case 'versions':
      return versionsCommand(args, cliIo());
    case 'restore':
      return restoreCommand(args, cliIo());
    case 'delete':
      return deleteCommand(args, cliIo());
    case 'list':
      return listCommand(args, cliIo());
    case '--version':
    case 'version':
      console.log(VERSION);
      return;
    case undefined:
    case 'help':
    case '--help':
      console.log(USAGE);
      return;
    default:
      console.error(`unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      process.exit(2);
  }
};

main().catch((err: unknown) => {
  if (wantsStack(process.argv, process.env)) console.error(err);
  const sentence = explainFailure(err, failureContext);
  const help =
    err instanceof UsageError && !sentence.includes('Usage:')
      ? `\n(stateweave ${process.argv[2] ?? ''} --help lists the flags)`
      : '';
  console.error(`stateweave: ${sentence}${help}`);
  process.exit(err instanceof CliError ? err.exitCode : 1);
});
