/**
 * Many documents over one socket: the node's root path speaks the Hocuspocus
 * framing. Tested with the stock `@hocuspocus/provider` (one
 * HocuspocusProviderWebsocket shared by several providers) next to stock
 * y-websocket clients of the same documents, and with raw frames for what a
 * stock client never sends.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import { WebSocket } from 'ws';
import * as decoding from 'lib0/decoding';
import { HocuspocusProvider, HocuspocusProviderWebsocket } from '@hocuspocus/provider';
import {
  AuthType,
  encodeAuthToken,
  encodeDocPrefix,
  MuxType,
  prefixFrame,
} from '@stateweave/client/multiplex';
import { encodeSyncStep1 } from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { ERRORS } from '../src/errors.js';
import { startNode, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { sample, scrape } from './helpers/metrics.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'a-test-secret-for-the-multiplexed-endpoint';

const token = (docs: string[], rights: string[]): Promise<string> =>
  mintToken({ secret: SECRET, docs, rights: rights as ('read' | 'write')[] });

interface Opened {
  readonly socket: HocuspocusProviderWebsocket;
  readonly providers: HocuspocusProvider[];
  destroy(): void;
}

/** One shared stock socket with one stock provider per (name, token); not waited for. */
const openShared = (
  url: string,
  docs: ReadonlyArray<{ name: string; token: string | null }>,
): Opened => {
  const socket = new HocuspocusProviderWebsocket({
    url,
    WebSocketPolyfill: WebSocket,
    delay: 100,
    minDelay: 100,
    maxDelay: 500,
  });
  const providers = docs.map(
    ({ name, token: t }) =>
      new HocuspocusProvider({ name, token: t, websocketProvider: socket, document: new Y.Doc() }),
  );
  for (const provider of providers) provider.attach();
  return {
    socket,
    providers,
    destroy() {
      for (const provider of providers) provider.destroy();
      socket.destroy();
    },
  };
};

const text = (provider: HocuspocusProvider): string => provider.document.getText('t').toString();

const metric = async (node: TestNode, series: string): Promise<number> =>
  sample(await scrape(node.url), series);

describe('multiplexed endpoint with the stock Hocuspocus provider', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ auth: { secret: SECRET }, maxDocsPerSocket: 3 });
  });
  after(() => node.close());

  it('syncs several documents over one shared socket with stock y-websocket clients', async () => {
    const t = await token(['mux/*'], ['read', 'write']);
    const before = await metric(node, 'stateweave_connections');
    const shared = openShared(node.wsUrl, [
      { name: 'mux/a', token: t },
      { name: 'mux/b', token: t },
      { name: 'mux/c', token: t },
    ]);
    const stock = await Promise.all(
      ['mux/a', 'mux/b', 'mux/c'].map((name) => stockClient(node.wsUrl, `${name}?token=${t}`)),
    );
    try {
      await waitFor(() => shared.providers.every((p) => p.isSynced), 'providers to sync');
      assert.ok(shared.providers.every((p) => p.authorizedScope === 'read-write'));
      // One socket for the three providers, plus one per stock client.
      assert.equal(await metric(node, 'stateweave_connections'), before + 1 + stock.length);
      shared.providers.forEach((p, i) => p.document.getText('t').insert(0, `hp-${i}`));
      stock.forEach((s, i) => s.doc.getText('t').insert(0, `yw-${i}|`));
      for (let i = 0; i < 3; i++) {
        const provider = shared.providers[i]!;
        const client = stock[i]!;
        await waitFor(
          () => text(provider) === client.doc.getText('t').toString() && text(provider).length > 0,
          `document ${i} to converge`,
        );
        assert.match(text(provider), new RegExp(`hp-${i}`));
        assert.match(text(provider), new RegExp(`yw-${i}\\|`));
      }
      // Every update was stored and answered with SyncStatus: nothing unsynced.
      await waitFor(() => shared.providers.every((p) => !p.hasUnsyncedChanges), 'sync statuses');
      // Presence crosses between the two protocols.
      shared.providers[0]!.setAwarenessField('user', 'hocuspocus');
      await waitFor(
        () =>
          [...stock[0]!.provider.awareness.getStates().values()].some(
            (s) => s.user === 'hocuspocus',
          ),
        'presence from the provider',
      );
    } finally {
      shared.destroy();
      for (const s of stock) s.destroy();
    }
  });

  it('refuses a bad token or a document without rights alone; the others keep syncing', async () => {
    const good = await token(['ok/*'], ['read', 'write']);
    const forged = `${good.slice(0, -4)}AAAA`;
    const shared = openShared(node.wsUrl, [
      { name: 'ok/doc', token: good },
      { name: 'secret/doc', token: good },
      { name: 'ok/forged', token: forged },
    ]);
    const failures = new Map<string, string>();
    shared.providers.forEach((p) =>
      p.on('authenticationFailed', ({ reason }: { reason: string }) =>
        failures.set(p.configuration.name, reason),
      ),
    );
    const stock = await stockClient(node.wsUrl, `ok/doc?token=${good}`);
    try {
      await waitFor(() => failures.size === 2, 'two refusals');
      assert.match(failures.get('secret/doc')!, /^FORBIDDEN: /);
      assert.match(failures.get('ok/forged')!, /^UNAUTHORIZED: /);
      const [ok] = shared.providers;
      await waitFor(() => ok!.isSynced, 'the permitted document to sync');
      ok!.document.getText('t').insert(0, 'still here');
      await waitFor(
        () => stock.doc.getText('t').toString() === 'still here',
        'the permitted document to keep syncing',
      );
      stock.doc.getText('t').insert(0, '> ');
      await waitFor(() => text(ok!) === '> still here', 'and back');
      assert.equal(shared.socket.status, 'connected');
    } finally {
      shared.destroy();
      stock.destroy();
    }
  });

  it('gives a read-only token the readonly scope and refuses its writes without closing', async () => {
    const reader = await token(['ro/doc'], ['read']);
    const writerToken = await token(['ro/doc'], ['read', 'write']);
    const writer = await stockClient(node.wsUrl, `ro/doc?token=${writerToken}`);
    writer.doc.getText('t').insert(0, 'by the writer');
    const shared = openShared(node.wsUrl, [{ name: 'ro/doc', token: reader }]);
    try {
      const [ro] = shared.providers;
      await waitFor(() => ro!.isSynced && text(ro!) === 'by the writer', 'the reader to sync');
      assert.equal(ro!.authorizedScope, 'readonly');
      ro!.document.getText('t').insert(0, 'not allowed ');
      writer.doc.getText('t').insert(0, 'more ');
      await waitFor(() => text(ro!).includes('more '), 'the reader to keep receiving');
      assert.equal(writer.doc.getText('t').toString().includes('not allowed'), false);
    } finally {
      shared.destroy();
      writer.destroy();
    }
  });

  it('releases a document on the node when its provider is destroyed', async () => {
    const t = await token(['rel/*'], ['read', 'write']);
    // The earlier tests' documents are released asynchronously, after their sockets close.
    await waitFor(
      async () => (await metric(node, 'stateweave_socket_documents')) === 0,
      'no document open',
    );
    const before = 0;
    const shared = openShared(node.wsUrl, [
      { name: 'rel/a', token: t },
      { name: 'rel/b', token: t },
    ]);
    try {
      await waitFor(() => shared.providers.every((p) => p.isSynced), 'providers to sync');
      assert.equal(await metric(node, 'stateweave_socket_documents'), before + 2);
      shared.providers[1]!.destroy();
      await waitFor(
        async () => (await metric(node, 'stateweave_socket_documents')) === before + 1,
        'the node to release rel/b',
      );
      assert.equal(shared.socket.status, 'connected');
    } finally {
      shared.destroy();
    }
  });

  it('refuses documents past maxDocsPerSocket with TOO_MANY_DOCUMENTS, alone', async () => {
    const t = await token(['lim/*'], ['read', 'write']);
    const shared = openShared(
      node.wsUrl,
      ['lim/1', 'lim/2', 'lim/3', 'lim/4'].map((name) => ({ name, token: t })),
    );
    const failures: string[] = [];
    shared.providers.forEach((p) =>
      p.on('authenticationFailed', ({ reason }: { reason: string }) => failures.push(reason)),
    );
    try {
      await waitFor(() => failures.length === 1, 'one refusal');
      assert.match(failures[0]!, /^TOO_MANY_DOCUMENTS: /);
      await waitFor(() => shared.providers.slice(0, 3).every((p) => p.isSynced), 'three synced');
    } finally {
      shared.destroy();
    }
  });
});

/** A raw client on the root path: sends frames, records frames and the close. */
const rawMux = async (url: string) => {
  const ws = new WebSocket(url);
  const frames: Uint8Array[] = [];
  let closed: { code: number; reason: string } | undefined;
  ws.on('message', (data: Buffer) => frames.push(new Uint8Array(data)));
  ws.on('close', (code, reason) => (closed = { code, reason: reason.toString() }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    closed: () => closed,
    send: (docName: string, body: Uint8Array) =>
      ws.send(prefixFrame(encodeDocPrefix(docName), body)),
  };
};

/** The document name and first message type of a frame. */
const head = (frame: Uint8Array): { doc: string; type: number; sub: number | undefined } => {
  const d = decoding.createDecoder(frame);
  const doc = decoding.readVarString(d);
  const type = decoding.readVarUint(d);
  return { doc, type, sub: decoding.hasContent(d) ? decoding.readVarUint(d) : undefined };
};

describe('multiplexed endpoint, raw frames', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  it('closes only the socket that sent a malformed frame', async () => {
    const good = await rawMux(`${node.wsUrl}/`);
    const bad = await rawMux(`${node.wsUrl}/`);
    good.send('raw/a', encodeAuthToken('', 'test'));
    await waitFor(
      () =>
        good.frames.some(
          (f) => head(f).type === MuxType.Auth && head(f).sub === AuthType.Authenticated,
        ),
      'authenticated',
    );
    bad.ws.send(Uint8Array.of(0x05, 0x61)); // a name of 5 bytes, 1 present
    await waitFor(() => bad.closed(), 'the bad socket to close');
    assert.equal(bad.closed()!.code, ERRORS.INVALID_FRAME.close);
    // The good socket still works: its step 1 is answered with step 2.
    const count = good.frames.length;
    good.send('raw/a', encodeSyncStep1(Y.encodeStateVector(new Y.Doc())));
    await waitFor(() => good.frames.length > count, 'an answer on the good socket');
    assert.equal(good.closed(), undefined);
    good.ws.close();
  });

  it('refuses an invalid document name alone', async () => {
    const client = await rawMux(`${node.wsUrl}/`);
    client.send('../etc', encodeAuthToken('', 'test'));
    client.send('fine', encodeAuthToken('', 'test'));
    await waitFor(() => client.frames.length >= 2, 'two answers');
    const answers = client.frames.map(head).filter((h) => h.type === MuxType.Auth);
    assert.deepEqual(
      answers.map((h) => [h.doc, h.sub]).sort(),
      [
        ['../etc', AuthType.PermissionDenied],
        ['fine', AuthType.Authenticated],
      ].sort(),
    );
    assert.equal(client.closed(), undefined);
    client.ws.close();
  });

  it('ends a deleted document alone with Close DOC_DELETED; the socket and its other document stay', async () => {
    const client = await rawMux(`${node.wsUrl}/`);
    client.send('del/gone', encodeAuthToken('', 'test'));
    client.send('del/kept', encodeAuthToken('', 'test'));
    const authenticated = (doc: string) =>
      client.frames.some((f) => {
        const h = head(f);
        return h.doc === doc && h.type === MuxType.Auth && h.sub === AuthType.Authenticated;
      });
    await waitFor(() => authenticated('del/gone') && authenticated('del/kept'), 'both open');
    const res = await fetch(`${node.url}/v1/docs/${encodeURIComponent('del/gone')}`, {
      method: 'DELETE',
    });
    assert.equal(res.status, 200);
    const closeFrame = await waitFor(
      () => client.frames.find((f) => head(f).doc === 'del/gone' && head(f).type === MuxType.Close),
      'a Close for the deleted document',
    );
    const d = decoding.createDecoder(closeFrame);
    decoding.readVarString(d);
    decoding.readVarUint(d);
    assert.match(decoding.readVarString(d), /^DOC_DELETED: /);
    const count = client.frames.length;
    client.send('del/kept', encodeSyncStep1(Y.encodeStateVector(new Y.Doc())));
    await waitFor(() => client.frames.length > count, 'the other document to answer');
    assert.equal(client.closed(), undefined);
    client.ws.close();
  });

  it('keeps serving a document path (y-websocket) next to the root path', async () => {
    const a = await stockClient(node.wsUrl, 'both/doc');
    const shared = openShared(node.wsUrl, [{ name: 'both/doc', token: null }]);
    try {
      a.doc.getText('t').insert(0, 'y');
      const [p] = shared.providers;
      await waitFor(() => text(p!) === 'y', 'the provider to receive');
    } finally {
      shared.destroy();
      a.destroy();
    }
  });
});

describe('multiplexed endpoint, idle sockets', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ heartbeatMs: 100 });
  });
  after(() => node.close());

  it('closes a socket that opens no document, and keeps one that does', async () => {
    const idle = await rawMux(`${node.wsUrl}/`);
    const busy = await rawMux(`${node.wsUrl}/`);
    busy.send('idle/doc', encodeAuthToken('', 'test'));
    await waitFor(() => idle.closed(), 'the idle socket to close', 3000);
    assert.equal(idle.closed()!.code, ERRORS.UNAUTHORIZED.close);
    assert.equal(busy.closed(), undefined);
    busy.ws.close();
  });
});
