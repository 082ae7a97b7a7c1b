/**
 * Signatures of the function-registry requests between nodes (push, pull), with
 * the peer secret. Pure: no I/O, the clock is injected.
 *
 * Request header `x-stateweave-registry: v2.<from>.<to>.<unixMs>.<nonce>.<digest>.<mac>`:
 * `digest` is the SHA-256 of the body (base64url), `mac` an HMAC-SHA256 over
 * purpose (`<METHOD> <path>`), sender and receiver node ids, time, nonce and
 * digest. A node accepts a header only when it names this node, inside the clock
 * window, once (seen-nonces.ts): a captured request cannot be replayed. The header is checked
 * before the body is read (so a caller without the secret cannot make a node read
 * a large body), the digest once it has been. An answer carries the same header
 * with the purpose `answer <request mac>`: the caller knows the code it pulls
 * came from a node with the secret, for this very request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { StateweaveError } from '../errors.js';
import { NODE_ID_PATTERN } from './peer-auth.js';
import { freshTimestamp, peerMac, sameMac } from './peer-mac.js';
import { createSeenNonces } from './seen-nonces.js';

export const REGISTRY_HEADER = 'x-stateweave-registry';

export interface SignedBy {
  readonly nodeId: string;
  readonly digest: string;
  readonly mac: string;
}

export interface RegistryAuth {
  /** The header for a request (`purpose` = `METHOD /path`) to node `to` with this body ('' for none). */
  sign(purpose: string, body: string, to: string): string;
  /** Checks a request header (not yet the body); throws UNAUTHORIZED. */
  verify(header: string | undefined, purpose: string): SignedBy;
  /** Checks that the body read is the one the verified header signed; throws UNAUTHORIZED. */
  checkBody(signed: SignedBy, body: string): void;
  /** The header for the answer to a verified request. */
  signAnswer(request: SignedBy, body: string): string;
  /** Checks an answer to the request we signed with `requestHeader`; throws UNAUTHORIZED. */
  verifyAnswer(header: string | undefined, requestHeader: string, body: string): void;
}

export interface RegistryAuthOptions {
  readonly nodeId: string;
  readonly secret: string;
  /** Accepted clock difference between nodes. @default 60000 */
  readonly maxSkewMs?: number;
  readonly now?: () => number;
}

const refuse = (why: string): StateweaveError =>
  new StateweaveError('UNAUTHORIZED', `registry request refused: ${why}`);
const digestOf = (body: string): string => createHash('sha256').update(body).digest('base64url');

export const createRegistryAuth = (options: RegistryAuthOptions): RegistryAuth => {
  const maxSkewMs = options.maxSkewMs ?? 60_000;
  const now = options.now ?? Date.now;
  const seen = createSeenNonces({ windowMs: maxSkewMs, now });
  const mac = (purpose: string, envelope: readonly string[], digest: string): string =>
    peerMac(options.secret, 'stateweave-registry-v2', [purpose, ...envelope, digest]);
  const header = (purpose: string, body: string, to: string): string => {
    const envelope = [options.nodeId, to, String(now()), randomBytes(16).toString('base64url')];
    const digest = digestOf(body);
    return ['v2', ...envelope, digest, mac(purpose, envelope, digest)].join('.');
  };
  const check = (value: string | undefined, purpose: string): SignedBy => {
    if (value === undefined) throw refuse('no signature');
    const [version, nodeId, to, ts, nonce, digest, given, ...rest] = value.split('.');
    if (
      version !== 'v2' ||
      nodeId === undefined ||
      to === undefined ||
      ts === undefined ||
      nonce === undefined ||
      digest === undefined ||
      given === undefined ||
      rest.length > 0
    ) {
      throw refuse('malformed signature');
    }
    if (!NODE_ID_PATTERN.test(nodeId)) throw refuse('invalid node id');
    if (!sameMac(given, mac(purpose, [nodeId, to, ts, nonce], digest)))
      throw refuse('bad signature (wrong peer secret?)');
    if (!freshTimestamp(ts, now(), maxSkewMs))
      throw refuse('timestamp outside the accepted clock skew');
    if (to !== options.nodeId) throw refuse(`signed for another node (${to})`);
    if (!seen.claim(nodeId, nonce, Number(ts))) throw refuse('seen before (a replay)');
    return { nodeId, digest, mac: given };
  };
  const checkBody = (signed: SignedBy, body: string): void => {
    if (!sameMac(signed.digest, digestOf(body))) throw refuse('the body is not the one signed');
  };

  return {
    sign: header,
    verify: check,
    checkBody,
    signAnswer: (request, body) => header(`answer ${request.mac}`, body, request.nodeId),
    verifyAnswer(value, requestHeader, body) {
      const requestMac = requestHeader.slice(requestHeader.lastIndexOf('.') + 1);
      checkBody(check(value, `answer ${requestMac}`), body);
    },
  };
};
