/**
 * Forwarding an `owner` invocation to the document's primary node over HTTP.
 * The primary runs it (one at a time, with the idempotency record), so
 * check-then-act invariants hold cluster-wide while the primary is reachable.
 *
 * A forwarded request carries `x-stateweave-forwarded:
 * v2.<fromNode>.<toNode>.<unixMs>.<nonce>.<mac>`, an HMAC (peer secret) over
 * sender, receiver, time, nonce, function name, idempotency key and body: the
 * primary runs it locally instead of forwarding again, and a client cannot forge
 * the header to run an `owner` function on a node that is not the primary. The
 * primary accepts it once, inside the clock window, and only when it names this
 * node: a captured forwarded call cannot be run again (seen-nonces.ts).
 */
import { randomBytes } from 'node:crypto';
import { ERRORS, StateweaveError, type ErrorCode } from '../errors.js';
import { NODE_ID_PATTERN } from './peer-auth.js';
import { freshTimestamp, peerMac, sameMac } from './peer-mac.js';
import { createSeenNonces } from './seen-nonces.js';

export const FORWARDED_HEADER = 'x-stateweave-forwarded';

/** The HTTP base URL of a node from its peer (WebSocket) URL. */
export const httpBaseOf = (peerUrl: string): string => peerUrl.replace(/^ws(s?):\/\//, 'http$1://');

export interface ForwardRequest {
  readonly name: string;
  readonly body: string;
  readonly idempotencyKey?: string;
  readonly authorization?: string;
}

export interface ForwardResponse {
  readonly json: string;
  readonly replayed: boolean;
  readonly version: string;
}

export interface Forwarder {
  /** Runs the request on `nodeId`; throws its error, or PRIMARY_UNREACHABLE. */
  forward(nodeId: string, request: ForwardRequest): Promise<ForwardResponse>;
  /** True when `header` is a valid forwarding signature for this request, to this node, not seen before. */
  verify(header: string, request: ForwardRequest): boolean;
  /** A peer's HTTP base URL: from its `--peers` entry, or discovered as in `forward`; undefined when unknown. */
  addressOf(nodeId: string): Promise<string | undefined>;
}

export interface ForwarderOptions {
  readonly nodeId: string;
  readonly secret: string;
  readonly httpUrlOf: (nodeId: string) => string | undefined;
  /**
   * HTTP base URLs of the configured peers. A node that only ever accepted a
   * peer's dial does not know which URL is that peer; it asks each URL's
   * `/v1/cluster` for its node id once and remembers the answer.
   */
  readonly peerUrls?: readonly string[];
  /** How long to wait for the primary. @default 30000 */
  readonly timeoutMs?: number;
  /** Accepted clock difference between nodes. @default 60000 */
  readonly maxSkewMs?: number;
  readonly now?: () => number;
}

const isCode = (code: unknown): code is ErrorCode =>
  typeof code === 'string' && Object.hasOwn(ERRORS, code);

export const createForwarder = (options: ForwarderOptions): Forwarder => {
  const discovered = new Map<string, string>();

  const discover = async (nodeId: string): Promise<string | undefined> => {
    for (const base of options.peerUrls ?? []) {
      if ([...discovered.values()].includes(base)) continue;
      try {
        const res = await fetch(`${base}/v1/cluster`, { signal: AbortSignal.timeout(2000) });
        const id = ((await res.json()) as { nodeId?: unknown }).nodeId;
        if (typeof id === 'string') discovered.set(id, base);
      } catch {
        continue; // that peer is down: it cannot be the one we need to reach anyway
      }
      if (discovered.has(nodeId)) break;
    }
    return discovered.get(nodeId);
  };

  const maxSkewMs = options.maxSkewMs ?? 60_000;
  const now = options.now ?? Date.now;
  const seen = createSeenNonces({ windowMs: maxSkewMs, now });
  const mac = (envelope: readonly string[], request: ForwardRequest): string =>
    peerMac(options.secret, 'forward-v2', [
      ...envelope,
      request.name,
      request.idempotencyKey ?? '',
      request.body,
    ]);
  const sign = (to: string, request: ForwardRequest): string => {
    const envelope = [options.nodeId, to, String(now()), randomBytes(16).toString('base64url')];
    return ['v2', ...envelope, mac(envelope, request)].join('.');
  };

  return {
    async forward(nodeId, request) {
      const base = options.httpUrlOf(nodeId) ?? discovered.get(nodeId) ?? (await discover(nodeId));
      if (base === undefined)
        throw new StateweaveError('PRIMARY_UNREACHABLE', `no address for node ${nodeId}`);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        [FORWARDED_HEADER]: sign(nodeId, request),
      };
      if (request.authorization !== undefined) headers.authorization = request.authorization;
      if (request.idempotencyKey !== undefined) headers['idempotency-key'] = request.idempotencyKey;
      let res: Response;
      try {
        res = await fetch(`${base}/v1/functions/${encodeURIComponent(request.name)}/invoke`, {
          method: 'POST',
          headers,
          body: request.body,
          signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
        });
      } catch (err) {
        // Whether it ran there is unknown: the caller retries (with its idempotency key).
        throw new StateweaveError('PRIMARY_UNREACHABLE', `primary ${nodeId} did not answer`, {
          cause: err,
        });
      }
      const text = await res.text();
      if (res.ok) {
        return {
          json: text,
          replayed: res.headers.get('idempotent-replayed') === 'true',
          version: res.headers.get('stateweave-function-version') ?? '',
        };
      }
      let error: { code?: unknown; message?: unknown } | undefined;
      try {
        error = (JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }).error;
      } catch {
        error = undefined; // not our JSON: report the status below
      }
      if (isCode(error?.code))
        throw new StateweaveError(
          error.code,
          typeof error.message === 'string' ? error.message : ERRORS[error.code].summary,
        );
      throw new StateweaveError('PRIMARY_UNREACHABLE', `primary ${nodeId} answered ${res.status}`);
    },

    addressOf: async (nodeId) =>
      options.httpUrlOf(nodeId) ?? discovered.get(nodeId) ?? (await discover(nodeId)),

    verify(header, request) {
      const [version, from, to, ts, nonce, given, ...rest] = header.split('.');
      if (version !== 'v2' || given === undefined || rest.length > 0) return false;
      const envelope = [from!, to!, ts!, nonce!];
      return (
        NODE_ID_PATTERN.test(from!) &&
        to === options.nodeId &&
        sameMac(given, mac(envelope, request)) &&
        freshTimestamp(ts!, now(), maxSkewMs) &&
        seen.claim(from!, nonce!, Number(ts))
      );
    },
  };
};
