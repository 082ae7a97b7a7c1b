/**
 * The flags of a `stateweave` command: `node:util` parseArgs, with each mistake
 * it reports (an unknown flag, a flag without its value, a stray argument)
 * turned into the same usage error every command prints.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { CliError } from '../cli-failure.js';

/** A usage mistake: the sentence, then the command's usage text; exit code 2. */
export const usageError = (message: string, usage: string): CliError =>
  new CliError(`${message}\n\n${usage}`, 2);

/** parseArgs (strict unless `config` says otherwise); a mistake in `args` is a {@link usageError}. */
export const parseCommand = <T extends ParseArgsConfig>(
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T>> => {
  try {
    return parseArgs(config);
  } catch (err) {
    // Only the user's mistakes (ERR_PARSE_ARGS_*); a wrong `config` is our bug and stays one.
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_'))
      throw usageError((err as Error).message, usage);
    throw err;
  }
};
