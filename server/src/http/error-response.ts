/** Every HTTP error leaves the same way: counted, logged, and sent as `{ error: { code, message } }`. */
import type { ServerResponse } from 'node:http';
import type { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export const sendError = (
  res: ServerResponse,
  error: StateweaveError,
  request: { readonly method: string | undefined; readonly path: string },
  logger: Logger,
  metrics: Metrics,
): void => {
  metrics.errors.inc({ code: error.code });
  const level = error.status >= 500 ? 'error' : 'warn';
  logger[level](
    { method: request.method, path: request.path, code: error.code, err: error.cause ?? undefined },
    error.message,
  );
  if (res.headersSent) {
    res.destroy(); // nothing sensible can follow a started body
    return;
  }
  const body = JSON.stringify({ error: { code: error.code, message: error.message } });
  res.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
};
