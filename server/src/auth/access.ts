/**
 * Who gets in. Three modes, chosen by the operator's configuration:
 * - development: no secret, key or JWKS configured → everyone may do everything
 *   (the node logs this loudly at start);
 * - token: a valid token is required, unless `anonymous` rights are configured,
 *   in which case a request without a token gets those rights (on every document);
 * - a request *with* a token is always verified: a bad token is never downgraded
 *   to anonymous.
 */
import { StateweaveError } from '../errors.js';
import { DEV_GRANT, matchesDoc, type Grant, type Right } from './grant.js';
import { createTokenVerifier, type TokenConfig, type TokenVerifier } from './tokens.js';
import { cacheVerifiedTokens } from './token-cache.js';

export interface AccessConfig extends TokenConfig {
  /** Rights of a caller without a token on a node that has keys. @default [] (closed) */
  readonly anonymous?: readonly Right[];
}

export interface AccessPolicy {
  readonly mode: 'development' | 'token';
  /** The grant for a token (or for no token); throws UNAUTHORIZED / TOKEN_EXPIRED. */
  authenticate(token: string | undefined): Promise<Grant>;
}

export const hasKeys = (config: TokenConfig): boolean =>
  config.secret !== undefined || config.publicKey !== undefined || config.jwksUrl !== undefined;

export const createAccessPolicy = async (config: AccessConfig = {}): Promise<AccessPolicy> => {
  if (!hasKeys(config)) {
    return { mode: 'development', authenticate: () => Promise.resolve(DEV_GRANT) };
  }
  const verifier: TokenVerifier = cacheVerifiedTokens(await createTokenVerifier(config));
  const anonymous: Grant | undefined =
    config.anonymous && config.anonymous.length > 0
      ? { subject: 'anonymous', docs: ['*'], rights: new Set(config.anonymous) }
      : undefined;
  return {
    mode: 'token',
    authenticate(token) {
      if (token === undefined || token === '') {
        if (anonymous) return Promise.resolve(anonymous);
        return Promise.reject(new StateweaveError('UNAUTHORIZED', 'a token is required'));
      }
      return verifier.verify(token);
    },
  };
};

/** Throws FORBIDDEN unless the grant holds `right` on `doc` (and is not expired). */
export const requireRight = (grant: Grant, right: Right, doc?: string, now = Date.now()): void => {
  if (grant.expiresAt !== undefined && grant.expiresAt <= now)
    throw new StateweaveError('TOKEN_EXPIRED');
  if (!grant.rights.has(right))
    throw new StateweaveError('FORBIDDEN', `token lacks the "${right}" right`);
  if (doc !== undefined && !grant.docs.some((pattern) => matchesDoc(pattern, doc))) {
    throw new StateweaveError('FORBIDDEN', `token does not cover document ${JSON.stringify(doc)}`);
  }
};

/** Whether the grant holds `right` on `doc` now (for filtering, where a refusal is no error). */
export const hasRight = (grant: Grant, right: Right, doc: string, now = Date.now()): boolean =>
  (grant.expiresAt === undefined || grant.expiresAt > now) &&
  grant.rights.has(right) &&
  grant.docs.some((pattern) => matchesDoc(pattern, doc));
