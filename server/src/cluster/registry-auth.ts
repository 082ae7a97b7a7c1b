/**
 * Signatures of the function-registry requests between nodes (push, pull), with
 * the peer secret. Pure: no I/O, the clock is injected.
 *
 * Request header `x-stateweave-registry: v1.<nodeId>.<unixMs>.<digest>.<mac>`:
 * `digest` is the SHA-256 of the body (base64url), `mac` an HMAC-SHA256 over
 * purpose (`<METHOD> <path>`), node id, time and digest. The header is checked
 * before the body is read (so a caller without the secret cannot make a node read
 * a large body), the digest once it has been. An answer carries the same header
 * with the purpose `answer <request mac>`: the caller knows the code it pulls
 * came from a node with the secret, for this very request.
 */
import { createHash } from 'node:crypto';
import { StateweaveError } from '../errors.js';
import { NODE_ID_PATTERN } from './peer-auth.js';
import { freshTimestamp, peerMac, sameMac } from './peer-mac.js';

export const REGISTRY_HEADER = 'x-stateweave-registry';

export interface SignedBy {
  readonly nodeId: string;
  readonly digest: string;
  readonly mac: string;
}

export interface RegistryAuth {
  /** The header for a request (`purpose` = `METHOD /path`) with this body ('' for none). */
  sign(purpose: string, body: string): string;
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
  const mac = (purpose: string, nodeId: string, ts: string, digest: string): string =>
    peerMac(options.secret, 'stateweave-registry-v1', [purpose, nodeId, ts, digest]);
  const header = (purpose: string, body: string): string => {
    const ts = String(now());
    const digest = digestOf(body);
    return ['v1', options.nodeId, ts, digest, mac(purpose, options.nodeId, ts, digest)].join('.');
  };
  const check = (value: string | undefined, purpose: string): SignedBy => {
    if (value === undefined) throw refuse('no signature');
    const [version, nodeId, ts, digest, given, ...rest] = value.split('.');
    if (
      version !== 'v1' ||
      nodeId === undefined ||
      ts === undefined ||
      digest === undefined ||
      given === undefined ||
      rest.length > 0
    ) {
      throw refuse('malformed signature');
    }
    if (!NODE_ID_PATTERN.test(nodeId)) throw refuse('invalid node id');
    if (!sameMac(given, mac(purpose, nodeId, ts, digest)))
      throw refuse('bad signature (wrong peer secret?)');
    if (!freshTimestamp(ts, now(), maxSkewMs))
      throw refuse('timestamp outside the accepted clock skew');
    return { nodeId, digest, mac: given };
  };
  const checkBody = (signed: SignedBy, body: string): void => {
    if (!sameMac(signed.digest, digestOf(body))) throw refuse('the body is not the one signed');
  };

  return {
    sign: header,
    verify: check,
    checkBody,
    signAnswer: (request, body) => header(`answer ${request.mac}`, body),
    verifyAnswer(value, requestHeader, body) {
      const requestMac = requestHeader.slice(requestHeader.lastIndexOf('.') + 1);
      checkBody(check(value, `answer ${requestMac}`), body);
    },
  };
};
