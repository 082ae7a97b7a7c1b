/**
 * JWT verification (jose). A token grants `docs` (patterns) and `rights`
 * (read, write, invoke, admin) until `exp`, which is required. Algorithms are
 * pinned per key type, so `alg: none` and HS/RS confusion are refused.
 */
import * as jose from 'jose';
import { StateweaveError } from '../errors.js';
import { isRight, RIGHTS, type Grant, type Right } from './grant.js';
import { parseTtlSeconds, withinMaxTtl } from './token-ttl.js';

export interface TokenConfig {
  /** Shared secret for HS256 (at least 32 bytes). */
  readonly secret?: string;
  /** A PEM public key (SPKI) for RS256 / ES256 / EdDSA tokens. */
  readonly publicKey?: string;
  /** A JWKS URL whose keys verify RS256 / ES256 / EdDSA tokens. */
  readonly jwksUrl?: string;
  /** Required `iss`, when set. */
  readonly issuer?: string;
  /** Required `aud`, when set. */
  readonly audience?: string;
  /** Tokens whose `exp` lies further out than this are refused (UNAUTHORIZED). @default none */
  readonly maxTtlSeconds?: number;
}

export interface TokenVerifier {
  verify(token: string): Promise<Grant>;
}

const ASYMMETRIC = ['RS256', 'ES256', 'EdDSA'];
export const MIN_SECRET_BYTES = 32;

type KeySource = Parameters<typeof jose.jwtVerify>[1];

const keyFor = async (config: TokenConfig): Promise<{ key: KeySource; algorithms: string[] }> => {
  if (config.secret !== undefined) {
    const secret = new TextEncoder().encode(config.secret);
    if (secret.byteLength < MIN_SECRET_BYTES)
      throw new Error(`the token secret must be at least ${MIN_SECRET_BYTES} bytes`);
    return { key: secret, algorithms: ['HS256'] };
  }
  if (config.jwksUrl !== undefined)
    return { key: jose.createRemoteJWKSet(new URL(config.jwksUrl)), algorithms: ASYMMETRIC };
  if (config.publicKey !== undefined) {
    const pem = config.publicKey;
    // The PEM does not say which algorithm it is for; try each until one imports.
    for (const alg of ASYMMETRIC) {
      try {
        return { key: await jose.importSPKI(pem, alg), algorithms: [alg] };
      } catch {
        // not a key for this algorithm: try the next
      }
    }
    throw new Error('the public key is not an RSA, P-256 or Ed25519 SPKI PEM');
  }
  throw new Error('no token secret, public key or JWKS URL configured');
};

const claimsToGrant = (payload: jose.JWTPayload): Grant => {
  const { docs, rights, sub, exp } = payload as jose.JWTPayload & {
    docs?: unknown;
    rights?: unknown;
  };
  if (!Array.isArray(docs) || !docs.every((d) => typeof d === 'string' && d.length > 0)) {
    throw new StateweaveError(
      'UNAUTHORIZED',
      'token has no valid "docs" claim (an array of document patterns)',
    );
  }
  if (!Array.isArray(rights) || !rights.every(isRight)) {
    throw new StateweaveError(
      'UNAUTHORIZED',
      `token "rights" must be an array of ${RIGHTS.join(', ')}`,
    );
  }
  return {
    subject: typeof sub === 'string' ? sub : 'token',
    docs: docs as string[],
    rights: new Set<Right>(rights as Right[]),
    ...(exp !== undefined ? { expiresAt: exp * 1000 } : {}),
  };
};

export const createTokenVerifier = async (config: TokenConfig): Promise<TokenVerifier> => {
  const { key, algorithms } = await keyFor(config);
  const options: jose.JWTVerifyOptions = {
    algorithms,
    requiredClaims: ['exp'],
    ...(config.issuer !== undefined ? { issuer: config.issuer } : {}),
    ...(config.audience !== undefined ? { audience: config.audience } : {}),
  };
  return {
    async verify(token) {
      try {
        // jose's overloads differ for keys and key sets; both are valid here.
        const { payload } = await jose.jwtVerify(token, key as Uint8Array, options);
        const { maxTtlSeconds } = config;
        if (
          maxTtlSeconds !== undefined &&
          payload.exp !== undefined &&
          !withinMaxTtl(payload.exp, maxTtlSeconds)
        )
          throw new StateweaveError(
            'UNAUTHORIZED',
            `token lives longer than the node accepts (${maxTtlSeconds} s)`,
          );
        return claimsToGrant(payload);
      } catch (err) {
        if (err instanceof StateweaveError) throw err;
        if (err instanceof jose.errors.JWTExpired)
          throw new StateweaveError('TOKEN_EXPIRED', 'token expired', { cause: err });
        const reason = err instanceof jose.errors.JOSEError ? err.code : 'malformed';
        throw new StateweaveError('UNAUTHORIZED', `invalid token (${reason})`, { cause: err });
      }
    },
  };
};

export interface MintOptions {
  readonly secret: string;
  readonly docs: readonly string[];
  readonly rights: readonly Right[];
  /** Lifetime, e.g. '1h', '15m' or seconds. @default '1h' */
  readonly ttl?: string | number;
  readonly subject?: string;
  /** Refuse (throw) a `ttl` longer than this. @default none */
  readonly maxTtlSeconds?: number;
}

/** Mints an HS256 token (for `stateweave token`, tests, and development). */
export const mintToken = (options: MintOptions): Promise<string> => {
  const jwt = new jose.SignJWT({ docs: [...options.docs], rights: [...options.rights] })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt();
  const ttl = options.ttl ?? '1h';
  if (options.maxTtlSeconds !== undefined) {
    const seconds = typeof ttl === 'number' ? ttl : parseTtlSeconds(ttl);
    if (seconds > options.maxTtlSeconds)
      return Promise.reject(
        new Error(`a ttl of ${seconds} s is longer than the maximum of ${options.maxTtlSeconds} s`),
      );
  }
  jwt.setExpirationTime(typeof ttl === 'number' ? Math.floor(Date.now() / 1000) + ttl : ttl);
  if (options.subject !== undefined) jwt.setSubject(options.subject);
  return jwt.sign(new TextEncoder().encode(options.secret));
};
