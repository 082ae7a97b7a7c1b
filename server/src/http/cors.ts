/**
 * CORS for browser apps served from another origin (`--cors-origin`). The node's
 * API authenticates with bearer tokens, never cookies, so a listed origin gets
 * the response without credentials mode; an origin not listed gets no CORS
 * headers (the browser refuses the response) and its preflight a 403 that says
 * why. Runs in front of every route, the invoke fast path included.
 *
 * WebSockets are not subject to CORS; which pages may open them is the token's
 * business, not the Origin header's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ERRORS } from '../errors.js';

const METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
// Idempotency-Key for function calls, Last-Event-ID to resume an event stream.
const REQUEST_HEADERS = 'authorization, content-type, idempotency-key, last-event-id';
const PREFLIGHT_CACHE_SECONDS = 600;

/** Answers a preflight completely (true), or adds the CORS headers to `res` and returns false. */
export type CorsHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * `origins`: exact origins (`https://app.example.com`), or `*` for any. Empty:
 * no handler (the node sends no CORS headers at all).
 */
export const createCors = (origins: readonly string[]): CorsHandler | undefined => {
  if (origins.length === 0) return undefined;
  const any = origins.includes('*');
  const allowed = new Set(origins.map((origin) => origin.replace(/\/$/, '')));
  return (req, res) => {
    const origin = req.headers.origin;
    if (origin === undefined) return false; // not a cross-origin browser request
    const ok = any || allowed.has(origin);
    const preflight =
      req.method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
    if (!any) res.setHeader('vary', 'Origin'); // caches must not serve one origin's answer to another
    if (ok) res.setHeader('access-control-allow-origin', any ? '*' : origin);
    if (!preflight) return false;
    if (!ok) {
      const { status } = ERRORS.FORBIDDEN;
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(
        JSON.stringify({
          error: {
            code: 'FORBIDDEN',
            message: `origin ${origin} is not allowed: start the node with --cors-origin ${origin}`,
          },
        }),
      );
      return true;
    }
    res.writeHead(204, {
      'access-control-allow-methods': METHODS,
      'access-control-allow-headers': REQUEST_HEADERS,
      'access-control-max-age': String(PREFLIGHT_CACHE_SECONDS),
      'content-length': '0',
    });
    res.end();
    return true;
  };
};
