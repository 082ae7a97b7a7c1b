/**
 * Deploy scopes: which documents a deployment's functions may touch, and who
 * owns a function's name.
 *
 * A deploy's scope is the deployer's document patterns (the `admin` right of a
 * token covers all of its patterns). Every document a function works on — what
 * `doc(input)` / `docs(input)` name at run time, what `ctx.read` asks for, what
 * `on` matches — must lie inside its scope. A function's name belongs to the
 * scope that deployed it: a later deploy may replace it only if the new scope
 * covers the old one, so one tenant cannot replace another's function, and a
 * name first deployed node-wide (`*`) can only be replaced with admin on `*`.
 * Functions deployed from `--functions DIR` at start are node-wide.
 */
import { matchesDoc, type Grant } from '../auth/grant.js';
import { StateweaveError } from '../errors.js';

/** Document patterns, sorted; `['*']` is node-wide. */
export type Scope = readonly string[];

export const NODE_WIDE: Scope = Object.freeze(['*']);

/** The scope of a deploy by this caller: its document patterns. */
export const scopeOf = (grant: Grant): Scope =>
  grant.docs.includes('*') ? NODE_WIDE : [...new Set(grant.docs)].sort();

/** True when every document `inner` matches is matched by `outer` (patterns as in grant.ts). */
export const patternWithin = (inner: string, outer: string): boolean => {
  if (outer === '*') return true;
  if (inner === '*') return false;
  if (outer.endsWith('/*')) return inner.startsWith(outer.slice(0, -1));
  return inner === outer;
};

export const scopeWithin = (inner: Scope, outer: Scope): boolean =>
  inner.every((p) => outer.some((q) => patternWithin(p, q)));

export const scopeCovers = (scope: Scope, doc: string): boolean =>
  scope.some((pattern) => matchesDoc(pattern, doc));

/** Throws FORBIDDEN unless the function's scope covers the document. */
export const requireInScope = (fn: { name: string; scope: Scope }, doc: string): void => {
  if (!scopeCovers(fn.scope, doc))
    throw new StateweaveError(
      'FORBIDDEN',
      `function ${fn.name} was deployed for ${fn.scope.join(', ')} and may not touch ${JSON.stringify(doc)}`,
    );
};

/** What a deploy check needs to know of a function. */
export interface ScopedFunction {
  readonly name: string;
  readonly on: string | undefined;
  readonly scope: Scope;
}

/**
 * Refuses a deploy whose trigger patterns leave its scope (DEPLOY_OUT_OF_SCOPE)
 * or that would replace a function of a scope it does not cover (FUNCTION_NAME_TAKEN).
 */
export const checkDeploy = (
  functions: readonly ScopedFunction[],
  current: (name: string) => ScopedFunction | undefined,
): void => {
  for (const fn of functions) {
    if (fn.on !== undefined && !fn.scope.some((p) => patternWithin(fn.on!, p)))
      throw new StateweaveError(
        'DEPLOY_OUT_OF_SCOPE',
        `${fn.name}: on ${JSON.stringify(fn.on)} reaches outside the deployer's documents (${fn.scope.join(', ')})`,
      );
    const owner = current(fn.name);
    if (owner && !scopeWithin(owner.scope, fn.scope))
      throw new StateweaveError(
        'FUNCTION_NAME_TAKEN',
        `function ${fn.name} belongs to ${owner.scope.join(', ')}; this deployer covers ${fn.scope.join(', ')}`,
      );
  }
};
