/** `--url` of the CLI commands that talk to a node (deploy, export, import). */
import { CliError } from '../cli-failure.js';

/**
 * The node's HTTP base URL, ending in '/' so relative routes resolve under any
 * path prefix; or a sentence saying what to write instead (exit code 2).
 */
export const parseNodeUrl = (raw: string): URL => {
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined; // not a URL at all: the same sentence as a wrong scheme
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:'))
    throw new CliError(
      `--url must be the node's HTTP address with its scheme, e.g. http://localhost:1234 (got ${JSON.stringify(raw)})`,
      2,
    );
  return new URL(url.href.replace(/\/*$/, '/'));
};
