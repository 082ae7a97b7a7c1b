/**
 * Peer authentication: an HMAC-SHA256 over the dialer's node id, the receiver's
 * node id, a timestamp and a nonce, keyed with the peer secret (never the client
 * token secret). Mutual: the dialer proves itself in a request header, the
 * acceptor answers with a MAC over the dialer's nonce in a response header, so
 * a dialer never syncs with an impostor.
 *
 * A dial is accepted once: by the node it names, inside the clock window, with
 * a nonce not seen before (seen-nonces.ts) — a captured header cannot be
 * replayed, to this node or another. A dialer that does not know the
 * receiver's id yet (first contact with a URL) names `*`: the acceptor refuses
 * that dial but answers with its id, signed over the dialer's nonce, and the
 * dialer dials again naming it. No I/O; the clock is injected.
 */
import { randomBytes } from 'node:crypto';
import { StateweaveError } from '../errors.js';
import { freshTimestamp, peerMac, sameMac } from './peer-mac.js';
import { createSeenNonces } from './seen-nonces.js';

/** Request header carrying `v2.<fromNodeId>.<toNodeId or *>.<unixMs>.<nonce>.<mac>`. */
export const PEER_HEADER = 'x-stateweave-peer';
/** Response header carrying `<nodeId>.<mac over the dialer's nonce>`. */
export const PEER_ACK_HEADER = 'x-stateweave-peer-ack';

import { isNodeId, NODE_ID_PATTERN, type NodeId } from '../node-id.js';

export { NODE_ID_PATTERN };

export const MIN_PEER_SECRET_BYTES = 16;

/** The receiver named by a dialer that does not know it yet. */
export const ANY_RECEIVER = '*';

/** A refused dial; `reason` labels the refusal metric. */
export class PeerRefusal extends StateweaveError {
  constructor(
    readonly reason: 'invalid' | 'replayed' | 'receiver',
    why: string,
  ) {
    super('UNAUTHORIZED', `peer authentication failed: ${why}`);
  }
}

export interface PeerAuth {
  /** The header a dialer sends to `to` (ANY_RECEIVER when unknown), and the nonce its answer must cover. */
  dial(to: string): { header: string; nonce: string };
  /**
   * Verifies a dialer's header and records its nonce; returns the dialer's node id and
   * the receiver it named, or throws PeerRefusal. A dial naming another receiver (or `*`)
   * must be refused, answering with `ack(nonce)` so the dialer learns whom it reached.
   */
  verifyDial(header: string | undefined): { nodeId: NodeId; nonce: string; to: string };
  /** The acceptor's answer to a verified dial. */
  ack(nonce: string): string;
  /** Verifies the acceptor's answer; returns its node id or throws UNAUTHORIZED. */
  verifyAck(header: string | undefined, nonce: string): NodeId;
}

export interface PeerAuthOptions {
  readonly nodeId: NodeId;
  readonly secret: string;
  /** Accepted clock difference between nodes. @default 60000 */
  readonly maxSkewMs?: number;
  readonly now?: () => number;
}

const refuse = (why: string): PeerRefusal => new PeerRefusal('invalid', why);

export const createPeerAuth = (options: PeerAuthOptions): PeerAuth => {
  const { nodeId, secret } = options;
  const maxSkewMs = options.maxSkewMs ?? 60_000;
  const now = options.now ?? Date.now;
  const mac = (...parts: string[]): string => peerMac(secret, 'stateweave-peer-v2', parts);
  const seen = createSeenNonces({ windowMs: maxSkewMs, now });

  return {
    dial(to) {
      const nonce = randomBytes(16).toString('base64url');
      const ts = String(now());
      const signed = mac('dial', nodeId, to, ts, nonce);
      return { header: ['v2', nodeId, to, ts, nonce, signed].join('.'), nonce };
    },

    verifyDial(header) {
      if (header === undefined) throw refuse('no peer header');
      const [version, id, to, ts, nonce, given, ...rest] = header.split('.');
      if (
        version !== 'v2' ||
        id === undefined ||
        to === undefined ||
        ts === undefined ||
        nonce === undefined ||
        given === undefined ||
        rest.length > 0
      ) {
        throw refuse('malformed peer header');
      }
      // Where a peer's id enters the node: checked once, branded from here on.
      if (!isNodeId(id)) throw refuse('invalid node id');
      if (to !== ANY_RECEIVER && !NODE_ID_PATTERN.test(to)) throw refuse('invalid receiver id');
      if (!sameMac(given, mac('dial', id, to, ts, nonce)))
        throw refuse('bad signature (wrong peer secret?)');
      if (!freshTimestamp(ts, now(), maxSkewMs))
        throw refuse('timestamp outside the accepted clock skew');
      if (id === nodeId) throw refuse('a node cannot peer with itself (duplicate --node-id?)');
      if (!seen.claim(id, nonce, Number(ts)))
        throw new PeerRefusal('replayed', 'this dial was seen before (a replay)');
      return { nodeId: id, nonce, to };
    },

    ack(nonce) {
      return [nodeId, mac('ack', nodeId, nonce)].join('.');
    },

    verifyAck(header, nonce) {
      if (header === undefined) throw refuse('the peer sent no answer header');
      const [id, given, ...rest] = header.split('.');
      if (id === undefined || given === undefined || rest.length > 0 || !isNodeId(id))
        throw refuse('malformed answer header');
      if (!sameMac(given, mac('ack', id, nonce)))
        throw refuse('bad answer signature (wrong peer secret?)');
      if (id === nodeId) throw refuse('connected to itself');
      return id;
    },
  };
};
