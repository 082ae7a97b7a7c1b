/**
 * Functions over HTTP:
 *   GET  /v1/functions                 list: name, kind, consistency, version (any valid token)
 *   POST /v1/functions                 deploy `{ bundles: [{ file, code }] }` (admin right)
 *   POST /v1/functions/:name/invoke    body = input JSON, optional Idempotency-Key (invoke right on the doc)
 * A 2xx body is the function's result itself; errors go to api.ts's JSON error handler.
 */
import express, { type Router } from 'express';
import { requireRight, type AccessPolicy } from '../auth/access.js';
import { FORWARDED_HEADER, type Forwarder } from '../cluster/forward.js';
import { StateweaveError } from '../errors.js';
import { bearerToken } from './bearer.js';
import type { SourceBundle } from '../functions/compile.js';
import type { FunctionRuntime } from '../functions/runtime.js';

export interface FunctionsApiOptions {
  readonly functions: () => FunctionRuntime;
  readonly policy: AccessPolicy;
  /** Largest accepted request body (deploys and inputs). */
  readonly maxBodyBytes: number;
  /** In a cluster: sends `owner` invocations to the document's primary. */
  readonly forwarder?: Forwarder;
}

const MAX_IDEMPOTENCY_KEY_CHARS = 256;

const isBundleList = (value: unknown): value is { bundles: SourceBundle[] } => {
  const bundles = (value as { bundles?: unknown } | null)?.bundles;
  return (
    Array.isArray(bundles) &&
    bundles.length > 0 &&
    bundles.every((b: unknown) => typeof (b as SourceBundle)?.file === 'string' && typeof (b as SourceBundle)?.code === 'string')
  );
};

const parseInput = (body: unknown): unknown => {
  if (typeof body !== 'string' || body.trim() === '') return undefined;
  try {
    return JSON.parse(body) as unknown;
  } catch (err) {
    throw new StateweaveError('BAD_REQUEST', 'the body must be the input as JSON', { cause: err });
  }
};

export const createFunctionsApi = (options: FunctionsApiOptions): Router => {
  const router = express.Router();
  const describe = (fn: ReturnType<FunctionRuntime['list']>[number]) => ({
    name: fn.name,
    kind: fn.kind,
    consistency: fn.consistency,
    version: fn.version,
    file: fn.file,
    ...(fn.timeoutMs !== undefined ? { timeoutMs: fn.timeoutMs } : {}),
    ...(fn.on !== undefined ? { on: fn.on } : {}),
    ...(fn.everyMs !== undefined ? { everyMs: fn.everyMs } : {}),
  });

  router.get('/v1/functions', async (req, res) => {
    await options.policy.authenticate(bearerToken(req));
    res.json({ functions: options.functions().list().map(describe) });
  });

  router.post('/v1/functions', async (req, _res, next) => {
    requireRight(await options.policy.authenticate(bearerToken(req)), 'admin');
    next();
  });
  router.post('/v1/functions', express.json({ limit: options.maxBodyBytes }), async (req, res) => {
    const body = req.body as unknown;
    if (!isBundleList(body)) throw new StateweaveError('BAD_REQUEST', 'body must be {"bundles":[{"file","code"}]}');
    const deployed = await options.functions().deploy(body.bundles);
    res.json({ functions: deployed.map(describe) });
  });

  router.post(
    '/v1/functions/:name/invoke',
    // Authenticated before the body is read; the right is checked once the document is known.
    async (req, res, next) => {
      res.locals.grant = await options.policy.authenticate(bearerToken(req));
      next();
    },
    express.text({ type: () => true, limit: options.maxBodyBytes }),
    async (req, res) => {
      const key = req.get('idempotency-key');
      if (key !== undefined && (key === '' || key.length > MAX_IDEMPOTENCY_KEY_CHARS)) {
        throw new StateweaveError('BAD_REQUEST', `Idempotency-Key must be 1 to ${MAX_IDEMPOTENCY_KEY_CHARS} characters`);
      }
      const grant = res.locals.grant as Awaited<ReturnType<AccessPolicy['authenticate']>>;
      const name = req.params.name as string;
      const body = typeof req.body === 'string' ? req.body : '';
      const authorization = req.get('authorization');
      const forwarded = { name, body, ...(key !== undefined ? { idempotencyKey: key } : {}), ...(authorization !== undefined ? { authorization } : {}) };
      const signature = req.get(FORWARDED_HEADER);
      if (signature !== undefined && !options.forwarder?.verify(signature, forwarded)) {
        throw new StateweaveError('UNAUTHORIZED', 'invalid forwarding signature');
      }
      const { forwarder } = options;
      const result = await options.functions().invoke({
        name,
        input: parseInput(req.body),
        ...(key !== undefined ? { idempotencyKey: key } : {}),
        // A request forwarded by a peer runs here; any other may be forwarded once.
        ...(forwarder && signature === undefined
          ? { forward: async (nodeId: string, doc: string) => ({ ...(await forwarder.forward(nodeId, forwarded)), doc }) }
          : {}),
        grant,
        // A query only reads: the read right suffices for it.
        authorize: (doc, kind) => requireRight(grant, kind === 'query' && grant.rights.has('read') ? 'read' : 'invoke', doc),
      });
      res.set('stateweave-function-version', result.version);
      if (result.replayed) res.set('idempotent-replayed', 'true');
      res.type('application/json').send(result.json);
    },
  );
  return router;
};
