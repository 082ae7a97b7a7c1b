/**
 * `GET /v1/functions/:name/code` (admin right): the deployed bundle of a
 * function, so `stateweave backtest` can replay history through exactly the
 * code that runs, next to a local version.
 */
import express, { type Router } from 'express';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { StateweaveError } from '../errors.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import { bearerToken } from '../auth/bearer.js';

export const createFunctionCodeApi = (options: {
  readonly functions: FunctionRuntime;
  readonly policy: AccessPolicy;
}): Router => {
  const router = express.Router();
  router.get('/v1/functions/:name/code', async (req, res) => {
    requireRight(await options.policy.authenticate(bearerToken(req)), 'admin');
    const name = req.params.name;
    const fn = options.functions.list().find((f) => f.name === name);
    if (!fn) throw new StateweaveError('NOT_FOUND', `no function named ${JSON.stringify(name)}`);
    res.json({
      name: fn.name,
      kind: fn.kind,
      version: fn.version,
      file: fn.file,
      code: fn.bundle.code,
    });
  });
  return router;
};
