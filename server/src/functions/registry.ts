/**
 * The deployed functions of this node: name → current version, and every
 * version ever deployed (versions are immutable: the version is the hash of the
 * bundle's code). Deploying makes a new version current for new invocations; an
 * invocation already running keeps the version it started with.
 */
import { createHash } from 'node:crypto';
import type { Bundle } from './bundle-refs.js';
import type { Scope } from './scope.js';
import type { FunctionMeta } from './worker-protocol.js';

export interface DeployedFunction extends FunctionMeta {
  /** The documents it may touch, and who owns its name (scope.ts). */
  readonly scope: Scope;
  readonly version: string;
  readonly bundle: Bundle;
  /** The source file it came from. */
  readonly file: string;
  readonly deployedAt: number;
}

export interface Registry {
  get(name: string): DeployedFunction | undefined;
  /** Makes these definitions current; returns what changed version. */
  set(functions: readonly DeployedFunction[]): void;
  list(): DeployedFunction[];
  /** Every version of one function, oldest first. */
  versions(name: string): DeployedFunction[];
}

export const versionOf = (code: string): string =>
  createHash('sha256').update(code).digest('hex').slice(0, 16);

export const createRegistry = (): Registry => {
  const current = new Map<string, DeployedFunction>();
  const history = new Map<string, DeployedFunction[]>();
  return {
    get: (name) => current.get(name),
    set(functions) {
      for (const fn of functions) {
        current.set(fn.name, fn);
        const past = history.get(fn.name) ?? [];
        if (!past.some((p) => p.version === fn.version)) past.push(fn);
        history.set(fn.name, past);
      }
    },
    list: () => [...current.values()].sort((a, b) => a.name.localeCompare(b.name)),
    versions: (name) => [...(history.get(name) ?? [])],
  };
};
