/**
 * Function-registry replication on the mesh: every node ends up serving the
 * newest deployment (order: deployment.ts). Its requests travel as typed
 * messages on the peer links (rpc-codec.ts), authenticated by the link.
 *
 * - Push: a deploy accepted here is sent to every peer with a link up
 *   (`deployment-push`); the peer adopts it if it is newer than its own. The
 *   deploy's answer says who has it; a configured peer without a link up is
 *   listed as pending and pulls it when its link comes up.
 * - Pull: when a peer link comes up, and every `checkEveryMs` for connected
 *   peers, this node asks the peer for its deployment's id (`deployment-meta`)
 *   and pulls the code (`deployment-code`) only if the peer's is newer. Both
 *   ends of a link do this, so whichever is behind catches up.
 *
 * Applying a deployment is the node's business (`LocalDeployments`, implemented
 * by functions/deployments.ts); this module only moves bytes.
 */
import { assertNever } from '../assert-never.js';
import { StateweaveError } from '../errors.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import {
  isDeployment,
  isDeploymentMeta,
  isNewer,
  metaOf,
  type Deployment,
  type DeploymentMeta,
} from '../deployment.js';
import type { DeploymentSync, LocalDeployments, ReplicationReport } from '../node-ports.js';
import type { RegistryRequest } from './node-requests.js';
import type { PeerStatus } from './peer-links.js';
import type { RpcReply, RpcRequest } from './rpc-codec.js';

export interface RegistrySyncOptions {
  readonly nodeId: NodeId;
  /** Asks another node over the peer link (the cluster's request/response). */
  readonly request: (to: NodeId, request: RpcRequest, timeoutMs: number) => Promise<RpcReply>;
  /** The peer links as they stand (configured URLs, node ids, states). */
  readonly peers: () => readonly PeerStatus[];
  readonly local: LocalDeployments;
  readonly logger: Logger;
  /** How long one request to a peer may take. @default 15000 */
  readonly timeoutMs?: number;
  /** Compare deployments with every connected peer this often (anti-entropy). @default 30000 */
  readonly checkEveryMs?: number;
  /** Pull attempts after a link comes up. @default 3 */
  readonly attempts?: number;
}

export interface RegistrySync extends DeploymentSync {
  /** Cluster hook: a peer link came up. */
  onLinkUp(nodeId: NodeId): void;
  /** Answers a peer's registry request with JSON (node-requests.ts). */
  answer(from: NodeId, request: RegistryRequest): Promise<string>;
  close(): void;
}

interface PushAnswer {
  readonly nodeId: string;
  readonly adopted: boolean;
  readonly deployment: DeploymentMeta | null;
}

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

export const createRegistrySync = (options: RegistrySyncOptions): RegistrySync => {
  const { local, logger } = options;
  const log = logger.child({ component: 'registry-sync' });
  const timeoutMs = options.timeoutMs ?? 15_000;
  const syncing = new Map<NodeId, Promise<void>>();
  let closed = false;

  const ask = async (to: NodeId, request: RpcRequest): Promise<unknown> => {
    const reply = await options.request(to, request, timeoutMs);
    if (reply.type !== 'deployment')
      throw new Error(`node ${to} answered a registry request with ${reply.type}`);
    return JSON.parse(reply.json) as unknown;
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
  const pullFrom = async (nodeId: NodeId): Promise<void> => {
    const meta = (await ask(nodeId, { type: 'deployment-meta' })) as { deployment?: unknown };
    if (!isDeploymentMeta(meta.deployment)) return;
    local.observe(meta.deployment);
    if (!isNewer(meta.deployment, local.current())) return;
    const full = (await ask(nodeId, { type: 'deployment-code' })) as { deployment?: unknown };
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

  const syncWith = (nodeId: NodeId): Promise<void> => {
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

  const connected = (): NodeId[] =>
    options.peers().flatMap((p) => (p.state === 'connected' && p.nodeId ? [p.nodeId] : []));

  const timer = setInterval(() => {
    for (const peer of connected()) void syncWith(peer);
  }, options.checkEveryMs ?? 30_000);
  timer.unref();

  const acceptPush = async (from: string, json: string): Promise<PushAnswer> => {
    let parsed: { deployment?: unknown };
    try {
      parsed = JSON.parse(json) as { deployment?: unknown };
    } catch (err) {
      throw new StateweaveError('BAD_REQUEST', 'the push must be {"deployment":…} as JSON', {
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
        { from, deployment: parsed.deployment.id, merged: outcome.merged },
        'adopted a pushed function deployment',
      );
    pushMerged(outcome.merged);
    return {
      nodeId: options.nodeId,
      adopted: outcome.adopted,
      deployment: outcome.current ?? null,
    };
  };

  const pushTo = async (
    to: NodeId,
    deployment: Deployment,
    report: ReplicationReport,
  ): Promise<void> => {
    const got = (await ask(to, {
      type: 'deployment-push',
      json: JSON.stringify({ deployment }),
    })) as PushAnswer;
    if (isDeploymentMeta(got.deployment)) local.observe(got.deployment);
    if (got.adopted || got.deployment?.id === deployment.id) {
      report.replicatedTo.push(to);
      return;
    }
    // The peer had a newer deployment: ours lost there. Take theirs (merged with ours).
    report.pending.push({
      node: to,
      reason: `it has the newer deployment ${got.deployment?.id ?? '?'}`,
    });
    void syncWith(to);
  };

  const sync: RegistrySync = {
    async push(deployment) {
      const report: ReplicationReport = { replicatedTo: [], pending: [] };
      const peers = options.peers();
      await Promise.all(
        peers.map(async (peer) => {
          const name = peer.nodeId ?? peer.url ?? '?';
          if (peer.state !== 'connected' || peer.nodeId === undefined) {
            report.pending.push({
              node: name,
              reason: `no link up (${peer.lastError ?? peer.state})`,
            });
            return;
          }
          try {
            await pushTo(peer.nodeId, deployment, report);
          } catch (err) {
            report.pending.push({ node: name, reason: reasonOf(err) });
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

    async answer(from, request) {
      switch (request.type) {
        case 'deployment-meta':
          return JSON.stringify({ nodeId: options.nodeId, deployment: currentMeta() });
        case 'deployment-code':
          return JSON.stringify({ nodeId: options.nodeId, deployment: local.current() ?? null });
        case 'deployment-push':
          return JSON.stringify(await acceptPush(from, request.json));
        default:
          return assertNever(request, 'registry request');
      }
    },

    close() {
      closed = true;
      clearInterval(timer);
    },
  };
  return sync;
};
