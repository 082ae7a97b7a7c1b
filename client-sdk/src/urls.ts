/** Node URLs: `ws(s)://host[:port][/prefix]` for documents, the matching `http(s)://` for calls. */
import { StateweaveClientError } from './errors.js';

/** Validates a node URL and drops a trailing slash. */
export const normalizeNodeUrl = (url: string): string => {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new StateweaveClientError('INVALID_OPTIONS', `not a URL: ${JSON.stringify(url)}`, {
      cause: err,
    });
  }
  if (parsed.protocol !== 'ws:' && parsed.protocol !== 'wss:') {
    throw new StateweaveClientError(
      'INVALID_OPTIONS',
      `node URLs start with ws:// or wss://, got ${JSON.stringify(url)}`,
    );
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new StateweaveClientError(
      'INVALID_OPTIONS',
      `a node URL has no query or fragment: ${JSON.stringify(url)}`,
    );
  }
  return url.replace(/\/+$/, '');
};

/** `ws://h:1/x` → `http://h:1/x`, `wss://…` → `https://…`. */
export const httpBaseFor = (nodeUrl: string): string => nodeUrl.replace(/^ws(s?):/, 'http$1:');

/** The socket URL of one document; the token, if any, travels as `?token=`. */
export const socketUrl = (nodeUrl: string, path: string, token: string | undefined): string =>
  `${nodeUrl}/${path}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`;
