import type { Duplex } from 'node:stream';
import type { StateweaveError } from './errors.js';

/**
 * Answers an upgrade request with a plain HTTP error (status from the error
 * table, JSON body) and ends the socket; used before any WebSocket handshake.
 */
export const refuseUpgrade = (
  socket: Duplex,
  err: StateweaveError,
  headers: Readonly<Record<string, string>> = {},
): void => {
  const body = JSON.stringify({ error: { code: err.code, message: err.message } });
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${err.status} ${err.code}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  );
};
