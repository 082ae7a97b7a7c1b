#!/usr/bin/env node
/**
 * The `stateweave` command. The only module that reads argv and the environment.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { isRight, RIGHTS } from './auth/grant.js';
import { mintToken } from './auth/tokens.js';
import { parseServeConfig, SECRET_ENV, serveUsage, toServerOptions, UsageError } from './config.js';
import { createLogger } from './log.js';
import { createServer } from './server.js';
import { deploy, DeployUsageError } from './functions/deploy-cli.js';

const USAGE = `Usage: stateweave <command> [flags]

Commands:
  serve    run a node (stateweave serve --help for its flags)
  token    mint a development token (stateweave token --help)
  deploy   upload function modules to a running node (stateweave deploy --help)
`;

const TOKEN_USAGE = `Usage: stateweave token --docs PATTERNS --rights RIGHTS [--ttl 1h] [--sub NAME] [--secret S]

  --docs     comma list of document names or patterns (team-42/*, or * for all)
  --rights   comma list of ${RIGHTS.join(', ')}
  --ttl      lifetime: seconds, or 30m, 1h, 7d (default 1h)
  --sub      subject, e.g. a user id
  --secret   HS256 secret (default: STATEWEAVE_AUTH_SECRET, as the node reads it)
`;

const token = async (args: string[]): Promise<void> => {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        docs: { type: 'string' },
        rights: { type: 'string' },
        ttl: { type: 'string' },
        sub: { type: 'string' },
        secret: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${TOKEN_USAGE}`);
  }
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
  if (docs.length === 0 || rights.length === 0)
    throw new UsageError(`--docs and --rights are required\n\n${TOKEN_USAGE}`);
  const bad = rights.find((r) => !isRight(r));
  if (bad !== undefined)
    throw new UsageError(`unknown right ${JSON.stringify(bad)}\n\n${TOKEN_USAGE}`);
  const ttl =
    values.ttl === undefined ? '1h' : /^\d+$/.test(values.ttl) ? Number(values.ttl) : values.ttl;
  console.log(
    await mintToken({
      secret,
      docs,
      rights: rights.filter(isRight),
      ttl,
      ...(values.sub !== undefined ? { subject: values.sub } : {}),
    }),
  );
};

const serve = async (args: string[]): Promise<void> => {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(serveUsage());
    return;
  }
  const { logLevel, ...options } = toServerOptions(parseServeConfig(args, process.env), (path) =>
    readFileSync(path, 'utf8'),
  );
  // Read once: what runs later in this process (a dependency, a dump) finds no secret in env.
  // The kernel's copy of the start environment (/proc/self/environ) stays: prefer the files.
  for (const name of SECRET_ENV) delete process.env[name];
  const logger = createLogger(logLevel);
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
    await server.listen();
  } catch (err) {
    logger.fatal({ err }, 'could not start');
    process.exit(1);
  }
};

const main = async (): Promise<void> => {
  const [command, ...args] = process.argv.slice(2);
  switch (command) {
    case 'serve':
      return serve(args);
    case 'token':
      return token(args);
    case 'deploy':
      return deploy(args, process.env, (line) => console.log(line));
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
  if (err instanceof DeployUsageError) {
    console.error(err.message);
    process.exit(2);
  }
  if (err instanceof UsageError) {
    console.error(
      err.message.includes('Usage:') ? err.message : `${err.message}\n\n${serveUsage()}`,
    );
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
