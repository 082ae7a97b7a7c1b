/**
 * The client's token: a fixed `token`, or one fetched through `getToken` and
 * fetched again before it expires. A JWT's `exp` is read (not verified: that is
 * the node's job) to know when; an opaque token is kept until the node refuses it.
 */
import { StateweaveClientError } from './errors.js';

export interface TokenSourceOptions {
  readonly token?: string | undefined;
  readonly getToken?: (() => string | Promise<string>) | undefined;
  /** Refresh this long before `exp` (at most half the token's lifetime). */
  readonly refreshMarginMs: number;
  readonly now?: () => number;
}

export interface TokenSource {
  /** The token to connect with; fetches one if there is none or it is about to expire. */
  get(): Promise<string | undefined>;
  /** Forgets the current token (the node refused it); the next `get` fetches a new one. */
  invalidate(): void;
  /** true when a refused token can be replaced (there is a `getToken`). */
  readonly canRefresh: boolean;
  /**
   * Calls `listener` with each token fetched ahead of expiry. While anyone
   * listens, a timer refreshes the token at `exp - margin`.
   */
  subscribe(listener: (token: string) => void): () => void;
  /** Stops the refresh timer for good. */
  destroy(): void;
}

/** `exp` of a JWT in ms, or undefined for anything that is not a JWT with a numeric exp. */
export const jwtExpiryMs = (token: string): number | undefined => {
  const payload = token.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/');
    const json: unknown = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')));
    const exp = (json as { exp?: unknown } | null)?.exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined; // not base64 JSON: an opaque token
  }
};

const RETRY_AFTER_FAILURE_MS = 5_000;

export const createTokenSource = (options: TokenSourceOptions): TokenSource => {
  const now = options.now ?? Date.now;
  const { getToken } = options;
  let current = options.token;
  let refreshAt = Infinity;
  let inFlight: Promise<string> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let destroyed = false;
  const listeners = new Set<(token: string) => void>();

  const accept = (token: string): void => {
    current = token;
    const exp = jwtExpiryMs(token);
    if (exp === undefined) refreshAt = Infinity;
    else {
      const obtained = now();
      const lifetime = exp - obtained;
      refreshAt = obtained + Math.max(lifetime - options.refreshMarginMs, lifetime / 2);
    }
  };
  if (current !== undefined) accept(current);

  const fetchToken = (): Promise<string> => {
    if (!getToken)
      return Promise.reject(
        new StateweaveClientError(
          'TOKEN_FAILED',
          'the token was refused and there is no getToken to replace it',
        ),
      );
    inFlight ??= (async () => {
      try {
        let token: unknown;
        try {
          token = await getToken();
        } catch (err) {
          throw new StateweaveClientError(
            'TOKEN_FAILED',
            `getToken failed: ${(err as Error).message ?? String(err)}`,
            { cause: err },
          );
        }
        if (typeof token !== 'string' || token === '')
          throw new StateweaveClientError(
            'TOKEN_FAILED',
            'getToken must return a non-empty string',
          );
        accept(token);
        return token;
      } finally {
        inFlight = undefined;
      }
    })();
    return inFlight;
  };

  const arm = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (destroyed || !getToken || listeners.size === 0 || refreshAt === Infinity) return;
    timer = setTimeout(refreshAhead, Math.max(0, refreshAt - now()));
  };

  const refreshAhead = (): void => {
    timer = undefined;
    fetchToken().then(
      (token) => {
        if (destroyed) return;
        for (const listener of [...listeners]) listener(token);
        arm();
      },
      () => {
        // The connection path reports token failures; here, just try again later.
        if (destroyed || listeners.size === 0) return;
        timer = setTimeout(refreshAhead, RETRY_AFTER_FAILURE_MS);
      },
    );
  };

  return {
    async get() {
      if (current !== undefined && now() < refreshAt) return current;
      if (!getToken) return current; // a fixed token: the node decides whether it is still good
      const token = await fetchToken();
      arm();
      return token;
    },
    invalidate() {
      if (getToken) {
        current = undefined;
        refreshAt = Infinity;
      }
    },
    get canRefresh() {
      return getToken !== undefined;
    },
    subscribe(listener) {
      listeners.add(listener);
      arm();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) arm();
      };
    },
    destroy() {
      destroyed = true;
      listeners.clear();
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
};
