/**
 * `POST /v1/functions/:name/invoke?at=<version id | ISO time>`: a deployed
 * `query` on the documents as they were (functions/time-travel.ts). The
 * document `doc(input)` names and every `ctx.read` are read at the same `at`
 * (a version id is a position in the node's log, so other documents are read
 * as of that position too). Needs `read` on each document it reads, within the
 * function's scope; writes nothing. The invoke route (invoke-route.ts) leaves
 * requests with `at=` to this one.
 */
import express, { type Router } from 'express';
import * as Y from 'yjs';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { validateDocName } from '../doc-name.js';
import { ERRORS, StateweaveError, type ErrorCode } from '../errors.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import { requireInScope } from '../functions/scope.js';
import type { TimeTravel } from '../functions/time-travel.js';
import type { History } from '../history/history.js';
import { bearerToken } from '../auth/bearer.js';

export interface TimeTravelApiOptions {
  readonly functions: FunctionRuntime;
  readonly history: History;
  readonly timeTravel: TimeTravel;
  readonly policy: AccessPolicy;
  readonly maxBodyBytes: number;
}

const EMPTY = Y.encodeStateAsUpdate(new Y.Doc());

const isCode = (code: string): code is ErrorCode => Object.hasOwn(ERRORS, code);

export const createTimeTravelApi = (options: TimeTravelApiOptions): Router => {
  const router = express.Router();
  router.post(
    '/v1/functions/:name/invoke',
    async (req, res, next) => {
      // Authenticated before the body is read, like every invoke.
      res.locals.grant = await options.policy.authenticate(bearerToken(req));
      next();
    },
    express.json({ type: () => true, limit: options.maxBodyBytes, strict: false }),
    async (req, res) => {
      const at = (req.query as Record<string, unknown>).at;
      if (typeof at !== 'string' || at === '')
        throw new StateweaveError('BAD_REQUEST', 'at: expected one version id or ISO time');
      const grant = res.locals.grant as Parameters<typeof requireRight>[0];
      const fn = options.functions.list().find((f) => f.name === req.params.name);
      if (!fn)
        throw new StateweaveError(
          'NOT_FOUND',
          `no function named ${JSON.stringify(req.params.name)}`,
        );
      if (fn.kind !== 'query')
        throw new StateweaveError(
          'BAD_REQUEST',
          `${fn.name} is a mutation: only a query runs at a past version (try stateweave backtest)`,
        );
      let seq: number | undefined;
      const stateAt = async (name: string, missing: 'throw' | 'empty'): Promise<Uint8Array> => {
        const doc = validateDocName(name);
        requireInScope(fn, doc);
        requireRight(grant, 'read', doc);
        try {
          const found = await options.history.at(doc, at, 'update');
          seq ??= found.seq;
          return found.body as Uint8Array;
        } catch (err) {
          if (missing === 'empty' && err instanceof StateweaveError && err.code === 'NOT_FOUND')
            return EMPTY; // ctx.read of a document that did not exist then: empty, as now
          throw err;
        }
      };
      const outcome = await options.timeTravel.run({
        code: fn.bundle.code,
        name: fn.name,
        input: req.body as unknown,
        now: /^\d+$/.test(at) ? Date.now() : Date.parse(at),
        subject: grant.subject,
        state: (doc) => stateAt(doc, 'throw'),
        read: (doc) => stateAt(doc, 'empty'),
      });
      if (outcome.error)
        throw new StateweaveError(
          isCode(outcome.error.code) ? outcome.error.code : 'FUNCTION_ERROR',
          outcome.error.message,
        );
      res.set('stateweave-function-version', fn.version);
      if (seq !== undefined) res.set('x-stateweave-version', String(seq));
      res.type('application/json').send(outcome.result ?? 'null');
    },
  );
  return router;
};
