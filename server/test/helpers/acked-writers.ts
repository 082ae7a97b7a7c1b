/**
 * Writers that record which of their writes a node acknowledged as saved, and a
 * wait until every node holds the same state with every required write: what
 * "no acknowledged update lost" is checked with in the crash tests.
 */
import * as Y from 'yjs';
import { fingerprint, nodeDoc } from './cluster.js';
import type { RawClient } from './clients.js';
import { sleep, waitFor } from './wait.js';

export interface Writer {
  readonly name: string;
  readonly client: RawClient;
  /** seq → key written under it. */
  readonly keys: Map<number, string>;
  stopped: boolean;
  loop: Promise<void>;
}

/** Writes one key every 5 ms until stopped, the socket closes, or 20 s pass. */
export const startWriter = (name: string, client: RawClient): Writer => {
  const writer: Writer = { name, client, keys: new Map(), stopped: false, loop: Promise.resolve() };
  const deadline = Date.now() + 20_000;
  writer.loop = (async () => {
    for (let i = 0; i < 4000 && Date.now() < deadline; i++) {
      if (writer.stopped || client.ws.readyState !== client.ws.OPEN) return;
      const before = Y.encodeStateVector(client.doc);
      const key = `${name}-${i}`;
      client.doc.getMap('m').set(key, i);
      writer.keys.set(client.sendUpdate(Y.encodeStateAsUpdate(client.doc, before)), key);
      await sleep(5);
    }
  })();
  return writer;
};

/** Keys the node acknowledged as saved to this writer. */
export const ackedKeys = (writer: Writer): string[] =>
  [...writer.keys].filter(([seq]) => seq <= writer.client.savedSeq()).map(([, key]) => key);

export const stopWriters = async (writers: readonly Writer[]): Promise<void> => {
  for (const w of writers) w.stopped = true;
  await Promise.all(writers.map((w) => w.loop));
};

/** Waits until every node in `urls` holds the same state with every key in `required`. */
export const waitConverged = async (
  urls: readonly string[],
  doc: string,
  required: readonly string[],
  what: string,
  timeoutMs = 30_000,
): Promise<number> => {
  const started = Date.now();
  await waitFor(
    async () => {
      const docs = await Promise.all(urls.map((url) => nodeDoc(url, doc)));
      if (docs.some((d) => !d)) return false;
      const prints = new Set(docs.map((d) => fingerprint(d!)));
      return prints.size === 1 && required.every((key) => docs[0]!.getMap('m').has(key));
    },
    what,
    timeoutMs,
    100,
  );
  return Date.now() - started;
};
