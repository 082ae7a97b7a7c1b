/**
 * A stock client: a Y.Doc and the provider that matches the system (y-websocket's
 * `WebsocketProvider`, or `HocuspocusProvider` for Hocuspocus). Scenario 5 always
 * uses them (it measures a client holding the document), the fan-out scenarios with
 * `BENCH_CLIENTS=stock`.
 */
import WebSocket from 'ws';
import * as Y from 'yjs';
import { WebsocketProvider } from 'y-websocket';
import { HocuspocusProvider } from '@hocuspocus/provider';
import type { SystemEndpoint } from './light-client.js';
import { within } from './wait.js';

export interface StockClient {
  doc: Y.Doc;
  /** resolves once the provider reports synced (through the relay: once connected) */
  ready: Promise<void>;
  destroy(): void;
}

export function connectStock(system: SystemEndpoint, room: string, doc = new Y.Doc()): StockClient {
  let resolveReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));
  let provider: HocuspocusProvider | WebsocketProvider;
  if (system.client === 'hocuspocus') {
    // The provider hands its whole configuration to the socket it makes, the polyfill
    // included (Node 20 has no global WebSocket); its type does not list it.
    const config = { url: system.url, name: room, document: doc, WebSocketPolyfill: WebSocket };
    const hp = new HocuspocusProvider(config);
    hp.on('synced', () => resolveReady());
    provider = hp;
  } else {
    const yws = new WebsocketProvider(system.url, room, doc, {
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    yws.on('sync', (synced: boolean) => {
      if (synced) resolveReady();
    });
    // The relay has no server-side document: a socket that is open is as ready as it gets.
    if (system.name === 'relay')
      yws.on('status', (e: { status: string }) => {
        if (e.status === 'connected') resolveReady();
      });
    provider = yws;
  }
  return {
    doc,
    ready,
    destroy() {
      provider.destroy();
      doc.destroy();
    },
  };
}

/** Clients for `rooms` (one per entry), connected 50 at a time, each batch synced before the next. */
export async function connectMany(
  system: SystemEndpoint,
  rooms: readonly string[],
  timeoutMs = 60_000,
): Promise<StockClient[]> {
  const clients: StockClient[] = [];
  const BATCH = 50;
  for (let i = 0; i < rooms.length; i += BATCH) {
    const batch = rooms.slice(i, i + BATCH).map((room) => connectStock(system, room));
    clients.push(...batch);
    await within(
      Promise.all(batch.map((c) => c.ready)),
      timeoutMs,
      `${system.name}: clients not synced within ${timeoutMs} ms`,
    );
  }
  return clients;
}
