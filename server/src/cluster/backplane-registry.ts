/**
 * Function deployments on a backplane (Redis): the cluster's deployment is one
 * backplane record. A node that deploys writes it; every other node hears of
 * the write and offers the record to its own deployments (same order and
 * merge rules as the mesh: deployment.ts). A node compares again when a member
 * joins, when the backplane is back (a Redis that lost its data gets the
 * newest deployment written again), and every `checkEveryMs`.
 *
 * The HTTP layer sees it through the same `DeploymentSync` port as the mesh's
 * registry-sync.ts.
 */
import type { Logger } from '../log.js';
import type { Backplane } from './backplane.js';
import { isDeployment, isNewer, metaOf, type Deployment } from '../deployment.js';
import type { DeploymentSync, LocalDeployments } from '../node-ports.js';

export interface BackplaneRegistryOptions {
  readonly backplane: Backplane;
  readonly local: LocalDeployments;
  readonly logger: Logger;
  /** @default 30000 */
  readonly checkEveryMs?: number;
}

export interface BackplaneRegistry extends DeploymentSync {
  /** Compares this node's deployment with the cluster's record now. */
  check(): Promise<void>;
  /** A member joined, the backplane is back, or the record changed: compare. */
  onLinkUp(detail: string): void;
  close(): void;
}

export const DEPLOYMENT_RECORD = 'deployment';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const createBackplaneRegistry = (options: BackplaneRegistryOptions): BackplaneRegistry => {
  const { backplane, local } = options;
  const log = options.logger.child({ component: 'backplane-registry' });
  let closed = false;
  let running: Promise<void> = Promise.resolve();

  const read = async (): Promise<Deployment | undefined> => {
    const bytes = await backplane.getRecord(DEPLOYMENT_RECORD);
    if (!bytes) return undefined;
    const value: unknown = JSON.parse(decoder.decode(bytes));
    if (isDeployment(value)) return value;
    log.warn('the deployment record is not a valid deployment; replacing it');
    return undefined;
  };

  const write = (deployment: Deployment): Promise<void> =>
    backplane.putRecord(DEPLOYMENT_RECORD, encoder.encode(JSON.stringify(deployment)));

  /** One comparison; adopts a newer record, or writes ours when it is newer (or the record is gone). */
  const compare = async (): Promise<void> => {
    if (closed) return;
    const remote = await read();
    if (remote) {
      local.observe(metaOf(remote));
      const outcome = await local.offer(remote);
      if (outcome.adopted)
        log.info(
          { deployment: remote.id, origin: remote.origin },
          'adopted the cluster deployment',
        );
      if (!outcome.merged && outcome.current?.id === remote.id) return;
    }
    const current = local.current();
    if (current && (remote === undefined || current.id !== remote.id)) {
      await write(current);
      log.info({ deployment: current.id }, 'wrote this node’s deployment to the backplane');
    }
  };

  /** Comparisons run one at a time, each after the last one ended. */
  const check = (): Promise<void> => {
    running = running.then(compare).catch((err: unknown) => {
      log.warn(
        { reason: (err as Error).message },
        'comparing deployments with the backplane failed',
      );
    });
    return running;
  };

  const timer = setInterval(() => void check(), options.checkEveryMs ?? 30_000);
  timer.unref();

  return {
    check,
    async push(deployment) {
      // The deploy is stored here already; the record gets it now, or when the
      // backplane is back (check on resync): a deploy never fails for that.
      try {
        const remote = await read();
        if (remote && isNewer(remote, deployment)) await check();
        else await write(deployment);
        return { replicatedTo: [], pending: [] };
      } catch (err) {
        const reason = (err as Error).message;
        log.warn(
          { deployment: deployment.id, reason },
          'deployment not written to the backplane yet',
        );
        return { replicatedTo: [], pending: [{ node: 'backplane', reason }] };
      }
    },
    onLinkUp: () => void check(),
    close() {
      closed = true;
      clearInterval(timer);
    },
  };
};
