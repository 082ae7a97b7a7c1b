/**
 * `POST /v1/functions/:name/invoke` on Node's HTTP server directly, in front of
 * Express: the body is the input as JSON, `Idempotency-Key` optional, the answer
 * the function's result. Express's router, body parser and response helpers cost
 * about as much CPU per call as running the function (measured: 4,100 vs 2,000
 * calls/s on one core), and this route is the one called thousands of times a second.
 *
 * Authenticated before the body is read; the right is checked by the runtime once
 * the document is known. An `owner` call is forwarded once, to the document's
 * primary, over the cluster's own link (never over this public route).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AccessPolicy } from '../auth/access.js';
import { StateweaveError, toStateweaveError } from '../errors.js';
import { functionCall } from '../functions/function-call.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Forwarder } from '../node-ports.js';
import { bearerToken } from '../auth/bearer.js';
import { sendError } from './error-response.js';

export interface InvokeRouteOptions {
  readonly functions: FunctionRuntime;
  readonly policy: AccessPolicy;
  readonly maxBodyBytes: number;
  readonly forwarder?: Forwarder;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** Handles the request and returns true when it is an invocation; false leaves it to Express. */
export type InvokeRoute = (req: IncomingMessage, res: ServerResponse) => boolean;

const ROUTE = /^\/v1\/functions\/([^/?#]+)\/invoke\/?(?:\?.*)?$/;

const header = (req: IncomingMessage, name: string): string | undefined => {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** The body as text, refused past `max` bytes (by Content-Length before reading, or while reading). */
const readBody = (req: IncomingMessage, max: number): Promise<string> =>
  new Promise((resolve, reject) => {
    const tooLarge = (): StateweaveError =>
      new StateweaveError('BODY_TOO_LARGE', `body exceeds ${max} bytes`);
    const declared = Number(req.headers['content-length']);
    if (declared > max) return reject(tooLarge());
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.resume();
        reject(tooLarge());
      } else chunks.push(chunk);
    });
    req.on('end', () =>
      resolve(
        chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'),
      ),
    );
    req.on('error', (err) =>
      reject(new StateweaveError('BAD_REQUEST', 'the request body was cut off', { cause: err })),
    );
  });

export const createInvokeRoute = (options: InvokeRouteOptions): InvokeRoute => {
  const { logger, metrics } = options;

  const handle = async (
    req: IncomingMessage,
    res: ServerResponse,
    encodedName: string,
  ): Promise<void> => {
    let name: string;
    try {
      name = decodeURIComponent(encodedName);
    } catch (err) {
      throw new StateweaveError('BAD_REQUEST', 'the function name is not valid percent-encoding', {
        cause: err,
      });
    }
    const grant = await options.policy.authenticate(bearerToken(req));
    const body = await readBody(req, options.maxBodyBytes);
    const idempotencyKey = header(req, 'idempotency-key');
    const authorization = header(req, 'authorization');
    const arrived = {
      name,
      body,
      ...(idempotencyKey !== undefined ? { idempotencyKey } : {}),
      ...(authorization !== undefined ? { authorization } : {}),
    };
    const { forwarder } = options;
    const call = functionCall({ ...arrived, grant, ...(forwarder ? { forwarder } : {}) });
    const result = await options.functions.invoke(call);
    const headers: Record<string, string | number> = {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(result.json),
      'stateweave-function-version': result.version,
    };
    if (result.replayed) headers['idempotent-replayed'] = 'true';
    res.writeHead(200, headers);
    res.end(result.json);
  };

  return (req, res) => {
    if (req.method !== 'POST') return false;
    const match = ROUTE.exec(req.url ?? '');
    // A query at a past version (`?at=`) is served by time-travel-api.ts.
    if (!match || /[?&]at=/.test(req.url ?? '')) return false;
    handle(req, res, match[1]!).catch((err: unknown) => {
      const error = toStateweaveError(err);
      // A refused body may still be arriving: close the connection rather than parse it as the next request.
      if (error.code === 'BODY_TOO_LARGE') res.setHeader('connection', 'close');
      sendError(
        res,
        error,
        { method: req.method, path: (req.url ?? '').split('?')[0]! },
        logger,
        metrics,
      );
    });
    return true;
  };
};
