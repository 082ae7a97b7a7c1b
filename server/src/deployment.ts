/**
 * A function deployment as the cluster compares and ships it (the mesh's
 * registry-sync.ts, a backplane's record) and functions/deployments.ts keeps it.
 * Pure: no I/O.
 *
 * A node's functions are the result of its deploy calls, and a deploy only adds
 * or replaces functions by name (the runtime never removes one). So a
 * deployment is the list of deploy calls ("layers", oldest first) that rebuilds
 * the node's functions when replayed, with every bundle that no longer supplies
 * any current function dropped (`compactLayers`).
 *
 * Order: the higher Lamport `counter` is newer (a node deploys with one more
 * than the highest counter it has seen, so a deploy made after seeing another
 * always beats it); equal counters (concurrent deploys) fall back to the wall
 * clock `deployedAt`, then to the id, so every node picks the same winner.
 * Equal ids mean the same functions, whatever the counters say.
 *
 * `ancestors` tells a successor from a concurrent deployment: a node that adopts
 * a newer deployment whose ancestors include its own takes it as it is (it may
 * have removed functions: a changed `--functions` directory at start); a newer
 * one made without seeing ours is merged with ours (`mergeLayers`).
 */
import { createHash } from 'node:crypto';
import { NODE_ID_PATTERN } from './node-id.js';

/** One module of a deployment: its CommonJS bundle and the functions it defines. */
export interface DeploymentBundle {
  readonly file: string;
  readonly code: string;
  readonly names: readonly string[];
  /** Document patterns its functions may touch (functions/scope.ts); absent: node-wide. */
  readonly scope?: readonly string[];
}

/** Which deployment a node serves, without the code. */
export interface DeploymentMeta {
  /** Hash of the layers (files and code, in order). */
  readonly id: string;
  /** Lamport counter: one more than the highest the deploying node had seen. */
  readonly counter: number;
  /** Wall clock (ms) of the deploy: the tie-break between concurrent deploys. */
  readonly deployedAt: number;
  /** The node that made it (accepted the deploy, started with `--functions`, or merged). */
  readonly origin: string;
}

export interface Deployment extends DeploymentMeta {
  /** Deploy calls, oldest first; replaying them in order rebuilds the functions. */
  readonly layers: readonly (readonly DeploymentBundle[])[];
  /** Ids of the deployments this one was made on top of, newest first (at most `MAX_ANCESTORS`). */
  readonly ancestors: readonly string[];
}

export const MAX_ANCESTORS = 64;

/** The ancestry of a deployment made on top of `parents`. */
export const ancestorsAfter = (...parents: Array<Deployment | undefined>): string[] => {
  const ids = new Set<string>();
  for (const p of parents) if (p) ids.add(p.id);
  for (const p of parents) for (const id of p?.ancestors ?? []) ids.add(id);
  return [...ids].slice(0, MAX_ANCESTORS);
};

export const metaOf = (d: DeploymentMeta): DeploymentMeta => ({
  id: d.id,
  counter: d.counter,
  deployedAt: d.deployedAt,
  origin: d.origin,
});

export const deploymentId = (layers: Deployment['layers']): string => {
  const hash = createHash('sha256');
  for (const layer of layers) {
    hash.update('layer\n');
    for (const b of layer) {
      // A scope is hashed only when present, so unscoped deployments keep their ids.
      const scope = b.scope === undefined ? '' : `\0${b.scope.join('\0')}`;
      hash.update(`${b.file}\0${createHash('sha256').update(b.code).digest('hex')}${scope}\n`);
    }
  }
  return hash.digest('hex').slice(0, 32);
};

/** Sign of a − b in the deployment order (see the file comment); `undefined` is the oldest. */
export const compareDeployments = (
  a: DeploymentMeta | undefined,
  b: DeploymentMeta | undefined,
): number => {
  if (a === undefined || b === undefined) return a === b ? 0 : a === undefined ? -1 : 1;
  if (a.id === b.id) return 0;
  if (a.counter !== b.counter) return a.counter < b.counter ? -1 : 1;
  if (a.deployedAt !== b.deployedAt) return a.deployedAt < b.deployedAt ? -1 : 1;
  return a.id < b.id ? -1 : 1;
};

/** True when `candidate` has other functions than `current` and wins the order. */
export const isNewer = (
  candidate: DeploymentMeta | undefined,
  current: DeploymentMeta | undefined,
): boolean => compareDeployments(candidate, current) > 0;

/** Drops every bundle whose functions are all defined again by a later layer, then empty layers. */
export const compactLayers = (layers: Deployment['layers']): DeploymentBundle[][] => {
  const later = new Set<string>();
  const kept: DeploymentBundle[][] = [];
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] ?? [];
    const live = layer.filter((b) => b.names.some((name) => !later.has(name)));
    for (const b of layer) for (const name of b.names) later.add(name);
    if (live.length > 0) kept.unshift(live);
  }
  return kept;
};

export const namesOf = (layers: Deployment['layers']): Set<string> =>
  new Set(layers.flatMap((l) => l.flatMap((b) => b.names)));

/**
 * `older`'s functions that `newer` lacks, kept under `newer`: the bundles of
 * `older` that define such a name (in their order), then all of `newer`, which
 * overrides every name it defines. Deploys only add, so merging is what the
 * node that received both would hold anyway.
 */
export const mergeLayers = (
  older: Deployment['layers'],
  newer: Deployment['layers'],
): DeploymentBundle[][] => {
  const names = namesOf(newer);
  const extra = older.map((layer) => layer.filter((b) => b.names.some((name) => !names.has(name))));
  return compactLayers([...extra, ...newer]);
};

const isString = (v: unknown): v is string => typeof v === 'string';
const isBundle = (v: unknown): v is DeploymentBundle => {
  const b = v as Partial<DeploymentBundle> | null;
  return (
    isString(b?.file) &&
    isString(b?.code) &&
    Array.isArray(b?.names) &&
    b.names.length > 0 &&
    b.names.every(isString) &&
    (b.scope === undefined ||
      (Array.isArray(b.scope) && b.scope.length > 0 && b.scope.every(isString)))
  );
};

export const isDeploymentMeta = (v: unknown): v is DeploymentMeta => {
  const d = v as Partial<DeploymentMeta> | null;
  return (
    isString(d?.id) &&
    Number.isSafeInteger(d?.counter) &&
    (d?.counter ?? 0) > 0 &&
    Number.isFinite(d?.deployedAt) &&
    isString(d?.origin) &&
    NODE_ID_PATTERN.test(d.origin)
  );
};

/** Checks a deployment that came over the wire or from the store, including that its id matches its code. */
export const isDeployment = (v: unknown): v is Deployment => {
  if (!isDeploymentMeta(v)) return false;
  const layers = (v as { layers?: unknown }).layers;
  const ancestors = (v as { ancestors?: unknown }).ancestors;
  return (
    Array.isArray(ancestors) &&
    ancestors.length <= MAX_ANCESTORS &&
    ancestors.every(isString) &&
    Array.isArray(layers) &&
    layers.every(
      (layer: unknown) => Array.isArray(layer) && layer.length > 0 && layer.every(isBundle),
    ) &&
    deploymentId(layers as Deployment['layers']) === v.id
  );
};
