/**
 * The WebSocket the SDK needs, as a structural type that both the browser's
 * `WebSocket` and Node's `ws` satisfy, so `createClient({ WebSocket: ws })`
 * type-checks without a cast and the public types need no DOM library.
 */

/** Handler properties are checked bivariantly (like methods), so `ws`'s richer event types fit. */
type Handler<E> = { bivarianceHack(event: E): void }['bivarianceHack'];

export interface MessageEventLike {
  readonly data: unknown;
}

export interface CloseEventLike {
  readonly code: number;
  readonly reason: string | { toString(): string };
}

/**
 * Whatever the runtime passes to `onerror`: a DOM `Event` without detail in
 * browsers, an event with `message` ("Unexpected server response: 401") in `ws`.
 */
export type ErrorEventLike = unknown;

export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: Handler<unknown> | null;
  onmessage: Handler<MessageEventLike> | null;
  onclose: Handler<CloseEventLike> | null;
  onerror: Handler<ErrorEventLike> | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}

/** `globalThis.WebSocket` in browsers; `import { WebSocket } from 'ws'` in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** readyState values (the same in every implementation). */
export const WS_OPEN = 1;

/** A frame's bytes, or undefined for a text frame (not part of the protocol). */
export const frameBytes = (data: unknown): Uint8Array | undefined => {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data))
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return undefined;
};

/** The status of a refused upgrade, where the runtime tells it (`ws` does, browsers do not). */
export const upgradeStatus = (event: ErrorEventLike): number | undefined => {
  const message = (event as { message?: unknown } | null | undefined)?.message;
  const match = /Unexpected server response: (\d{3})/.exec(
    typeof message === 'string' ? message : '',
  );
  return match?.[1] === undefined ? undefined : Number(match[1]);
};

// Compile-time proof that the browser's WebSocket fits without a cast (this
// package compiles with lib DOM; the tests prove the same for `ws`).
type Fits<T extends WebSocketConstructor> = T;
export type BrowserWebSocketFits = Fits<typeof WebSocket>;
