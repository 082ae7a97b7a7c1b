/**
 * Writing frames to a client socket, shared by the one-document socket
 * (connection.ts) and the multiplexed one (mux-connection.ts).
 *
 * Per-turn write batching: the first frame a socket gets in a turn of the event
 * loop corks it, and one end-of-turn job uncorks every corked socket (after the
 * rooms' fan-out of the turn, which is queued there too: end-of-turn.ts), so all
 * frames a socket gets while the node works through one batch of input leave in
 * one write (one syscall, fewer TCP segments for the client to read) instead of
 * one each. Frames stay separate WebSocket messages, in order: only the writes
 * are batched. (ws has no public cork; `_socket` is its net.Socket.)
 */
import type { WebSocket } from 'ws';
import { atEndOfTurn } from '../end-of-turn.js';
import type { Metrics } from '../metrics.js';
import { isSharedFrame } from '../hub/state-cache.js';

interface Corkable {
  readonly writableCorked: number;
  cork(): void;
  uncork(): void;
}
let corked: Corkable[] = [];
const uncorkAll = (): void => {
  const sockets = corked;
  corked = [];
  for (const socket of sockets) socket.uncork();
};
const socketOf = (ws: WebSocket): Corkable | undefined =>
  (ws as unknown as { _socket?: Corkable })._socket;
const corkUntilNextTurn = (socket: Corkable): void => {
  if (corked.length === 0) atEndOfTurn(uncorkAll);
  corked.push(socket);
  socket.cork();
};

/** Shared frames still queued on one socket: their bytes, and the bytes written after them. */
export interface SharedBacklog {
  bytes: number;
  writtenSince: number;
}

/** What a writer keeps per socket. */
export interface TurnBacklog {
  /**
   * The backlog as it stood before this turn's frames, which are corked and leave
   * together at the turn's end: a client is slow when the earlier ones did not.
   */
  backlogBeforeTurn: number;
  /** Made at the first shared frame (most sockets never get one): see `ownBacklog`. */
  shared: SharedBacklog | undefined;
}

/**
 * The socket's unsent bytes, less what is left of shared frames (the cached whole
 * document, `isSharedFrame`): those bytes exist once for every socket that has them
 * queued, so 150 clients joining a 20 MB document are not 3 GB of backlog, and a
 * joiner that gets an update while its 20 MB still flows is not a slow consumer.
 * The queue is first in, first out: the shared bytes are gone once the backlog is
 * no more than what was written after them.
 */
export const ownBacklog = (ws: WebSocket, state: TurnBacklog): number => {
  const backlog = ws.bufferedAmount;
  const { shared } = state;
  if (!shared) return backlog;
  const left = Math.min(shared.bytes, Math.max(0, backlog - shared.writtenSince));
  if (left === 0) state.shared = undefined;
  return backlog - left;
};

/**
 * Sends one frame on an open socket, corked until the end of the turn. Returns
 * false, sending nothing, when the socket's backlog before this turn passed
 * `maxBufferedBytes` (the caller drops the slow client).
 */
export const writeFrame = (
  ws: WebSocket,
  state: TurnBacklog,
  frame: Uint8Array,
  maxBufferedBytes: number,
  metrics: Metrics,
): boolean => {
  const socket = socketOf(ws);
  if (!socket || socket.writableCorked === 0) {
    state.backlogBeforeTurn = ownBacklog(ws, state);
    if (socket) corkUntilNextTurn(socket);
  }
  if (state.backlogBeforeTurn > maxBufferedBytes) return false;
  metrics.bytesOut.inc(frame.byteLength);
  if (isSharedFrame(frame)) {
    // Whatever was queued before it counts as shared too until it has left (an overestimate of the shared part, never of the own).
    const left = state.shared ? ws.bufferedAmount - ownBacklog(ws, state) : 0;
    state.shared = { bytes: left + frame.byteLength, writtenSince: 0 };
  } else if (state.shared) state.shared.writtenSince += frame.byteLength;
  ws.send(frame);
  return true;
};
