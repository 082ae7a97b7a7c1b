/**
 * A document's history over HTTP (docs/history.md):
 *   GET  /v1/docs/:name/versions?limit=&before=   versions, newest first      (read)
 *   POST /v1/docs/:name/versions  { name }         name the current state      (write)
 *   POST /v1/docs/:name/restore   { version }      bring a version back        (write)
 *   GET  /v1/docs/:name/diff?from=&to=             JSON diff of two versions   (read)
 *   GET  /v1/docs/:name?at=<version | ISO time>    is api.ts's read route.
 * These routes are matched before the document routes, so a document whose name
 * ends in /versions, /restore, /diff or /changes cannot be read over HTTP.
 */
import express, { type Request, type Router } from 'express';
import type { AccessPolicy } from '../auth/access.js';
import { namedSubject, type Grant } from '../auth/grant.js';
import { StateweaveError } from '../errors.js';
import type { History } from '../history/history.js';
import { httpOrigin, writerOf } from '../origin.js';
import { authorizeDoc } from './authorize.js';
import { docParam } from './doc-param.js';

export interface HistoryApiOptions {
  readonly history: History;
  readonly policy: AccessPolicy;
}

const stringParam = (req: Request, key: string): string | undefined => {
  const value = (req.query as Record<string, unknown>)[key];
  return typeof value === 'string' && value !== '' ? value : undefined;
};

const requiredParam = (req: Request, key: string): string => {
  const value = stringParam(req, key);
  if (value === undefined) throw new StateweaveError('BAD_REQUEST', `${key}: required`);
  return value;
};

/** A version reference from a JSON body: `{ version }` (an id) or `{ at }` (id or ISO time). */
const versionOf = (body: unknown): string => {
  const { version, at } = (body ?? {}) as { version?: unknown; at?: unknown };
  const ref = version ?? at;
  if (typeof ref === 'number' && Number.isSafeInteger(ref)) return String(ref);
  if (typeof ref === 'string' && ref !== '') return ref;
  throw new StateweaveError(
    'BAD_REQUEST',
    'expected { "version": "<id>" } or { "at": "<ISO time>" }',
  );
};

export const createHistoryApi = ({ history, policy }: HistoryApiOptions): Router => {
  const router = express.Router();
  const json = express.json({ type: () => true, limit: 64 * 1024 });

  router.get('/v1/docs/*name/versions', authorizeDoc(policy, 'read'), async (req, res) => {
    const limitText = stringParam(req, 'limit');
    const limit = limitText === undefined ? 100 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new StateweaveError('BAD_REQUEST', 'limit: expected an integer from 1 to 1000');
    const beforeText = stringParam(req, 'before');
    const before = beforeText === undefined ? undefined : Number(beforeText);
    if (before !== undefined && !Number.isSafeInteger(before))
      throw new StateweaveError('BAD_REQUEST', 'before: expected a version id');
    const versions = await history.versions(docParam(req), {
      limit,
      ...(before !== undefined ? { before } : {}),
    });
    res.json({
      versions,
      next: versions.length === limit ? (versions.at(-1)?.id ?? null) : null,
    });
  });

  router.post('/v1/docs/*name/versions', authorizeDoc(policy, 'write'), json, async (req, res) => {
    const { name } = (req.body ?? {}) as { name?: unknown };
    if (typeof name !== 'string')
      throw new StateweaveError('BAD_REQUEST', 'expected { "name": "<a name for this version>" }');
    const sub = namedSubject(res.locals.grant as Grant);
    const version = await history.name(docParam(req), name, writerOf(httpOrigin(sub)));
    res.status(201).json(version);
  });

  router.post('/v1/docs/*name/restore', authorizeDoc(policy, 'write'), json, async (req, res) => {
    const at = versionOf(req.body);
    const origin = httpOrigin(namedSubject(res.locals.grant as Grant));
    const { seq, changed } = await history.restore(docParam(req), at, origin);
    res.json({ restored: String(seq), changed });
  });

  router.get('/v1/docs/*name/diff', authorizeDoc(policy, 'read'), async (req, res) => {
    const result = await history.diff(
      docParam(req),
      requiredParam(req, 'from'),
      stringParam(req, 'to'),
    );
    res.json({ from: String(result.from), to: String(result.to), changes: result.changes });
  });

  return router;
};
