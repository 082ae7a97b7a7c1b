/**
 * The SDK on the node's multiplexed endpoint: one WebSocket per client for any
 * number of documents. Sockets are counted where they are accepted, on the node
 * (its log of accepted upgrades and its gauges), and frames where they are sent.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import * as decoding from 'lib0/decoding';
import type { WebSocketConstructor } from '@stateweave/client';
import { MessageType, SyncType } from '@stateweave/client/protocol';
import { startNode, type TestNode } from '../../server/dist/test/helpers/node.js';
import { mintToken } from '../../server/dist/src/auth/tokens.js';
import { sample, scrape } from '../../server/dist/test/helpers/metrics.js';
import { docName } from '../../server/dist/test/helpers/doc-name.js';
import { sdkClient, settled, textOf, waitFor } from './helpers.js';

const SECRET = 'a-test-secret-for-the-sdk-multiplex-tests';

/** A node whose log is read for the upgrades it accepted (one line per socket). */
const countingNode = async (): Promise<{ node: TestNode; upgrades: () => number }> => {
  let upgrades = 0;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) {
        if (/"msg":"(multiplexed )?connection open"/.test(line)) upgrades++;
      }
      done();
    },
  });
  const node = await startNode({
    auth: { secret: SECRET },
    logger: pino({ level: 'info' }, sink),
    maxDocsPerSocket: 200,
  });
  return { node, upgrades: () => upgrades };
};

/** A WebSocket that records every frame the SDK sends, and how many sockets it made. */
const recordingWebSocket = (): {
  WebSocket: WebSocketConstructor;
  sent: Uint8Array[];
  made: () => number;
  sockets: WebSocket[];
} => {
  const sent: Uint8Array[] = [];
  const sockets: WebSocket[] = [];
  class Recording extends WebSocket {
    constructor(url: string) {
      super(url);
      sockets.push(this);
    }
    override send(data: Uint8Array): void {
      sent.push(new Uint8Array(data));
      super.send(data);
    }
  }
  return { WebSocket: Recording, sent, made: () => sockets.length, sockets };
};

/** Document name and, for a sync message, its sync type, of a multiplexed frame. */
const syncTypeOf = (frame: Uint8Array): { doc: string; syncType: number } | undefined => {
  if (frame.length <= 1) return undefined;
  const d = decoding.createDecoder(frame);
  const doc = decoding.readVarString(d);
  if (decoding.readVarUint(d) !== MessageType.Sync) return undefined;
  return { doc, syncType: decoding.readVarUint(d) };
};

const gauge = async (node: TestNode, series: string): Promise<number> =>
  sample(await scrape(node.url), series);

describe('the SDK over one multiplexed socket', () => {
  let node: TestNode;
  let upgrades: () => number;
  let token: string;
  before(async () => {
    ({ node, upgrades } = await countingNode());
    token = await mintToken({ secret: SECRET, docs: ['m/*'], rights: ['read', 'write'] });
  });
  after(() => node.close());

  it('opens 100 documents over one socket and syncs them all', async () => {
    const ws = recordingWebSocket();
    const before = upgrades();
    const client = sdkClient({ url: node.wsUrl, token, WebSocket: ws.WebSocket });
    const other = sdkClient({ url: node.wsUrl, token });
    try {
      const names = Array.from({ length: 100 }, (_, i) => `m/hundred-${i}`);
      const handles = names.map((name) => client.open(name));
      await Promise.all(handles.map((h) => h.synced));
      assert.equal(ws.made(), 1);
      assert.equal(upgrades() - before, 1, 'the node accepted one upgrade for 100 documents');
      assert.equal(await gauge(node, 'stateweave_connections'), 1);
      assert.equal(await gauge(node, 'stateweave_socket_documents'), 100);
      handles.forEach((h, i) => h.doc.getText('text').insert(0, `doc ${i}`));
      await Promise.all(handles.map((h, i) => settled(h, `doc ${i}`)));
      // A second client sees every document's content.
      const seen = names.map((name) => other.open(name));
      await Promise.all(seen.map((h) => h.synced));
      seen.forEach((h, i) => assert.equal(textOf(h), `doc ${i}`));
      assert.equal(upgrades() - before, 2, 'and one for the second client');
    } finally {
      await client.destroy();
      await other.destroy();
    }
    await waitFor(
      async () => (await gauge(node, 'stateweave_socket_documents')) === 0,
      'every document released',
    );
  });

  it('unsubscribes on the node when a handle closes; the socket stays for the others', async () => {
    const ws = recordingWebSocket();
    const client = sdkClient({ url: node.wsUrl, token, WebSocket: ws.WebSocket });
    try {
      const a = client.open('m/close-a');
      const b = client.open('m/close-b');
      await Promise.all([a.synced, b.synced]);
      assert.equal(node.server.hub.peek(docName('m/close-a'))?.subscriberCount, 1);
      await a.close();
      await waitFor(
        () => (node.server.hub.peek(docName('m/close-a'))?.subscriberCount ?? 0) === 0,
        'the node to unsubscribe m/close-a',
      );
      b.doc.getText('text').insert(0, 'still synced');
      await settled(b, 'b after a closed');
      assert.equal(ws.made(), 1);
      // Opening it again rides the same socket.
      const again = client.open('m/close-a');
      await again.synced;
      assert.equal(ws.made(), 1);
    } finally {
      await client.destroy();
    }
  });

  it('after a lost socket, re-opens every document with one state-vector exchange each and merges offline edits', async () => {
    const ws = recordingWebSocket();
    const client = sdkClient({ url: node.wsUrl, token, WebSocket: ws.WebSocket });
    const watcher = sdkClient({ url: node.wsUrl, token });
    try {
      const names = Array.from({ length: 20 }, (_, i) => `m/resync-${i}`);
      const handles = names.map((name) => client.open(name));
      const watched = names.map((name) => watcher.open(name));
      await Promise.all([...handles, ...watched].map((h) => h.synced));
      // The socket drops; edits made meanwhile (on both sides) wait.
      ws.sockets[0]!.terminate();
      await waitFor(() => handles.every((h) => !h.isSynced), 'the handles to notice');
      const sentBefore = ws.sent.length;
      handles.forEach((h, i) => h.doc.getText('text').insert(0, `offline ${i};`));
      watched.forEach((h, i) => h.doc.getText('text').insert(0, `other ${i};`));
      await Promise.all(handles.map((h, i) => settled(h, `resynced doc ${i}`, 10_000)));
      assert.equal(ws.made(), 2, 'one new socket for all twenty documents');
      const step1s = ws.sent
        .slice(sentBefore)
        .map(syncTypeOf)
        .filter((s) => s?.syncType === SyncType.Step1);
      assert.deepEqual(step1s.map((s) => s!.doc).sort(), [...names].sort());
      await waitFor(
        () =>
          handles.every((h, i) => {
            const text = textOf(h);
            return (
              text === textOf(watched[i]!) &&
              text.includes(`offline ${i};`) &&
              text.includes(`other ${i};`)
            );
          }),
        'both sides to merge every document',
      );
    } finally {
      await client.destroy();
      await watcher.destroy();
    }
  });

  it('refuses a document without rights alone; the others on the socket keep syncing', async () => {
    const ws = recordingWebSocket();
    const client = sdkClient({ url: node.wsUrl, token, WebSocket: ws.WebSocket });
    try {
      const allowed = client.open('m/allowed');
      const denied = client.open('elsewhere/denied');
      await assert.rejects(
        denied.synced,
        (err: Error & { code?: string }) => err.code === 'FORBIDDEN',
      );
      await allowed.synced;
      allowed.doc.getText('text').insert(0, 'fine');
      await settled(allowed, 'the allowed document');
      assert.equal(denied.status, 'disconnected');
      assert.equal(ws.made(), 1);
    } finally {
      await client.destroy();
    }
  });

  it('refreshes the token in-band for every open document, on the same socket', async () => {
    const ws = recordingWebSocket();
    let issued = 0;
    const client = sdkClient({
      url: node.wsUrl,
      WebSocket: ws.WebSocket,
      refreshInBand: true,
      // Three-second tokens: refreshed at half their lifetime, or the node ends the documents.
      getToken: () => {
        issued++;
        return mintToken({ secret: SECRET, docs: ['m/*'], rights: ['read', 'write'], ttl: 3 });
      },
    });
    try {
      const names = ['m/refresh-1', 'm/refresh-2', 'm/refresh-3'];
      const handles = names.map((name) => client.open(name));
      await Promise.all(handles.map((h) => h.synced));
      const errors: string[] = [];
      for (const h of handles) h.on('error', (e) => errors.push(e.code));
      await waitFor(() => issued >= 3, 'two refreshes', 8000);
      // Past the first token's expiry: every document is still on, on the first socket.
      handles.forEach((h, i) => h.doc.getText('text').insert(0, `after refresh ${i}`));
      await Promise.all(handles.map((h, i) => settled(h, `doc ${i} after the refresh`)));
      assert.deepEqual(errors, []);
      assert.equal(ws.made(), 1);
      const refreshedDocs = ws.sent
        .filter((f) => f.length > 1)
        .map((f) => {
          const d = decoding.createDecoder(f);
          return { doc: decoding.readVarString(d), type: decoding.readVarUint(d) };
        })
        .filter((m) => m.type === MessageType.Token)
        .map((m) => m.doc);
      for (const name of names)
        assert.ok(refreshedDocs.includes(name), `a token message for ${name}`);
    } finally {
      await client.destroy();
    }
  });
});
