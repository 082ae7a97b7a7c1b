/**
 * Clients for tests: the stock y-websocket provider (what users run), and a raw
 * protocol client that speaks frames directly (for saved acks and bad input).
 */
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import {
  decodeServerExtension,
  encodeHello,
  encodeSyncStep1,
  encodeSyncStep2,
  encodeUpdate,
  MessageType,
  SyncType,
} from '@stateweave/client/protocol';
import * as decoding from 'lib0/decoding';
import { waitFor, withTimeout } from './wait.js';

export interface StockClient {
  readonly doc: Y.Doc;
  readonly provider: WebsocketProvider;
  destroy(): void;
}

/** A stock WebsocketProvider in Node (ws as WebSocket), synced before it returns. */
export const stockClient = async (
  wsUrl: string,
  docName: string,
  doc = new Y.Doc(),
): Promise<StockClient> => {
  const provider = new WebsocketProvider(wsUrl, docName, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 200,
  });
  try {
    await waitFor(() => provider.synced, `stock client on ${docName} to sync`);
  } catch (err) {
    provider.destroy(); // or its reconnect loop keeps the test process alive
    throw err;
  }
  return {
    doc,
    provider,
    destroy() {
      provider.destroy();
      doc.destroy();
    },
  };
};

export interface Closed {
  readonly code: number;
  readonly reason: string;
}

/** A raw protocol client: sends frames, records what the node sends back. */
export interface RawClient {
  readonly ws: WebSocket;
  readonly doc: Y.Doc;
  /** Highest seq in a "saved" acknowledgement so far. */
  readonly savedSeq: () => number;
  /** Resolves when the socket closes, with code and reason; fails after `withinMs` (default 10 s). */
  closed(withinMs?: number): Promise<Closed>;
  readonly frames: Uint8Array[];
  send(frame: Uint8Array | string): void;
  /** Sends a Yjs update; returns the seq it will be acknowledged under. */
  sendUpdate(update: Uint8Array): number;
  close(): void;
}

/** Opens a raw client, says hello (so it gets acks), and completes the sync handshake. */
export const rawClient = async (
  wsUrl: string,
  docName: string,
  options: { hello?: boolean } = {},
): Promise<RawClient> => {
  const ws = new WebSocket(`${wsUrl}/${docName}`);
  ws.binaryType = 'arraybuffer';
  const doc = new Y.Doc();
  const frames: Uint8Array[] = [];
  let saved = 0;
  let seq = 0;
  let synced = false;
  const closing = new Promise<Closed>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  );
  ws.on('message', (data: ArrayBuffer) => {
    const frame = new Uint8Array(data);
    frames.push(frame);
    const ext = decodeServerExtension(frame);
    if (ext?.type === 'saved') saved = Math.max(saved, ext.seq);
    const decoder = decoding.createDecoder(frame);
    if (decoding.readVarUint(decoder) !== MessageType.Sync) return;
    const syncType = decoding.readVarUint(decoder);
    const payload = decoding.readVarUint8Array(decoder);
    if (syncType === SyncType.Step1) {
      ws.send(encodeSyncStep2(Y.encodeStateAsUpdate(doc, payload)));
      seq++; // our step 2 counts as an update message
    } else {
      Y.applyUpdate(doc, payload, 'remote');
      if (syncType === SyncType.Step2) synced = true;
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  if (options.hello ?? true) ws.send(encodeHello());
  ws.send(encodeSyncStep1(Y.encodeStateVector(doc)));
  await waitFor(() => synced, `raw client on ${docName} to sync`);
  return {
    ws,
    doc,
    frames,
    closed: (withinMs = 10_000) =>
      withTimeout(closing, withinMs, `the node to close the raw client on ${docName}`),
    savedSeq: () => saved,
    send: (frame) => ws.send(frame),
    sendUpdate(update) {
      Y.applyUpdate(doc, update, 'local');
      ws.send(encodeUpdate(update));
      return ++seq;
    },
    close: () => ws.close(),
  };
};

/** A small Yjs update that inserts `text` at the end of the shared text `name`. */
export const textUpdate = (base: Y.Doc, text: string, name = 'text'): Uint8Array => {
  const before = Y.encodeStateVector(base);
  base.getText(name).insert(base.getText(name).length, text);
  return Y.encodeStateAsUpdate(base, before);
};
