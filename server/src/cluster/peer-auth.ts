/**
 * Peer authentication: an HMAC-SHA256 over the node id, a timestamp and a nonce,
 * keyed with the peer secret (never the client token secret). Mutual: the dialer
 * proves itself in a request header, the acceptor answers with a MAC over the
 * dialer's nonce in a response header, so a dialer never syncs with an impostor.
 * Pure: no I/O, the clock is injected.
 */
import { randomBytes } from 'node:crypto';
import { StateweaveError } from '../errors.js';
import { freshTimestamp, peerMac, sameMac } from './peer-mac.js';

/** Request header carrying `v1.<nodeId>.<unixMs>.<nonce>.<mac>`. */
export const PEER_HEADER = 'x-stateweave-peer';
/** Response header carrying `<nodeId>.<mac over the dialer's nonce>`. */
export const PEER_ACK_HEADER = 'x-stateweave-peer-ack';

/** Node ids appear in headers and metric labels: keep them short and plain. */
export const NODE_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

export const MIN_PEER_SECRET_BYTES = 16;

export interface PeerAuth {
  /** The header value a dialer sends, and the nonce its answer must cover. */
  dial(): { header: string; nonce: string };
  /** Verifies a dialer's header; returns its node id or throws UNAUTHORIZED. */
  verifyDial(header: string | undefined): { nodeId: string; nonce: string };
  /** The acceptor's answer to a verified dial. */
  ack(nonce: string): string;
  /** Verifies the acceptor's answer; returns its node id or throws UNAUTHORIZED. */
  verifyAck(header: string | undefined, nonce: string): string;
}

export interface PeerAuthOptions {
  readonly nodeId: string;
  readonly secret: string;
  /** Accepted clock difference between nodes. @default 60000 */
  readonly maxSkewMs?: number;
  readonly now?: () => number;
}

const refuse = (why: string): StateweaveError =>
  new StateweaveError('UNAUTHORIZED', `peer authentication failed: ${why}`);

export const createPeerAuth = (options: PeerAuthOptions): PeerAuth => {
  const { nodeId, secret } = options;
  const maxSkewMs = options.maxSkewMs ?? 60_000;
  const now = options.now ?? Date.now;
  const mac = (...parts: string[]): string => peerMac(secret, 'stateweave-peer-v1', parts);

  return {
    dial() {
      const nonce = randomBytes(16).toString('base64url');
      const ts = String(now());
      return { header: ['v1', nodeId, ts, nonce, mac('dial', nodeId, ts, nonce)].join('.'), nonce };
    },

    verifyDial(header) {
      if (header === undefined) throw refuse('no peer header');
      const [version, id, ts, nonce, given, ...rest] = header.split('.');
      if (
        version !== 'v1' ||
        id === undefined ||
        ts === undefined ||
        nonce === undefined ||
        given === undefined ||
        rest.length > 0
      ) {
        throw refuse('malformed peer header');
      }
      if (!NODE_ID_PATTERN.test(id)) throw refuse('invalid node id');
      if (!sameMac(given, mac('dial', id, ts, nonce)))
        throw refuse('bad signature (wrong peer secret?)');
      if (!freshTimestamp(ts, now(), maxSkewMs))
        throw refuse('timestamp outside the accepted clock skew');
      if (id === nodeId) throw refuse('a node cannot peer with itself (duplicate --node-id?)');
      return { nodeId: id, nonce };
    },

    ack(nonce) {
      return [nodeId, mac('ack', nodeId, nonce)].join('.');
    },

    verifyAck(header, nonce) {
      if (header === undefined) throw refuse('the peer sent no answer header');
      const [id, given, ...rest] = header.split('.');
      if (id === undefined || given === undefined || rest.length > 0 || !NODE_ID_PATTERN.test(id))
        throw refuse('malformed answer header');
      if (!sameMac(given, mac('ack', id, nonce)))
        throw refuse('bad answer signature (wrong peer secret?)');
      if (id === nodeId) throw refuse('connected to itself');
      return id;
    },
  };
};
