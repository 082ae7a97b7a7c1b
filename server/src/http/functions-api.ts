/**
 * Functions over HTTP:
 *   GET  /v1/functions                 list: name, kind, consistency, version (any valid token)
 *   POST /v1/functions                 deploy `{ bundles: [{ file, code }] }` (admin right)
 * (`POST /v1/functions/:name/invoke` is invoke-route.ts, in front of Express.)
 * A 2xx body is the function's result itself; errors go to api.ts's JSON error handler.
 * In a cluster a deploy is handed to the other nodes through the DeploymentSync
 * port (the peer link or the backplane): no route here is for nodes only.
 */
import express, { type Router } from 'express';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { StateweaveError } from '../errors.js';
import { bearerToken } from '../auth/bearer.js';
import type { SourceBundle } from '../functions/compile.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { Deployments } from '../functions/deployments.js';
import { checkDeploy, scopeOf, type Scope } from '../functions/scope.js';
import { metaOf } from '../deployment.js';
import type { DeploymentSync } from '../node-ports.js';

export interface FunctionsApiOptions {
  readonly functions: FunctionRuntime;
  /** Stores deploys (and the node's deployment); without it a deploy only runs. */
  readonly deployments?: Deployments;
  /** In a cluster: hands deploys to the other nodes. */
  readonly registrySync?: DeploymentSync;
  readonly policy: AccessPolicy;
  /** Largest accepted request body (deploys and inputs). */
  readonly maxBodyBytes: number;
}

const isBundleList = (value: unknown): value is { bundles: SourceBundle[] } => {
  const bundles = (value as { bundles?: unknown } | null)?.bundles;
  return (
    Array.isArray(bundles) &&
    bundles.length > 0 &&
    bundles.every(
      (b: unknown) =>
        typeof (b as SourceBundle)?.file === 'string' &&
        typeof (b as SourceBundle)?.code === 'string',
    )
  );
};

export const createFunctionsApi = (options: FunctionsApiOptions): Router => {
  const router = express.Router();
  const describe = (fn: ReturnType<FunctionRuntime['list']>[number]) => ({
    name: fn.name,
    kind: fn.kind,
    consistency: fn.consistency,
    version: fn.version,
    file: fn.file,
    scope: fn.scope,
    ...(fn.timeoutMs !== undefined ? { timeoutMs: fn.timeoutMs } : {}),
    ...(fn.on !== undefined ? { on: fn.on } : {}),
    ...(fn.everyMs !== undefined ? { everyMs: fn.everyMs } : {}),
    ...(fn.stableWindowMs !== undefined ? { stableWindowMs: fn.stableWindowMs } : {}),
  });

  router.get('/v1/functions', async (req, res) => {
    await options.policy.authenticate(bearerToken(req));
    res.json({ functions: options.functions.list().map(describe) });
  });

  router.post('/v1/functions', async (req, res, next) => {
    const grant = await options.policy.authenticate(bearerToken(req));
    requireRight(grant, 'admin');
    // The deploy belongs to the deployer's documents (functions/scope.ts).
    res.locals.scope = scopeOf(grant);
    next();
  });
  router.post('/v1/functions', express.json({ limit: options.maxBodyBytes }), async (req, res) => {
    const body = req.body as unknown;
    if (!isBundleList(body))
      throw new StateweaveError('BAD_REQUEST', 'body must be {"bundles":[{"file","code"}]}');
    const scope = res.locals.scope as Scope;
    const bundles = body.bundles.map(({ file, code }) => ({ file, code, scope }));
    if (!options.deployments) {
      const runtime = options.functions;
      const running = new Map(runtime.list().map((fn) => [fn.name, fn]));
      const deployed = await runtime.deploy(bundles, (fns) =>
        checkDeploy(fns, (name) => running.get(name)),
      );
      res.json({ functions: deployed.map(describe) });
      return;
    }
    // Stored first, then pushed to every peer; a peer that is down does not fail
    // the deploy: it is listed as pending and pulls the deployment when it is back.
    const { functions, deployment } = await options.deployments.deploy(bundles, scope);
    const sync = options.registrySync;
    const report = sync ? await sync.push(deployment) : { replicatedTo: [], pending: [] };
    res.json({ functions: functions.map(describe), deployment: metaOf(deployment), ...report });
  });

  return router;
};
