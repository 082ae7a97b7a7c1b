/**
 * This node's function deployment: what it serves, stored so that a restart
 * serves it again, and ordered (deployment.ts) so that the cluster can
 * agree on the newest one. Calls the runtime from outside (`deploy`, `list`).
 *
 * Every change goes through one queue: a client's deploy, a deployment adopted
 * from a peer, and the start. The stored form is two records in the node's
 * Store: the deployment (its layers: bundles with the names they define) and
 * the id of the `--functions` directory last deployed at a start.
 *
 * `--functions DIR` at start (docs/cluster.md, "Function deployments"): DIR is a
 * new deployment when its content differs from what this node deployed from it
 * at its previous start (or the node has nothing stored); it then replaces the
 * stored deployment (exactly DIR's functions, as before deployments were
 * stored), with the next Lamport counter. An unchanged DIR is not a deployment:
 * the node serves its stored one, which may be newer (from `stateweave deploy`
 * or a peer). Restarting a node never rolls the cluster back; editing DIR and
 * restarting deploys it.
 */
import type { Logger } from '../log.js';
import { StateweaveError } from '../errors.js';
import { validateDocName } from '../doc-name.js';
import type { Store } from '../storage/store.js';
import {
  ancestorsAfter,
  compactLayers,
  deploymentId,
  isDeployment,
  isNewer,
  mergeLayers,
  metaOf,
  type Deployment,
  type DeploymentBundle,
  type DeploymentMeta,
} from '../deployment.js';
import type { LocalDeployments } from '../node-ports.js';
import type { SourceBundle } from './compile.js';
import { checkDeploy, NODE_WIDE, type Scope } from './scope.js';
import type { DeployedFunction } from './registry.js';
import type { FunctionRuntime } from './runtime.js';

export interface Deployments extends LocalDeployments {
  /** Serves the stored deployment, then applies `--functions` bundles if they changed (see above). */
  start(dirBundles: readonly SourceBundle[] | undefined): Promise<void>;
  /**
   * A client's deploy within `scope` (the deployer's patterns, scope.ts): runs it,
   * makes and stores the new deployment. Pushing it is the caller's.
   */
  deploy(
    bundles: readonly SourceBundle[],
    scope?: Scope,
  ): Promise<{ functions: DeployedFunction[]; deployment: Deployment }>;
}

export interface DeploymentsOptions {
  readonly runtime: FunctionRuntime;
  readonly store: Store;
  readonly nodeId: string;
  readonly logger: Logger;
  /** @default Date.now */
  readonly now?: () => number;
}

const CURRENT_KEY = 'deployment\0current';
const DIR_KEY = 'deployment\0functions-dir';
/** Records are written with `append(doc, null, records)`; this names them in store errors. */
const RECORD_DOC = validateDocName('stateweave:deployments');

/** The bundles of one deploy call, each with the functions it defined (helper modules define none). */
const layerOf = (
  bundles: readonly SourceBundle[],
  deployed: readonly DeployedFunction[],
): DeploymentBundle[] =>
  bundles
    .map(({ file, code, scope }) => ({
      file,
      code,
      names: deployed.filter((d) => d.file === file && d.bundle.code === code).map((d) => d.name),
      ...(scope !== undefined && scope.join() !== NODE_WIDE.join() ? { scope } : {}),
    }))
    .filter((b) => b.names.length > 0);

export const createDeployments = (options: DeploymentsOptions): Deployments => {
  const { runtime, store, nodeId, logger } = options;
  const now = options.now ?? Date.now;
  let current: Deployment | undefined;
  /** Highest Lamport counter seen. */
  let clock = 0;
  let queue: Promise<unknown> = Promise.resolve();

  const serial = <T>(task: () => Promise<T>): Promise<T> => {
    const run = queue.then(task);
    // The caller gets the failure through `run`; the queue only needs to go on.
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  const readRecord = async (key: string): Promise<string | undefined> => {
    const bytes = await store.getRecord(key);
    return bytes === undefined ? undefined : new TextDecoder().decode(bytes);
  };

  const save = async (deployment: Deployment, dirId?: string): Promise<void> => {
    const encode = (value: string) => new TextEncoder().encode(value);
    const records = [{ key: CURRENT_KEY, value: encode(JSON.stringify(deployment)) }];
    if (dirId !== undefined) records.push({ key: DIR_KEY, value: encode(dirId) });
    try {
      await store.append(RECORD_DOC, null, records);
    } catch (err) {
      throw new StateweaveError(
        'STORE_FAILED',
        'the functions are deployed on this node but the deployment could not be stored',
        { cause: err },
      );
    }
  };

  const make = (layers: Deployment['layers'], ancestors: string[]): Deployment => {
    clock += 1;
    return {
      id: deploymentId(layers),
      counter: clock,
      deployedAt: now(),
      origin: nodeId,
      layers,
      ancestors,
    };
  };

  /**
   * Makes the runtime serve `target`: replays its layers in order, deploying only
   * bundles that are the final definition of a function not already running at
   * that version (so adopting a deployment does not flip current functions back
   * and forth while it is applied).
   */
  const apply = async (target: Deployment): Promise<void> => {
    const finalCode = new Map<string, string>();
    for (const layer of target.layers)
      for (const b of layer) for (const name of b.names) finalCode.set(name, b.code);
    for (const layer of target.layers) {
      const running = new Map(runtime.list().map((fn) => [fn.name, fn.bundle.code]));
      const needed = layer.filter((b) =>
        b.names.some((name) => finalCode.get(name) === b.code && running.get(name) !== b.code),
      );
      if (needed.length > 0)
        await runtime.deploy(
          needed.map(({ file, code, scope }) => ({ file, code, ...(scope ? { scope } : {}) })),
        );
    }
  };

  /** A deployment after the current one with these layers; undefined when it changes nothing. */
  const succeed = (layers: Deployment['layers']): Deployment | undefined => {
    const compacted = compactLayers(layers);
    return deploymentId(compacted) === current?.id
      ? undefined
      : make(compacted, ancestorsAfter(current));
  };

  return {
    current: () => current,

    observe(meta) {
      clock = Math.max(clock, meta.counter);
    },

    start: (dirBundles) =>
      serial(async () => {
        const raw = await readRecord(CURRENT_KEY);
        const stored = raw === undefined ? undefined : (JSON.parse(raw) as unknown);
        if (stored !== undefined && !isDeployment(stored))
          throw new Error('the stored function deployment is malformed');
        if (stored) {
          current = stored;
          clock = Math.max(clock, stored.counter);
        }
        const dirId =
          dirBundles &&
          deploymentId([dirBundles.map(({ file, code }) => ({ file, code, names: [] }))]);
        if (dirBundles && dirId && (!stored || (await readRecord(DIR_KEY)) !== dirId)) {
          // A changed directory replaces what was stored (the runtime is still empty here).
          const next = succeed([layerOf(dirBundles, await runtime.deploy(dirBundles))]);
          if (next) current = next;
          if (current) await save(current, dirId);
          logger.info(
            { deployment: current?.id, counter: current?.counter },
            'deployed the --functions directory',
          );
          return;
        }
        if (stored) {
          await apply(stored);
          logger.info(
            { deployment: stored.id, counter: stored.counter },
            'serving the stored function deployment',
          );
        }
      }),

    deploy: (bundles, scope = NODE_WIDE) =>
      serial(async () => {
        const scoped = bundles.map(({ file, code }) => ({ file, code, scope }));
        const running = new Map(runtime.list().map((fn) => [fn.name, fn]));
        const deployed = await runtime.deploy(scoped, (fns) =>
          checkDeploy(fns, (name) => running.get(name)),
        );
        const next = succeed([...(current?.layers ?? []), layerOf(scoped, deployed)]);
        if (next) {
          await save(next);
          current = next;
        }
        return { functions: deployed, deployment: current! };
      }),

    offer: (remote) =>
      serial(async () => {
        clock = Math.max(clock, remote.counter);
        if (!isNewer(remote, current))
          return { adopted: false, merged: false, current: current && metaOf(current) };
        // A successor of ours is taken as it is; one made without seeing ours keeps our other functions.
        const layers =
          current && !remote.ancestors.includes(current.id)
            ? mergeLayers(current.layers, remote.layers)
            : remote.layers;
        const next =
          deploymentId(layers) === remote.id
            ? remote
            : make(layers, ancestorsAfter(remote, current));
        await apply(next);
        await save(next);
        current = next;
        return { adopted: true, merged: next !== remote, current: metaOf(next) };
      }),
  };
};

export type { Deployment, DeploymentMeta };
