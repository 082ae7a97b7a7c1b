/**
 * A deployment's code goes to a worker once: the first task that needs a version
 * carries its code, later ones only name it (the worker keeps it).
 */
import type { BundleRef } from './worker-protocol.js';

/** One deployment version's compiled code. */
export interface Bundle {
  readonly version: string;
  readonly code: string;
}

/** `bundle` for a worker that has loaded `loaded`: its code only when that lacks the version. */
export const bundleRef = (loaded: ReadonlySet<string>, bundle: Bundle): BundleRef =>
  loaded.has(bundle.version)
    ? { version: bundle.version }
    : { version: bundle.version, code: bundle.code };

/** The bundles a task needs, once per version. */
export const bundleRefs = (loaded: ReadonlySet<string>, bundles: Iterable<Bundle>): BundleRef[] => {
  const refs = new Map<string, BundleRef>();
  for (const bundle of bundles)
    if (!refs.has(bundle.version)) refs.set(bundle.version, bundleRef(loaded, bundle));
  return [...refs.values()];
};
