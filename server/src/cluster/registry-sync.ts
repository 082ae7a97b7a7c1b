/**
 * Function-registry replication: every node ends up serving the newest
 * deployment (order: deployment.ts).
 *
 * - Push: a deploy accepted here is POSTed to every configured peer
 *   (`POST /v1/cluster/functions`, signed: registry-auth.ts); the peer adopts it
 *   if it is newer than its own. The deploy's answer says who has it.
 * - Pull: when a peer link comes up, and every `checkEveryMs` for connected
 *   peers, this node asks the peer for its deployment's id
 *   (`GET /v1/cluster/deployment`) and pulls the code
 *   (`GET /v1/cluster/functions`) only if the peer's is newer. Both ends of a
 *   link do this, so whichever is behind catches up.
 *
 * Applying a deployment is the node's business (`LocalDeployments`, implemented
 * by functions/deployments.ts); this module only moves and signs bytes.
 */
import type { Logger } from '../log.js';
import { StateweaveError } from '../errors.js';
import {
  isDeployment,
  isDeploymentMeta,
  isNewer,
  metaOf,
  type Deployment,
  type DeploymentMeta,
} from './deployment.js';
import { httpBaseOf } from './forward.js';
import { createRegistryAuth, REGISTRY_HEADER, type SignedBy } from './registry-auth.js';

/** The node's own deployment, as this module needs it. */
export interface LocalDeployments {
  current(): Deployment | undefined;
  /** A peer's counter was seen (the Lamport clock moves past it). */
  observe(meta: DeploymentMeta): void;
  /**
   * Adopts `remote` if it is newer than the current deployment. `merged` when the
   * result is a new deployment (the current one had functions `remote` lacks):
   * that one must be pushed in turn.
   */
  offer(
    remote: Deployment,
  ): Promise<{ adopted: boolean; merged: boolean; current: DeploymentMeta | undefined }>;
}

export interface ReplicationReport {
  /** Peers (node ids) that hold this deployment now. */
  readonly replicatedTo: string[];
  /** Peers that do not (node id, or the URL of one never reached), and why; they pull it when they are back. */
  readonly pending: Array<{ node: string; reason: string }>;
}

/** An answer for the HTTP layer to send: JSON text and its signature header. */
export interface SignedAnswer {
  readonly json: string;
  readonly signature: string;
}

export interface RegistrySyncOptions {
  readonly nodeId: string;
  readonly secret: string;
  /** The configured peer URLs (`ws://host:port`). */
  readonly peers: readonly string[];
  /** The node id behind a configured peer URL, when known. */
  readonly peerIdOf: (url: string) => string | undefined;
  /** A peer's HTTP base URL (configured or discovered); undefined when unknown. */
  readonly addressOf: (nodeId: string) => Promise<string | undefined>;
  /** Peers with a link up now. */
  readonly connectedPeers: () => string[];
  readonly local: LocalDeployments;
  readonly logger: Logger;
  /** Largest push body read (after its signature was checked). */
  readonly maxBodyBytes: number;
  /** How long one request to a peer may take. @default 15000 */
  readonly timeoutMs?: number;
  /** Compare deployments with every connected peer this often (anti-entropy). @default 30000 */
  readonly checkEveryMs?: number;
  /** Pull attempts after a link comes up. @default 3 */
  readonly attempts?: number;
}

export interface RegistrySync {
  /** Pushes `deployment` to every configured peer; never throws for a peer that is down. */
  push(deployment: Deployment): Promise<ReplicationReport>;
  /** Cluster hook: a peer link came up. */
  onLinkUp(nodeId: string): void;
  /** Checks a request's signature before its body is read; throws UNAUTHORIZED. */
  authenticate(header: string | undefined, purpose: RegistryRoute): SignedBy;
  /** `POST /v1/cluster/functions` */
  acceptPush(signed: SignedBy, body: string): Promise<SignedAnswer>;
  /** `GET /v1/cluster/deployment` (meta only) and `GET /v1/cluster/functions` (with the code). */
  answerPull(signed: SignedBy, withCode: boolean): SignedAnswer;
  readonly maxBodyBytes: number;
  close(): void;
}

export const REGISTRY_ROUTES = {
  push: 'POST /v1/cluster/functions',
  meta: 'GET /v1/cluster/deployment',
  code: 'GET /v1/cluster/functions',
} as const;
export type RegistryRoute = (typeof REGISTRY_ROUTES)[keyof typeof REGISTRY_ROUTES];

interface PushAnswer {
  readonly nodeId: string;
  readonly adopted: boolean;
  readonly deployment: DeploymentMeta | null;
}

const reasonOf = (err: unknown): string => {
  const cause = (err as { cause?: { code?: unknown } } | null)?.cause?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof cause === 'string' ? `${message} (${cause})` : message;
};

export const createRegistrySync = (options: RegistrySyncOptions): RegistrySync => {
  const { local, logger } = options;
  const log = logger.child({ component: 'registry-sync' });
  const auth = createRegistryAuth({ nodeId: options.nodeId, secret: options.secret });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const syncing = new Map<string, Promise<void>>();
  let closed = false;

  const request = async (
    base: string,
    to: string,
    route: RegistryRoute,
    body?: unknown,
  ): Promise<unknown> => {
    const [method, path] = route.split(' ') as [string, string];
    const text = body === undefined ? '' : JSON.stringify(body);
    const signature = auth.sign(route, text, to);
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        [REGISTRY_HEADER]: signature,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: text }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = await res.text();
    if (!res.ok) throw new Error(`HTTP ${res.status}: ${answer.slice(0, 300)}`);
    auth.verifyAnswer(res.headers.get(REGISTRY_HEADER) ?? undefined, signature, answer);
    return JSON.parse(answer) as unknown;
  };

  const answer = (signed: SignedBy, value: unknown): SignedAnswer => {
    const json = JSON.stringify(value);
    return { json, signature: auth.signAnswer(signed, json) };
  };

  const currentMeta = (): DeploymentMeta | null => {
    const current = local.current();
    return current ? metaOf(current) : null;
  };

  /** A merge made a new deployment: everyone else needs it too. */
  const pushMerged = (merged: boolean): void => {
    const current = local.current();
    if (!merged || !current || closed) return;
    void sync
      .push(current)
      .then((report) =>
        log.info({ deployment: current.id, ...report }, 'pushed a merged deployment'),
      );
  };

  /** Pulls the peer's deployment if it is newer than ours. */
  const pullFrom = async (nodeId: string): Promise<void> => {
    const base = await options.addressOf(nodeId);
    if (base === undefined) throw new Error(`no HTTP address for node ${nodeId}`);
    const meta = (await request(base, nodeId, REGISTRY_ROUTES.meta)) as { deployment?: unknown };
    if (!isDeploymentMeta(meta.deployment)) return;
    local.observe(meta.deployment);
    if (!isNewer(meta.deployment, local.current())) return;
    const full = (await request(base, nodeId, REGISTRY_ROUTES.code)) as { deployment?: unknown };
    if (!isDeployment(full.deployment))
      throw new Error(`node ${nodeId} sent a malformed deployment`);
    const outcome = await local.offer(full.deployment);
    if (outcome.adopted)
      log.info(
        { from: nodeId, deployment: full.deployment.id, merged: outcome.merged },
        'pulled a newer function deployment',
      );
    pushMerged(outcome.merged);
  };

  const syncWith = (nodeId: string): Promise<void> => {
    const running = syncing.get(nodeId);
    if (running) return running;
    const attempts = options.attempts ?? 3;
    const task = (async () => {
      for (let attempt = 1; !closed; attempt++) {
        try {
          return await pullFrom(nodeId);
        } catch (err) {
          if (attempt >= attempts)
            return log.warn(
              { peer: nodeId, reason: reasonOf(err) },
              'comparing function deployments failed',
            );
          await new Promise((resolve) => setTimeout(resolve, 500 * attempt).unref());
        }
      }
    })().finally(() => syncing.delete(nodeId));
    syncing.set(nodeId, task);
    return task;
  };

  const timer = setInterval(() => {
    for (const peer of options.connectedPeers()) void syncWith(peer);
  }, options.checkEveryMs ?? 30_000);
  timer.unref();

  const sync: RegistrySync = {
    maxBodyBytes: options.maxBodyBytes,

    async push(deployment) {
      const report: ReplicationReport = { replicatedTo: [], pending: [] };
      await Promise.all(
        options.peers.map(async (url) => {
          try {
            // Signed for that node only: its id comes from the link (it pulls on link-up otherwise).
            const to = options.peerIdOf(url);
            if (to === undefined) throw new Error('its node id is not known yet (no link up)');
            const got = (await request(httpBaseOf(url), to, REGISTRY_ROUTES.push, {
              deployment,
            })) as PushAnswer;
            if (isDeploymentMeta(got.deployment)) local.observe(got.deployment);
            if (got.adopted || got.deployment?.id === deployment.id)
              return report.replicatedTo.push(got.nodeId);
            // The peer had a newer deployment: ours lost there. Take theirs (merged with ours).
            report.pending.push({
              node: got.nodeId,
              reason: `it has the newer deployment ${got.deployment?.id ?? '?'}`,
            });
            void syncWith(got.nodeId);
          } catch (err) {
            report.pending.push({ node: options.peerIdOf(url) ?? url, reason: reasonOf(err) });
          }
        }),
      );
      report.replicatedTo.sort();
      report.pending.sort((a, b) => a.node.localeCompare(b.node));
      if (report.pending.length > 0)
        log.warn(
          { deployment: deployment.id, pending: report.pending },
          'deployment not yet on every peer',
        );
      return report;
    },

    onLinkUp(nodeId) {
      if (!closed) void syncWith(nodeId);
    },

    authenticate: (header, purpose) => auth.verify(header, purpose),

    async acceptPush(signed, body) {
      auth.checkBody(signed, body);
      let parsed: { deployment?: unknown };
      try {
        parsed = JSON.parse(body) as { deployment?: unknown };
      } catch (err) {
        throw new StateweaveError('BAD_REQUEST', 'the body must be {"deployment":…} as JSON', {
          cause: err,
        });
      }
      if (!isDeployment(parsed.deployment))
        throw new StateweaveError(
          'BAD_REQUEST',
          'malformed deployment (or its id does not match its code)',
        );
      const outcome = await local.offer(parsed.deployment);
      if (outcome.adopted)
        log.info(
          { from: signed.nodeId, deployment: parsed.deployment.id, merged: outcome.merged },
          'adopted a pushed function deployment',
        );
      pushMerged(outcome.merged);
      const reply: PushAnswer = {
        nodeId: options.nodeId,
        adopted: outcome.adopted,
        deployment: outcome.current ?? null,
      };
      return answer(signed, reply);
    },

    answerPull(signed, withCode) {
      if (!withCode) return answer(signed, { nodeId: options.nodeId, deployment: currentMeta() });
      return answer(signed, { nodeId: options.nodeId, deployment: local.current() ?? null });
    },

    close() {
      closed = true;
      clearInterval(timer);
    },
  };
  return sync;
};
