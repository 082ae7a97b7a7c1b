/**
 * Load with acknowledgements: SDK clients that each write unique keys into a
 * document's Y.Map and record how many of their writes the node acknowledged as
 * saved (`written - pending`: the SDK counts local updates and the node's
 * cumulative `saved` acks). Stock y-websocket clients add text edits without
 * acks (they only have to converge). Every timer is cleared by `stop()`.
 */
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import { WebsocketProvider } from 'y-websocket';
import { createClient, type DocHandle, type StateweaveClient } from '@stateweave/client';

export const ACK_MAP = 'acks';

export interface AckWriter {
  readonly id: string;
  readonly doc: string;
  readonly handle: DocHandle;
  /** Writes made so far (keys `${id}:1` … `${id}:${written}`). */
  readonly written: number;
  /** Writes the node acknowledged as saved, highest seen. */
  readonly acked: number;
  /** Keys of the first `count` writes. */
  keys(count: number): string[];
  /** Writes one more key now. */
  write(): void;
}

export interface WriterPool {
  readonly writers: readonly AckWriter[];
  /** Starts writing `perSecond` updates a second in total, spread over the writers. */
  start(perSecond: number): void;
  /** Stops the writing timer (clients stay connected). */
  stop(): void;
  /** Writes made in total, and acknowledged in total. */
  totals(): { written: number; acked: number };
  /** Acknowledged keys per document (writers without a keySpace). */
  ackedKeys(): Map<string, string[]>;
  /**
   * For writers with a keySpace: the keys of `state` (a replica of `doc`) whose
   * value is older than the newest acknowledged write to that key (an
   * acknowledged overwrite that was lost).
   */
  staleKeys(doc: string, state: Uint8Array): string[];
  /** Resolves true once every writer has nothing pending (bounded). */
  allSaved(timeoutMs: number): Promise<boolean>;
  close(): Promise<void>;
}

export interface WriterSpec {
  readonly id: string;
  readonly doc: string;
  /** The node URLs this writer may use, in failover order. */
  readonly urls: readonly string[];
  readonly token?: string;
  /** Each write's value is a string of this many bytes instead of its number (fills a disk). @default 0 */
  readonly padBytes?: number;
  /**
   * Write n goes to key `${id}:${n % keySpace}` (overwriting), so the document
   * stops growing (a soak); check with `staleKeys`. @default unbounded (one key per write)
   */
  readonly keySpace?: number;
}

export const createWriterPool = (specs: readonly WriterSpec[]): WriterPool => {
  const clients: StateweaveClient[] = [];
  const writers: AckWriter[] = specs.map((spec) => {
    const client = createClient({
      urls: spec.urls,
      WebSocket: WebSocket as unknown as NonNullable<
        Parameters<typeof createClient>[0]['WebSocket']
      >,
      backoff: { baseMs: 50, maxMs: 500, jitter: 0.5 },
      connectTimeoutMs: 3000,
      ...(spec.token !== undefined ? { token: spec.token } : {}),
    });
    clients.push(client);
    const handle = client.open(spec.doc);
    const map = handle.doc.getMap(ACK_MAP);
    const pad = spec.padBytes ? 'x'.repeat(spec.padBytes) : undefined;
    let written = 0;
    let acked = 0;
    const note = (): void => {
      acked = Math.max(acked, written - handle.pending);
    };
    handle.on('pending', note);
    handle.on('saved', note);
    return {
      id: spec.id,
      doc: spec.doc,
      handle,
      get written() {
        return written;
      },
      get acked() {
        return acked;
      },
      keys: (count) => Array.from({ length: count }, (_, i) => `${spec.id}:${i + 1}`),
      write() {
        written++;
        const slot = spec.keySpace === undefined ? written : written % spec.keySpace;
        map.set(`${spec.id}:${slot}`, pad ?? written);
      },
    };
  });

  let timer: NodeJS.Timeout | undefined;
  const TICK_MS = 20;
  return {
    writers,
    start(perSecond) {
      if (timer) clearInterval(timer);
      // Fractional writes carry over, so the rate holds with any number of writers.
      let owed = 0;
      let next = 0;
      let last = performance.now();
      timer = setInterval(() => {
        const now = performance.now();
        owed += ((now - last) * perSecond) / 1000;
        last = now;
        // Bounded per tick: a stalled loop does not burst thousands of writes at once.
        for (let i = 0; owed >= 1 && i < perSecond; i++, owed--) {
          writers[next]!.write();
          next = (next + 1) % writers.length;
        }
      }, TICK_MS);
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
    totals() {
      return writers.reduce(
        (t, w) => ({ written: t.written + w.written, acked: t.acked + w.acked }),
        { written: 0, acked: 0 },
      );
    },
    ackedKeys() {
      const byDoc = new Map<string, string[]>();
      for (const w of writers) {
        const keys = byDoc.get(w.doc) ?? [];
        keys.push(...w.keys(w.acked));
        byDoc.set(w.doc, keys);
      }
      return byDoc;
    },
    staleKeys(doc, state) {
      const replica = new Y.Doc();
      Y.applyUpdate(replica, state);
      const map = replica.getMap<number>(ACK_MAP);
      const stale: string[] = [];
      for (const [i, w] of writers.entries()) {
        const space = specs[i]!.keySpace;
        if (w.doc !== doc || space === undefined) continue;
        // The newest acknowledged write of each slot: acked, acked − 1, …
        for (let n = w.acked; n > Math.max(0, w.acked - space); n--) {
          const key = `${w.id}:${n % space}`;
          if ((map.get(key) ?? 0) < n) stale.push(key);
        }
      }
      replica.destroy();
      return stale;
    },
    async allSaved(timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        if (writers.every((w) => w.handle.pending === 0 && w.acked === w.written)) return true;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      return false;
    },
    async close() {
      if (timer) clearInterval(timer);
      await Promise.all(clients.map((c) => c.destroy()));
    },
  };
};

/** A stock y-websocket client that types into a shared text at a steady pace. */
export interface StockEditor {
  readonly doc: Y.Doc;
  readonly provider: WebsocketProvider;
  readonly edits: number;
  stop(): void;
  destroy(): void;
}

export const stockEditor = (
  wsUrl: string,
  docName: string,
  label: string,
  perSecond: number,
): StockEditor => {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(wsUrl, docName, doc, {
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
    maxBackoffTime: 500,
  });
  let edits = 0;
  const text = doc.getText('text');
  const timer =
    perSecond > 0
      ? setInterval(() => {
          text.insert(text.length, `${label}${edits++} `);
        }, 1000 / perSecond)
      : undefined;
  return {
    doc,
    provider,
    get edits() {
      return edits;
    },
    stop: () => clearInterval(timer),
    destroy() {
      clearInterval(timer);
      provider.destroy();
      doc.destroy();
    },
  };
};
