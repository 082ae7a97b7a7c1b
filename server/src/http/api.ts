/**
 * The HTTP API. Every error leaves as JSON `{ error: { code, message } }` with the
 * status from the one table in errors.ts. Document writes take the same path as a
 * WebSocket client's (hub.applyUpdate) and are answered only once stored.
 */
import express, { type ErrorRequestHandler, type RequestHandler, type Response } from 'express';
import { hasRight, requireRight, type AccessPolicy } from '../auth/access.js';
import type { Right } from '../auth/grant.js';
import { docParam } from './doc-param.js';
import { bearerToken } from '../auth/bearer.js';
import { StateweaveError, toStateweaveError } from '../errors.js';
import type { Hub } from '../hub/hub.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { httpOrigin, writerOf, type Origin } from '../origin.js';
import { namedSubject, type Grant } from '../auth/grant.js';
import { docToJson, isEmptyDoc } from '../hub/doc-json.js';
import { patchToUpdate } from './doc-patch.js';
import type { FunctionRuntime } from '../functions/runtime.js';
import type { ClusterView, DocDeleter, Forwarder } from '../node-ports.js';
import { createFunctionsApi, type FunctionsApiOptions } from './functions-api.js';
import { createInvokeRoute } from './invoke-route.js';
import { createCors } from './cors.js';
import type { History } from '../history/history.js';
import type { ChangeFeed } from '../history/change-feed.js';
import { createHistoryApi } from './history-api.js';
import { authorizeDoc } from './authorize.js';
import { createChangesApi } from './changes-api.js';
import { createBackupApi, type BackupApiOptions } from './backup-api.js';
import { createFunctionCodeApi } from './function-code-api.js';
import { createTimeTravelApi } from './time-travel-api.js';
import type { TimeTravel } from '../functions/time-travel.js';
import { sendError } from './error-response.js';
import { serveStaticFiles } from './static-files.js';
import type { RequestListener } from 'node:http';
import type { DeliveryStatus } from '../webhooks/delivery.js';

export type WebhookStatus = DeliveryStatus & { readonly prefix: string };

export interface HttpApiOptions {
  readonly hub: Hub;
  /** Verifies `Authorization: Bearer` tokens. */
  readonly policy: AccessPolicy;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Largest accepted request body. */
  readonly maxBodyBytes: number;
  /** false while starting or shutting down (readiness). */
  readonly isReady: () => boolean;
  /** Stateful functions (list, deploy, invoke); routes are absent without it. */
  readonly functions?: FunctionRuntime;
  /** In a cluster: forwards `owner` invocations to the document's primary. */
  readonly forwarder?: Forwarder;
  /** Stored (and, in a cluster, replicated) deployments: see functions-api.ts. */
  readonly deployments?: FunctionsApiOptions['deployments'];
  readonly registrySync?: FunctionsApiOptions['registrySync'];
  /** `GET /v1/cluster`: membership, peer links, replication (unauthenticated, like /metrics). */
  readonly cluster?: () => ClusterView;
  /**
   * `GET /v1/cluster` shows peers and links only to a token with the `admin`
   * right; anyone else gets `{ nodeId }`. @default false
   */
  readonly privateClusterStatus?: boolean;
  /** Directory of static files served at `/` after the API routes (public, no token). */
  readonly staticDir?: string;
  /** Origins of browser apps allowed to call the API (`*`: any); none by default (cors.ts). */
  readonly corsOrigins?: readonly string[];
  /** Versions, `?at=`, restore, diff (history-api.ts). */
  readonly history?: History;
  /** The change feed (changes-api.ts). */
  readonly feed?: ChangeFeed;
  /** `GET /v1/backup` (admin): the store as of one instant (backup-api.ts). */
  readonly dump?: BackupApiOptions['dump'];
  /** Queries at a past version (`POST /v1/functions/:name/invoke?at=`), with `history`. */
  readonly timeTravel?: TimeTravel;
  /** `GET /v1/webhooks` (admin): each target's delivery status. */
  readonly webhooks?: () => readonly WebhookStatus[];
  /** `DELETE /v1/docs/:name` on every node (tombstones); without it, on this node only. */
  readonly deleter?: DocDeleter;
}

/**
 * Express's router (a param that is not valid percent-encoding) and the body
 * parser (aborted, oversized or oddly encoded bodies) throw http-errors with a
 * `status` rather than one of our codes. Those are the client's mistakes: map them
 * to the table instead of letting them fall through to INTERNAL 500.
 */
const toApiError = (err: unknown, maxBodyBytes: number): StateweaveError => {
  if (err instanceof StateweaveError || typeof err !== 'object' || err === null)
    return toStateweaveError(err);
  const { type, status, message } = err as { type?: unknown; status?: unknown; message?: unknown };
  if (type === 'entity.parse.failed')
    return new StateweaveError(
      'BAD_REQUEST',
      `the body is not valid JSON: ${typeof message === 'string' ? message : 'parse error'}`,
      { cause: err },
    );
  if (type === 'entity.too.large')
    return new StateweaveError('BODY_TOO_LARGE', `body exceeds ${maxBodyBytes} bytes`, {
      cause: err,
    });
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new StateweaveError(
      'BAD_REQUEST',
      typeof message === 'string' ? message : 'bad request',
      { cause: err },
    );
  }
  return toStateweaveError(err);
};

/** Whether bytes that Yjs refused are JSON (sent to the binary route by mistake). */
const isJson = (body: Uint8Array): boolean => {
  try {
    JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    return true;
  } catch {
    return false; // not JSON either: the generic sentence fits
  }
};

/** The node's HTTP request listener: the invoke route first, Express for everything else. */
export const createHttpApi = (options: HttpApiOptions): RequestListener => {
  const { logger, metrics } = options;
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', (_req, res) => {
    // A backplane outage does not make the node unready: it still serves and
    // stores its own clients' edits. The answer says so, for operators. The mesh
    // has no medium that can be down (its links are in /v1/cluster): not said.
    const medium = options.cluster?.().backplane;
    const backplane = medium && medium.kind !== 'mesh' ? medium.state : undefined;
    const detail = backplane !== undefined ? { backplane } : {};
    if (options.isReady()) res.json({ status: 'ready', ...detail });
    else res.status(503).json({ status: 'not ready', ...detail });
  });

  if (options.cluster) {
    const status = options.cluster;
    app.get('/v1/cluster', async (req, res) => {
      const full = status();
      if (!options.privateClusterStatus) return void res.json(full);
      const token = bearerToken(req);
      // Without a token: only which node answered, no addresses.
      if (token === undefined) return void res.json({ nodeId: full.nodeId });
      requireRight(await options.policy.authenticate(token), 'admin');
      res.json(full);
    });
  }

  if (options.webhooks) {
    const status = options.webhooks;
    app.get('/v1/webhooks', async (req, res) => {
      requireRight(await options.policy.authenticate(bearerToken(req)), 'admin');
      res.json({ webhooks: status() });
    });
  }

  if (options.dump)
    app.use(createBackupApi({ policy: options.policy, dump: options.dump, logger }));

  app.get('/metrics', async (_req, res) => {
    res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  // Runs before any body is read: an unauthorised caller costs no parsing.
  // Leaves the grant in res.locals.grant (a write's origin names its subject).
  const authorize = (right: Right): RequestHandler => authorizeDoc(options.policy, right);
  const originOf = (res: Response): Origin => httpOrigin(namedSubject(res.locals.grant as Grant));
  // The writer's subject, held to the new-document limit (limits/new-docs.ts).
  const subjectOf = (res: Response): string => (res.locals.grant as Grant).subject;

  // The stored documents the token may read, a page at a time in name order.
  app.get('/v1/docs', async (req, res) => {
    const grant = await options.policy.authenticate(bearerToken(req));
    requireRight(grant, 'read');
    const query = req.query as Record<string, unknown>;
    const prefix = typeof query.prefix === 'string' ? query.prefix : '';
    const cursor =
      typeof query.cursor === 'string' && query.cursor !== '' ? query.cursor : undefined;
    const limit = query.limit === undefined ? 100 : Number(query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
      throw new StateweaveError('BAD_REQUEST', 'limit: expected an integer from 1 to 1000');
    const { docs, next } = await options.hub.list({
      prefix,
      limit,
      ...(cursor !== undefined ? { after: cursor } : {}),
      keep: (name) => hasRight(grant, 'read', name),
    });
    res.json({
      docs: docs.map(({ name, bytes, lastChange }) => ({
        name,
        bytes,
        lastChange: lastChange > 0 ? new Date(lastChange).toISOString() : null,
      })),
      next,
    });
  });

  // Before the document routes: `/v1/docs/a/versions` is a's versions, not a document "a/versions".
  if (options.history)
    app.use(createHistoryApi({ history: options.history, policy: options.policy }));
  if (options.feed) app.use(createChangesApi({ feed: options.feed, policy: options.policy }));

  app.delete('/v1/docs/*name', authorize('admin'), async (req, res) => {
    const name = docParam(req);
    if (!options.deleter) {
      await options.hub.remove(name);
      return void res.json({ deleted: true });
    }
    const report = await options.deleter.delete(name, writerOf(originOf(res)));
    res.json({ deleted: true, ...report });
  });

  app.get('/v1/docs/*name', authorize('read'), async (req, res) => {
    const name = docParam(req);
    const binary =
      req.accepts(['application/json', 'application/octet-stream']) === 'application/octet-stream';
    const at = (req.query as Record<string, unknown>).at;
    if (at !== undefined) {
      if (typeof at !== 'string' || at === '' || !options.history)
        throw new StateweaveError('BAD_REQUEST', 'at: expected one version id or ISO time');
      const { seq, body } = await options.history.at(name, at, binary ? 'update' : 'json');
      res.set('x-stateweave-version', String(seq));
      if (!(body instanceof Uint8Array)) return void res.json(body);
      const update = body;
      return void res
        .type('application/octet-stream')
        .send(Buffer.from(update.buffer, update.byteOffset, update.byteLength));
    }
    const body = await options.hub.withRoom(name, (room) => {
      if (isEmptyDoc(room.doc))
        throw new StateweaveError('NOT_FOUND', `document ${name} is empty or does not exist`);
      return binary ? room.diffSince() : docToJson(room.doc);
    });
    // A view, not a copy: the bytes may be the room's cached state, which the response only reads.
    if (body instanceof Uint8Array)
      res
        .type('application/octet-stream')
        .send(Buffer.from(body.buffer, body.byteOffset, body.byteLength));
    else res.json(body);
  });

  app.post(
    '/v1/docs/*name/updates',
    authorize('write'),
    express.raw({ type: () => true, limit: options.maxBodyBytes }),
    async (req, res) => {
      const name = docParam(req);
      const update = req.body as unknown;
      if (!(update instanceof Uint8Array) || update.byteLength === 0) {
        throw new StateweaveError(
          'BAD_REQUEST',
          'the body is empty: send a binary Yjs update (application/octet-stream)',
        );
      }
      const jsonHint = `this route takes a binary Yjs update; to write JSON, send it with PATCH /v1/docs/${name}`;
      if (req.is('application/json')) throw new StateweaveError('INVALID_UPDATE', jsonHint);
      await options.hub
        .applyUpdate(name, update, originOf(res), subjectOf(res))
        .catch((err: unknown) => {
          // Yjs's own decoder messages name its internals; say what the bytes should be.
          if (err instanceof StateweaveError && err.code === 'INVALID_UPDATE')
            throw new StateweaveError(
              'INVALID_UPDATE',
              isJson(update)
                ? jsonHint
                : 'the body is not a Yjs update: send the bytes of Y.encodeStateAsUpdate(doc) or of an update event, as application/octet-stream',
              { cause: err },
            );
          throw err;
        });
      res.json({ saved: true });
    },
  );

  app.patch(
    '/v1/docs/*name',
    authorize('write'),
    express.json({ type: () => true, limit: options.maxBodyBytes, strict: false }),
    async (req, res) => {
      const name = docParam(req);
      const hub = options.hub;
      const update = await hub.withRoom(name, (room) =>
        patchToUpdate(room.diffSince(), req.body as unknown),
      );
      if (update !== undefined) await hub.applyUpdate(name, update, originOf(res), subjectOf(res));
      res.json({ saved: true, changed: update !== undefined });
    },
  );

  if (options.functions) {
    const { functions, deployments, registrySync, policy, maxBodyBytes } = options;
    app.use(createFunctionCodeApi({ functions, policy }));
    if (options.history && options.timeTravel)
      app.use(
        createTimeTravelApi({
          functions,
          history: options.history,
          timeTravel: options.timeTravel,
          policy,
          maxBodyBytes,
        }),
      );
    app.use(
      createFunctionsApi({
        functions,
        policy,
        maxBodyBytes,
        ...(deployments ? { deployments } : {}),
        ...(registrySync ? { registrySync } : {}),
      }),
    );
  }

  if (options.staticDir !== undefined) app.use(serveStaticFiles(options.staticDir));

  app.use((req, _res, next) => {
    next(new StateweaveError('NOT_FOUND', `no route for ${req.method} ${req.path}`));
  });

  const onError: ErrorRequestHandler = (err: unknown, req, res, _next) => {
    sendError(res, toApiError(err, options.maxBodyBytes), req, logger, metrics);
  };
  app.use(onError);
  const { functions, policy, maxBodyBytes, forwarder } = options;
  const invoke = functions
    ? createInvokeRoute({
        functions,
        policy,
        maxBodyBytes,
        logger,
        metrics,
        ...(forwarder ? { forwarder } : {}),
      })
    : undefined;
  const cors = createCors(options.corsOrigins ?? []);
  if (!invoke && !cors) return app;
  return (req, res) => {
    if (cors?.(req, res)) return;
    if (!invoke?.(req, res)) app(req, res);
  };
};
