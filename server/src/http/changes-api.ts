/**
 * The change feed over HTTP (docs/history.md, "Change feed"):
 *   GET /v1/docs/:name/changes?since=<cursor>   one document        (read on it)
 *   GET /v1/changes?prefix=&since=<cursor>      every readable document under a prefix
 * As Server-Sent Events (the default; resumes from `Last-Event-ID`), or as
 * long-poll JSON (`Accept: application/json` or `?wait=<seconds>`): the answer
 * comes as soon as there is at least one change, or after `wait` seconds empty.
 */
import express, { type Request, type Response, type Router } from 'express';
import { hasRight, requireRight, type AccessPolicy } from '../auth/access.js';
import type { Grant } from '../auth/grant.js';
import { StateweaveError } from '../errors.js';
import { parseCursor, type ChangeFeed, type FeedQuery } from '../history/change-feed.js';
import { bearerToken } from '../auth/bearer.js';
import { docParam } from './doc-param.js';
import { authorizeDoc } from './authorize.js';

export interface ChangesApiOptions {
  readonly feed: ChangeFeed;
  readonly policy: AccessPolicy;
  /** A comment line this often keeps idle SSE streams open through proxies. @default 15000 */
  readonly heartbeatMs?: number;
}

const PAGE = 100;
const DEFAULT_WAIT_S = 25;
const MAX_WAIT_S = 60;

const cursorOf = (req: Request): number => {
  // A reconnecting EventSource repeats the URL and says where it got to.
  const header = parseCursor(req.get('last-event-id'));
  const since = header ?? parseCursor((req.query as Record<string, unknown>).since) ?? 0;
  if (Number.isNaN(since))
    throw new StateweaveError('BAD_REQUEST', 'since / Last-Event-ID: expected a cursor (digits)');
  return since;
};

const waitSecondsOf = (req: Request): number | undefined => {
  const raw = (req.query as Record<string, unknown>).wait;
  if (raw === undefined) return undefined;
  const seconds = Number(raw);
  if (typeof raw !== 'string' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_WAIT_S)
    throw new StateweaveError('BAD_REQUEST', `wait: expected seconds from 0 to ${MAX_WAIT_S}`);
  return seconds;
};

export const createChangesApi = ({
  feed,
  policy,
  heartbeatMs = 15_000,
}: ChangesApiOptions): Router => {
  const router = express.Router();

  const longPoll = async (
    req: Request,
    res: Response,
    query: Omit<FeedQuery, 'since' | 'limit'>,
    waitSeconds: number,
  ): Promise<void> => {
    const closed = new AbortController();
    res.on('close', () => closed.abort());
    const deadline = Date.now() + waitSeconds * 1000;
    let since = cursorOf(req);
    for (;;) {
      const page = await feed.read({ ...query, since, limit: PAGE });
      since = page.cursor;
      const left = deadline - Date.now();
      if (page.events.length > 0 || left <= 0 || closed.signal.aborted)
        return void res.json({ changes: page.events, cursor: String(since) });
      await feed.wait(left, closed.signal);
    }
  };

  const stream = async (
    req: Request,
    res: Response,
    query: Omit<FeedQuery, 'since' | 'limit'>,
  ): Promise<void> => {
    let since = cursorOf(req);
    const closed = new AbortController();
    res.on('close', () => closed.abort());
    // A stream outlives no token: it ends when the grant does (the client reconnects with a new one).
    const { expiresAt } = res.locals.grant as Grant;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write(`retry: 1000\n: cursor ${since}\n\n`);
    while (!closed.signal.aborted && (expiresAt === undefined || Date.now() < expiresAt)) {
      let page;
      try {
        page = await feed.read({ ...query, since, limit: PAGE });
      } catch {
        // The store is closing (shutdown): end the stream, the client reconnects elsewhere.
        break;
      }
      for (const event of page.events)
        res.write(
          `id: ${event.cursor}\nevent: ${event.deleted ? 'deleted' : 'change'}\ndata: ${JSON.stringify(event)}\n\n`,
        );
      since = page.cursor;
      if (page.events.length === PAGE) continue;
      await feed.wait(heartbeatMs, closed.signal);
      if (!closed.signal.aborted) res.write(': keep-alive\n\n');
    }
    res.end();
  };

  const serve = async (
    req: Request,
    res: Response,
    query: Omit<FeedQuery, 'since' | 'limit'>,
  ): Promise<void> => {
    const wait = waitSecondsOf(req);
    const wantsJson =
      wait !== undefined ||
      req.accepts(['text/event-stream', 'application/json']) === 'application/json';
    if (wantsJson) await longPoll(req, res, query, wait ?? DEFAULT_WAIT_S);
    else await stream(req, res, query);
  };

  router.get('/v1/docs/*name/changes', authorizeDoc(policy, 'read'), async (req, res) => {
    await serve(req, res, { doc: docParam(req) });
  });

  router.get('/v1/changes', async (req, res) => {
    const grant = await policy.authenticate(bearerToken(req));
    requireRight(grant, 'read');
    res.locals.grant = grant;
    const prefix = (req.query as Record<string, unknown>).prefix;
    if (prefix !== undefined && typeof prefix !== 'string')
      throw new StateweaveError('BAD_REQUEST', 'prefix: expected one string');
    await serve(req, res, {
      prefix: prefix ?? '',
      keep: (doc) => hasRight(grant, 'read', doc),
    });
  });

  return router;
};
