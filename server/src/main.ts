#!/usr/bin/env node
/**
 * The `stateweave` command. The only module that reads argv and the environment.
 */
import { parseServeConfig, serveUsage, UsageError } from './config.js';
import { createLogger } from './log.js';
import { createServer } from './server.js';

const USAGE = `Usage: stateweave <command> [flags]

Commands:
  serve    run a node (stateweave serve --help for its flags)
`;

const serve = async (args: string[]): Promise<void> => {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(serveUsage());
    return;
  }
  const { logLevel, ...options } = parseServeConfig(args, process.env);
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
  if (err instanceof UsageError) {
    console.error(`${err.message}\n\n${serveUsage()}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
