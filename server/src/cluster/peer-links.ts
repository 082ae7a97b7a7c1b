/**
 * Peer links: at most one authenticated WebSocket per pair of nodes, whoever
 * dialed it. Every node dials every configured peer URL (with backoff) and
 * accepts peers on the same port; when both directions connect, both ends keep
 * the socket dialed by the node whose id sorts first and close the other, so
 * the choice needs no extra messages. A link that is down only stops
 * replication: sends to it are dropped (the next sync catches up), never queued
 * in front of local clients.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { StateweaveError, toStateweaveError } from '../errors.js';
import { refuseUpgrade } from '../refuse-upgrade.js';
import type { Logger } from '../log.js';
import type { NodeId } from '../node-id.js';
import { createBackoff, type Backoff } from './backoff.js';
import { LINK_STATE_VALUE, type ClusterMetrics } from './cluster-metrics.js';
import {
  ANY_RECEIVER,
  PEER_ACK_HEADER,
  PEER_HEADER,
  PeerRefusal,
  type PeerAuth,
} from './peer-auth.js';

export type LinkState = 'connected' | 'connecting' | 'down';

export interface PeerStatus {
  /** Unknown until the first connection to a configured URL. */
  readonly nodeId: NodeId | undefined;
  readonly url: string | undefined;
  readonly state: LinkState;
  readonly bytesIn: number;
  readonly bytesOut: number;
  /** Connected: last ping round trip (ms). Down: ms since the link went down. */
  readonly lagMs: number | undefined;
  /** Bytes written to the socket and not yet sent. */
  readonly bufferedBytes: number;
  readonly lastError: string | undefined;
}

export interface PeerLinksOptions {
  readonly nodeId: NodeId;
  readonly urls: readonly string[];
  readonly auth: PeerAuth;
  readonly logger: Logger;
  readonly metrics: ClusterMetrics;
  readonly maxFrameBytes: number;
  /** A link whose unsent bytes pass this is dropped and resynced later. */
  readonly maxBufferedBytes: number;
  /** Ping interval; a link that misses a pong is dropped. */
  readonly heartbeatMs: number;
  readonly backoffBaseMs: number;
  readonly backoffMaxMs: number;
  readonly onUp: (nodeId: NodeId) => void;
  readonly onDown: (nodeId: NodeId) => void;
  readonly onFrame: (nodeId: NodeId, frame: Uint8Array) => void;
}

export interface PeerLinks {
  /** Starts dialing the configured peers. */
  start(): void;
  /** Accepts a peer's upgrade request (already routed here by its header). */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
  /** Sends one frame; false when there is no open link (the frame is dropped). */
  send(nodeId: NodeId, frame: Uint8Array): boolean;
  isConnected(nodeId: NodeId): boolean;
  /** Every node id ever linked with (the membership as this node knows it). */
  knownNodes(): NodeId[];
  status(): PeerStatus[];
  close(): Promise<void>;
}

interface Session {
  readonly nodeId: NodeId;
  ws: WebSocket | undefined;
  /** Who dialed the current socket. */
  dialedBy: NodeId | undefined;
  bytesIn: number;
  bytesOut: number;
  alive: boolean;
  pingAt: number;
  rttMs: number | undefined;
  downSince: number;
  lastError: string | undefined;
}

interface Dialer {
  readonly url: string;
  readonly backoff: Backoff;
  state: 'connecting' | 'waiting' | 'standby' | 'open';
  ws: WebSocket | undefined;
  timer: NodeJS.Timeout | undefined;
  peerId: NodeId | undefined;
  lastError: string | undefined;
  /** The peer just told its id after refusing a dial that did not name it: redial at once. */
  retryNamed: boolean;
}

/** The peer endpoint's path. Routing is by header, so a document named like this still works. */
export const PEER_PATH = '/_stateweave/peer';

const DUPLICATE_CLOSE = 4000;

const toBytes = (data: WebSocket.RawData): Uint8Array =>
  data instanceof Buffer ? data : Array.isArray(data) ? Buffer.concat(data) : new Uint8Array(data);

export const createPeerLinks = (options: PeerLinksOptions): PeerLinks => {
  const { nodeId: selfId, logger, metrics } = options;
  const sessions = new Map<NodeId, Session>();
  const dialers = options.urls.map((url): Dialer => ({
    url,
    backoff: createBackoff(options.backoffBaseMs, options.backoffMaxMs),
    state: 'waiting',
    ws: undefined,
    timer: undefined,
    peerId: undefined,
    lastError: undefined,
    retryNamed: false,
  }));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxFrameBytes,
    perMessageDeflate: false,
  });
  const acceptNonces = new WeakMap<IncomingMessage, string>();
  wss.on('headers', (headers, req) => {
    const nonce = acceptNonces.get(req);
    if (nonce !== undefined) headers.push(`${PEER_ACK_HEADER}: ${options.auth.ack(nonce)}`);
  });
  let closing = false;

  const sessionFor = (nodeId: NodeId): Session => {
    let session = sessions.get(nodeId);
    if (!session) {
      session = {
        nodeId,
        ws: undefined,
        dialedBy: undefined,
        bytesIn: 0,
        bytesOut: 0,
        alive: true,
        pingAt: 0,
        rttMs: undefined,
        downSince: Date.now(),
        lastError: undefined,
      };
      sessions.set(nodeId, session);
      metrics.linkState.set({ peer: nodeId }, LINK_STATE_VALUE.down);
    }
    return session;
  };

  const detach = (session: Session, ws: WebSocket, why: string, replaced = false): void => {
    if (session.ws !== ws) return;
    session.ws = undefined;
    session.dialedBy = undefined;
    session.downSince = Date.now();
    session.lastError = why;
    metrics.linkState.set({ peer: session.nodeId }, LINK_STATE_VALUE.down);
    if (replaced) logger.debug({ peer: session.nodeId }, 'peer link replaced by the preferred one');
    else logger.warn({ peer: session.nodeId, reason: why }, 'peer link down');
    options.onDown(session.nodeId);
    // A dialer that stood by for this peer takes over.
    for (const dialer of dialers)
      if (dialer.peerId === session.nodeId && dialer.state === 'standby') schedule(dialer, 0);
  };

  /** Makes `ws` the link to `nodeId` unless a preferred one is already up. */
  const attach = (nodeId: NodeId, ws: WebSocket, dialedBy: NodeId): boolean => {
    const session = sessionFor(nodeId);
    const preferred = selfId < nodeId ? selfId : nodeId;
    ws.on('error', (err) => logger.warn({ peer: nodeId, err: err.message }, 'peer socket error'));
    if (session.ws && session.ws.readyState === WebSocket.OPEN) {
      if (session.dialedBy === preferred || dialedBy !== preferred) {
        ws.close(DUPLICATE_CLOSE, 'duplicate peer link');
        return false;
      }
      const old = session.ws;
      detach(session, old, 'replaced by the preferred link', true);
      old.close(DUPLICATE_CLOSE, 'duplicate peer link');
    }
    session.ws = ws;
    session.dialedBy = dialedBy;
    session.alive = true;
    session.lastError = undefined;
    metrics.linkState.set({ peer: nodeId }, LINK_STATE_VALUE.connected);
    ws.on('message', (data) => {
      if (session.ws !== ws) return;
      const frame = toBytes(data);
      session.bytesIn += frame.byteLength;
      metrics.bytesIn.inc({ peer: nodeId }, frame.byteLength);
      options.onFrame(nodeId, frame);
    });
    ws.on('pong', () => {
      if (session.ws !== ws) return;
      session.alive = true;
      session.rttMs = Date.now() - session.pingAt;
      metrics.lagSeconds.set({ peer: nodeId }, session.rttMs / 1000);
    });
    ws.on('close', (code, reason) =>
      detach(session, ws, `closed ${code} ${reason.toString()}`.trim()),
    );
    // A first round trip right away, so the lag figure exists before the first heartbeat.
    session.pingAt = Date.now();
    ws.ping();
    logger.info({ peer: nodeId, dialedBy }, 'peer link up');
    options.onUp(nodeId);
    return true;
  };

  const schedule = (dialer: Dialer, delayMs: number): void => {
    if (closing) return;
    clearTimeout(dialer.timer);
    dialer.state = 'waiting';
    dialer.timer = setTimeout(() => dial(dialer), delayMs);
    dialer.timer.unref();
  };

  const dial = (dialer: Dialer): void => {
    if (closing) return;
    dialer.state = 'connecting';
    // Naming the receiver makes the header worthless to any other node; on first
    // contact it is unknown, and the acceptor's refusal of `*` tells it.
    const { header, nonce } = options.auth.dial(dialer.peerId ?? ANY_RECEIVER);
    const ws = new WebSocket(dialer.url.replace(/\/+$/, '') + PEER_PATH, {
      headers: { [PEER_HEADER]: header },
      perMessageDeflate: false,
      maxPayload: options.maxFrameBytes,
      handshakeTimeout: Math.max(1000, options.heartbeatMs),
    });
    dialer.ws = ws;
    let peerId: NodeId | undefined;
    ws.on('upgrade', (res) => {
      try {
        const ack = res.headers[PEER_ACK_HEADER];
        peerId = options.auth.verifyAck(Array.isArray(ack) ? ack[0] : ack, nonce);
        if (dialer.peerId !== undefined && dialer.peerId !== peerId) {
          logger.warn(
            { url: dialer.url, was: dialer.peerId, now: peerId },
            'peer URL now answers with another node id',
          );
        }
        dialer.peerId = peerId;
      } catch (err) {
        dialer.lastError = toStateweaveError(err).message;
        ws.terminate();
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      const ack = res.headers[PEER_ACK_HEADER];
      if (res.statusCode === 401 && ack !== undefined) {
        res.resume();
        ws.terminate();
        try {
          // Refused because it named no receiver, or another: it says who it is.
          const id = options.auth.verifyAck(Array.isArray(ack) ? ack[0] : ack, nonce);
          if (id !== dialer.peerId) {
            dialer.peerId = id;
            dialer.retryNamed = true;
            return;
          }
        } catch (err) {
          dialer.lastError = toStateweaveError(err).message;
          return;
        }
      }
      // Perhaps the URL answers with another node now: ask again next time.
      if (res.statusCode === 401) dialer.peerId = undefined;
      dialer.lastError = `peer refused the link: HTTP ${res.statusCode}${res.statusCode === 401 ? ' (wrong peer secret?)' : ''}`;
      logger.warn({ url: dialer.url, status: res.statusCode }, 'peer refused the link');
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      if (peerId === undefined) return ws.terminate();
      dialer.backoff.reset();
      dialer.lastError = undefined;
      dialer.state = attach(peerId, ws, selfId) ? 'open' : 'standby';
    });
    ws.on('error', (err) => {
      dialer.lastError ??= err.message;
    });
    ws.on('close', () => {
      if (dialer.ws !== ws) return;
      dialer.ws = undefined;
      if (dialer.retryNamed) {
        dialer.retryNamed = false;
        return schedule(dialer, 0);
      }
      const session = peerId === undefined ? undefined : sessions.get(peerId);
      // Standing by: the peer's own link serves the pair; redial when it drops.
      if (session?.ws && session.ws !== ws && session.ws.readyState === WebSocket.OPEN) {
        dialer.state = 'standby';
        return;
      }
      schedule(dialer, dialer.backoff.next());
    });
  };

  const heartbeat = setInterval(() => {
    for (const session of sessions.values()) {
      const ws = session.ws;
      if (!ws) {
        metrics.lagSeconds.set({ peer: session.nodeId }, (Date.now() - session.downSince) / 1000);
        continue;
      }
      if (!session.alive) {
        logger.warn({ peer: session.nodeId }, 'peer missed a heartbeat');
        ws.terminate();
        continue;
      }
      session.alive = false;
      session.pingAt = Date.now();
      ws.ping();
    }
  }, options.heartbeatMs);
  heartbeat.unref();

  return {
    start() {
      for (const dialer of dialers) schedule(dialer, 0);
    },

    handleUpgrade(req, socket, head) {
      // The HTTP server stopped watching this socket at the upgrade: a dialer that
      // resets it (e.g. after a refusal) must not be an uncaught error.
      socket.on('error', (err) =>
        logger.debug({ remote: req.socket.remoteAddress, err: err.message }, 'peer socket error'),
      );
      if (closing) return refuseUpgrade(socket, new StateweaveError('SHUTTING_DOWN'));
      let peer: { nodeId: NodeId; nonce: string; to: string };
      try {
        const raw = req.headers[PEER_HEADER];
        peer = options.auth.verifyDial(Array.isArray(raw) ? raw[0] : raw);
      } catch (err) {
        const error = toStateweaveError(err);
        const reason =
          err instanceof PeerRefusal && err.reason !== 'invalid' ? err.reason : error.code;
        metrics.refused.inc({ reason });
        logger.warn(
          { remote: req.socket.remoteAddress, reason: error.message },
          'peer link refused',
        );
        return refuseUpgrade(socket, error);
      }
      if (peer.to !== selfId) {
        // A first contact (`*`), or a dial meant for another node: refused, saying who this is.
        if (peer.to !== ANY_RECEIVER) {
          metrics.refused.inc({ reason: 'receiver' });
          logger.warn(
            { remote: req.socket.remoteAddress, peer: peer.nodeId, to: peer.to },
            'peer dial signed for another node refused',
          );
        }
        return refuseUpgrade(
          socket,
          new PeerRefusal('receiver', `the dial names another receiver (${peer.to})`),
          { [PEER_ACK_HEADER]: options.auth.ack(peer.nonce) },
        );
      }
      acceptNonces.set(req, peer.nonce);
      wss.handleUpgrade(req, socket, head, (ws) => {
        attach(peer.nodeId, ws, peer.nodeId);
      });
    },

    send(nodeId, frame) {
      const session = sessions.get(nodeId);
      const ws = session?.ws;
      if (!session || !ws || ws.readyState !== WebSocket.OPEN) return false;
      if (ws.bufferedAmount > options.maxBufferedBytes) {
        // Dropping the link is cheaper than holding the backlog: the resync after
        // reconnecting sends only what the peer lacks.
        logger.warn(
          { peer: nodeId, buffered: ws.bufferedAmount },
          'peer link backlog too large; dropping it',
        );
        ws.terminate();
        return false;
      }
      session.bytesOut += frame.byteLength;
      metrics.bytesOut.inc({ peer: nodeId }, frame.byteLength);
      ws.send(frame);
      return true;
    },

    isConnected: (nodeId) => sessions.get(nodeId)?.ws?.readyState === WebSocket.OPEN,

    knownNodes: () => [...sessions.keys()],

    status() {
      const out: PeerStatus[] = [];
      for (const session of sessions.values()) {
        const dialing = dialers.find((d) => d.peerId === session.nodeId);
        const state: LinkState = session.ws
          ? 'connected'
          : dialing && (dialing.state === 'connecting' || dialing.state === 'waiting')
            ? 'connecting'
            : 'down';
        out.push({
          nodeId: session.nodeId,
          url: dialing?.url,
          state,
          bytesIn: session.bytesIn,
          bytesOut: session.bytesOut,
          lagMs: session.ws ? session.rttMs : Date.now() - session.downSince,
          bufferedBytes: session.ws?.bufferedAmount ?? 0,
          lastError: session.ws ? undefined : (dialing?.lastError ?? session.lastError),
        });
      }
      for (const dialer of dialers) {
        if (dialer.peerId !== undefined) continue;
        out.push({
          nodeId: undefined,
          url: dialer.url,
          // Never reached yet: it keeps retrying (lastError says why it failed so far).
          state: 'connecting',
          bytesIn: 0,
          bytesOut: 0,
          lagMs: undefined,
          bufferedBytes: 0,
          lastError: dialer.lastError,
        });
      }
      return out;
    },

    async close() {
      closing = true;
      clearInterval(heartbeat);
      const sockets = new Set<WebSocket>();
      for (const dialer of dialers) {
        clearTimeout(dialer.timer);
        if (dialer.ws) sockets.add(dialer.ws);
      }
      for (const session of sessions.values()) if (session.ws) sockets.add(session.ws);
      const gone = [...sockets].map(
        (ws) =>
          new Promise<void>((resolve) =>
            ws.readyState === WebSocket.CLOSED ? resolve() : ws.once('close', () => resolve()),
          ),
      );
      for (const ws of sockets) ws.close(1001, 'SHUTTING_DOWN: the node is shutting down');
      const timer = setTimeout(() => {
        for (const ws of sockets) ws.terminate();
      }, 2000);
      await Promise.all(gone);
      clearTimeout(timer);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
};
