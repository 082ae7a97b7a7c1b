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

/** What a writer keeps per socket. */
export interface TurnBacklog {
  /**
   * The backlog as it stood before this turn's frames, which are corked and leave
   * together at the turn's end: a client is slow when the earlier ones did not.
   */
  backlogBeforeTurn: number;
}

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
    state.backlogBeforeTurn = ws.bufferedAmount;
    if (socket) corkUntilNextTurn(socket);
  }
  if (state.backlogBeforeTurn > maxBufferedBytes) return false;
  metrics.bytesOut.inc(frame.byteLength);
  ws.send(frame);
  return true;
};
