/**
 * The handshake deadline: a TCP connection must complete its HTTP request head
 * (an API call or a WebSocket upgrade) within `handshakeTimeoutMs`, and a request
 * its body too, or it is closed. Without it a connection that never sends a byte
 * holds a socket and a file descriptor for good (Node's headersTimeout only
 * starts with the first byte), and slow-loris heads and bodies hold them for
 * Node's defaults of 60 s and 300 s.
 */
import type { Server as HttpServer, ServerOptions as HttpServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import { StateweaveError } from '../errors.js';

/** Options for `http.createServer`: Node's own head and request deadlines, checked often enough. */
export const handshakeServerOptions = (
  handshakeTimeoutMs: number,
): Pick<HttpServerOptions, 'headersTimeout' | 'requestTimeout' | 'connectionsCheckingInterval'> => {
  // Node checks both deadlines on this interval (30 s by default): a close comes
  // at most a quarter of the deadline late.
  const interval = Math.max(50, Math.min(30_000, Math.floor(handshakeTimeoutMs / 4)));
  // Node's deadlines run one interval behind ours, so a connection that never
  // completes its head is closed (and counted) by enforceHandshakeDeadline, not by
  // whichever of the two timers a loaded machine happens to run first; Node's
  // close the slow bodies, which ours does not see.
  const nodeDeadline = handshakeTimeoutMs + interval;
  return {
    headersTimeout: nodeDeadline,
    requestTimeout: nodeDeadline,
    connectionsCheckingInterval: interval,
  };
};

/**
 * Closes every connection that has not delivered a request head (an HTTP request
 * or an upgrade) within `timeoutMs`; `onTimeout` is told (metrics, log). Later
 * requests on a kept-alive connection are Node's: keepAliveTimeout, then
 * headersTimeout from their first byte.
 */
export const enforceHandshakeDeadline = (
  server: HttpServer,
  timeoutMs: number,
  onTimeout: (err: StateweaveError, socket: Socket) => void,
): void => {
  const deadlines = new WeakMap<Socket, NodeJS.Timeout>();
  const settle = (socket: Socket): void => {
    const timer = deadlines.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    deadlines.delete(socket);
    socket.removeListener('close', onClose);
  };
  // One listener for every socket, removed once the head has arrived: a `once`
  // closure per socket stayed for the socket's life (~350 bytes per idle connection).
  const onClose = function (this: Socket): void {
    settle(this);
  };
  server.on('connection', (socket: Socket) => {
    const timer = setTimeout(() => {
      deadlines.delete(socket);
      onTimeout(
        new StateweaveError('HANDSHAKE_TIMEOUT', `no complete request within ${timeoutMs} ms`),
        socket,
      );
      socket.destroy();
    }, timeoutMs);
    timer.unref();
    deadlines.set(socket, timer);
    socket.on('close', onClose);
  });
  server.on('request', (req: { socket: Socket }) => settle(req.socket));
  server.on('upgrade', (req: { socket: Socket }) => settle(req.socket));
};
