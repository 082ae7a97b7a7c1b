/**
 * Access control end to end: tokens on the WebSocket (query parameter) and on
 * HTTP (Bearer), every right allowed with it and refused without it, and the
 * per-connection limits that come with an open internet.
 */
import { docName } from './helpers/doc-name.js';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import * as Y from 'yjs';
import * as jose from 'jose';
import { WebSocket } from 'ws';
import {
  decodeServerExtension,
  encodeAwareness,
  encodeAwarenessEntries,
  encodeToken,
} from '@stateweave/client/protocol';
import { mintToken } from '../src/auth/tokens.js';
import { ERRORS } from '../src/errors.js';
import { rawClient, stockClient, textUpdate } from './helpers/clients.js';
import { startNode, type TestNode } from './helpers/node.js';
import { errorCount } from './helpers/metrics.js';
import { sleep, waitFor, withTimeout } from './helpers/wait.js';

const SECRET = 'access-test-secret-0123456789-abcdefghij';

const token = (
  docs: string[],
  rights: Array<'read' | 'write' | 'invoke' | 'admin'>,
  ttl: string | number = '1h',
) => mintToken({ secret: SECRET, docs, rights, ttl });

/** Opens a socket and resolves with how it ended up: open, or closed with a code. */
const outcome = (
  url: string,
): Promise<
  { open: true; ws: WebSocket } | { open: false; code: number; reason: string; status?: number }
> =>
  new Promise((resolve) => {
    const ws = new WebSocket(url);
    let opened = false;
    ws.once('open', () => {
      opened = true;
      // A refused connection is closed right after the handshake; give it a moment.
      setTimeout(() => {
        if (ws.readyState === ws.OPEN) resolve({ open: true, ws });
      }, 150);
    });
    ws.once('close', (code, reason) => {
      if (opened || code !== 1006) resolve({ open: false, code, reason: reason.toString() });
    });
    ws.once('unexpected-response', (_req, res) => {
      resolve({
        open: false,
        code: 1006,
        reason: res.statusMessage ?? '',
        status: res.statusCode ?? 0,
      });
      ws.terminate();
    });
    ws.on('error', () => undefined);
  });

const closedWith = async (url: string, code: number) => {
  const result = await outcome(url);
  assert.equal(result.open, false, `expected ${url} to be refused`);
  if (!result.open) assert.equal(result.code, code, `close code for ${url}: ${result.reason}`);
  return result;
};

const http = async (
  node: TestNode,
  method: string,
  path: string,
  options: { token?: string; body?: Uint8Array; authorization?: string } = {},
) => {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  if (options.authorization) headers.authorization = options.authorization;
  if (options.body) headers['content-type'] = 'application/octet-stream';
  const res = await fetch(`${node.url}${path}`, {
    method,
    headers,
    ...(options.body ? { body: options.body } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    json: text ? (JSON.parse(text) as { error?: { code: string } }) : undefined,
  };
};

describe('tokens on a node with a secret', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ auth: { secret: SECRET } });
  });
  after(() => node.close());

  it('refuses a WebSocket without a token with UNAUTHORIZED', async () => {
    await closedWith(`${node.wsUrl}/notes`, ERRORS.UNAUTHORIZED.close);
  });

  it('refuses tampered, foreign, alg:none and expired tokens with their codes', async () => {
    const good = await token(['*'], ['read']);
    const [header, , signature] = good.split('.');
    const claims = Buffer.from(
      JSON.stringify({ docs: ['*'], rights: ['admin'], exp: 9999999999 }),
    ).toString('base64url');
    await closedWith(
      `${node.wsUrl}/notes?token=${header}.${claims}.${signature}`,
      ERRORS.UNAUTHORIZED.close,
    );
    const foreign = await mintToken({
      secret: 'some-other-secret-that-is-long-enough-123',
      docs: ['*'],
      rights: ['read'],
    });
    await closedWith(`${node.wsUrl}/notes?token=${foreign}`, ERRORS.UNAUTHORIZED.close);
    const none = new jose.UnsecuredJWT({ docs: ['*'], rights: ['read'] })
      .setExpirationTime('1h')
      .encode();
    await closedWith(`${node.wsUrl}/notes?token=${none}`, ERRORS.UNAUTHORIZED.close);
    const expired = await new jose.SignJWT({ docs: ['*'], rights: ['read'] })
      .setProtectedHeader({ alg: 'HS256' })
      .setExpirationTime(Math.floor(Date.now() / 1000) - 10)
      .sign(new TextEncoder().encode(SECRET));
    await closedWith(`${node.wsUrl}/notes?token=${expired}`, ERRORS.TOKEN_EXPIRED.close);
    assert.ok((await errorCount(node.url, 'UNAUTHORIZED')) >= 3);
  });

  it('refuses a token whose document pattern does not cover the document with FORBIDDEN', async () => {
    const t = await token(['team-42/*'], ['read', 'write']);
    await closedWith(`${node.wsUrl}/team-43/notes?token=${t}`, ERRORS.FORBIDDEN.close);
    await closedWith(`${node.wsUrl}/team-42?token=${t}`, ERRORS.FORBIDDEN.close);
    const ok = await outcome(`${node.wsUrl}/team-42/notes?token=${t}`);
    assert.equal(ok.open, true);
    if (ok.open) ok.ws.close();
  });

  it('lets a write token edit, and a read-only stock client receive but not write', async (t) => {
    const writer = await stockClient(
      node.wsUrl,
      `ro-doc?token=${await token(['ro-doc'], ['read', 'write'])}`,
    );
    t.after(() => writer.destroy());
    writer.doc.getText('t').insert(0, 'from the writer');
    const reader = await stockClient(
      node.wsUrl,
      `ro-doc?token=${await token(['ro-doc'], ['read'])}`,
    );
    // Destroyed however the test ends: a reconnecting client would keep the run alive.
    t.after(() => reader.destroy());
    await waitFor(
      () => reader.doc.getText('t').toString() === 'from the writer',
      'the reader to receive',
    );
    // The reader may send presence.
    reader.provider.awareness.setLocalStateField('user', 'reader');
    await waitFor(
      () => [...writer.provider.awareness.getStates().values()].some((s) => s.user === 'reader'),
      'presence',
    );
    // Its write is refused and it is told so: the socket closes with FORBIDDEN.
    const closed = new Promise<number>((resolve) =>
      reader.provider.ws!.addEventListener('close', (e) => resolve(e.code)),
    );
    reader.doc.getText('t').insert(0, 'sneaky ');
    assert.equal(
      await withTimeout(closed, 10_000, 'the node to close the read-only writer'),
      ERRORS.FORBIDDEN.close,
    );
    await sleep(100);
    assert.equal(writer.doc.getText('t').toString(), 'from the writer');
    assert.equal(
      node.server.hub.peek(docName('ro-doc'))?.doc.getText('t').toString(),
      'from the writer',
    );
  });

  it('tells a read-only client that speaks the extension with an error message and keeps it connected', async () => {
    const c = await rawClient(node.wsUrl, `ro-ext?token=${await token(['ro-ext'], ['read'])}`);
    const seq = c.sendUpdate(textUpdate(new Y.Doc(), 'refused'));
    await waitFor(
      () => c.frames.some((f) => decodeServerExtension(f)?.type === 'error'),
      'an error message',
    );
    const error = c.frames.map((f) => decodeServerExtension(f)).find((m) => m?.type === 'error');
    assert.deepEqual(error && error.type === 'error' ? error.code : undefined, 'FORBIDDEN');
    await waitFor(
      () => c.savedSeq() >= seq,
      'the refused message to be passed over in the saved count',
    );
    assert.equal(c.ws.readyState, c.ws.OPEN);
    const doc = node.server.hub.peek(docName('ro-ext'))?.doc;
    assert.equal(doc?.getText('text').toString(), '');
    c.close();
  });

  it('ends a session when its token expires, and an in-band refresh extends it', async () => {
    const short = await token(['exp-doc'], ['read', 'write'], 2);
    const a = await rawClient(node.wsUrl, `exp-doc?token=${short}`);
    const b = await rawClient(node.wsUrl, `exp-doc?token=${short}`);
    b.send(encodeToken(await token(['exp-doc'], ['read', 'write'], '1h')));
    const closedA = await a.closed();
    assert.equal(closedA.code, ERRORS.TOKEN_EXPIRED.close);
    assert.equal(b.ws.readyState, b.ws.OPEN, 'the refreshed session stays open');
    const seq = b.sendUpdate(textUpdate(new Y.Doc(), 'still here'));
    await waitFor(() => b.savedSeq() >= seq, 'a write after the refresh');
    b.close();
  });

  it('closes a session refreshed with a token for another document', async () => {
    const c = await rawClient(
      node.wsUrl,
      `refresh-doc?token=${await token(['refresh-doc'], ['read'])}`,
    );
    c.send(encodeToken(await token(['elsewhere'], ['read'])));
    assert.equal((await c.closed()).code, ERRORS.FORBIDDEN.close);
  });

  it('requires read for GET and write for POST over HTTP, with Bearer tokens', async () => {
    const seed = await rawClient(
      node.wsUrl,
      `http-doc?token=${await token(['http-doc'], ['write', 'read'])}`,
    );
    const seq = seed.sendUpdate(textUpdate(new Y.Doc(), 'hello'));
    await waitFor(() => seed.savedSeq() >= seq, 'seed saved');
    seed.close();
    assert.equal((await http(node, 'GET', '/v1/docs/http-doc')).status, 401);
    assert.equal(
      (await http(node, 'GET', '/v1/docs/http-doc', { authorization: 'Basic abc' })).status,
      401,
    );
    assert.equal((await http(node, 'GET', '/v1/docs/http-doc', { token: 'garbage' })).status, 401);
    assert.equal(
      (await http(node, 'GET', '/v1/docs/http-doc', { token: await token(['other'], ['read']) }))
        .status,
      403,
    );
    const read = await http(node, 'GET', '/v1/docs/http-doc', {
      token: await token(['http-doc'], ['read']),
    });
    assert.equal(read.status, 200);
    assert.deepEqual(read.json, { text: 'hello' });
    const update = textUpdate(new Y.Doc(), 'x');
    const denied = await http(node, 'POST', '/v1/docs/http-doc/updates', {
      token: await token(['http-doc'], ['read']),
      body: update,
    });
    assert.equal(denied.status, 403);
    assert.equal(denied.json?.error?.code, 'FORBIDDEN');
    const allowed = await http(node, 'POST', '/v1/docs/http-doc/updates', {
      token: await token(['http-doc'], ['write']),
      body: update,
    });
    assert.equal(allowed.status, 200);
    // Health and metrics stay open for probes and scrapers.
    assert.equal((await http(node, 'GET', '/healthz')).status, 200);
  });
});

describe('anonymous access when the operator allows it', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ auth: { secret: SECRET, anonymous: ['read'] } });
  });
  after(() => node.close());

  it('gives callers without a token only the configured rights', async () => {
    const ok = await outcome(`${node.wsUrl}/public`);
    assert.equal(ok.open, true);
    if (ok.open) ok.ws.close();
    const post = await http(node, 'POST', '/v1/docs/public/updates', {
      body: textUpdate(new Y.Doc(), 'x'),
    });
    assert.equal(post.status, 403);
    // A bad token is never downgraded to anonymous.
    await closedWith(`${node.wsUrl}/public?token=garbage`, ERRORS.UNAUTHORIZED.close);
  });
});

describe('limits', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({
      maxConnectionsPerIp: 4,
      maxMessagesPerSecond: 20,
      messageBurst: 40,
      maxHeaderBytes: 2048,
    });
  });
  after(() => node.close());

  it('refuses connections past maxConnectionsPerIp with 429 and admits again after one leaves', async () => {
    const open: WebSocket[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await outcome(`${node.wsUrl}/ip-${i}`);
      assert.equal(r.open, true);
      if (r.open) open.push(r.ws);
    }
    const refused = await outcome(`${node.wsUrl}/ip-extra`);
    assert.equal(refused.open, false);
    if (!refused.open) assert.equal(refused.status, 429);
    open.pop()!.close();
    await sleep(100);
    const again = await outcome(`${node.wsUrl}/ip-again`);
    assert.equal(again.open, true);
    if (again.open) open.push(again.ws);
    for (const ws of open) ws.close();
    await sleep(100);
  });

  it('closes a connection that floods messages with RATE_LIMITED; others keep syncing', async () => {
    const a = await stockClient(node.wsUrl, 'rate');
    const b = await stockClient(node.wsUrl, 'rate');
    const flooder = await rawClient(node.wsUrl, 'rate');
    const awareness = (clock: number) =>
      encodeAwareness(encodeAwarenessEntries([{ clientId: 424242, clock, state: { n: clock } }]));
    for (let i = 1; i <= 200 && flooder.ws.readyState === flooder.ws.OPEN; i++)
      flooder.send(awareness(i));
    assert.equal((await flooder.closed()).code, ERRORS.RATE_LIMITED.close);
    a.doc.getText('t').insert(0, 'still fine');
    await waitFor(
      () => b.doc.getText('t').toString() === 'still fine',
      'the others to keep syncing',
    );
    a.destroy();
    b.destroy();
    await sleep(100);
  });

  it('refuses an oversized request head (bytes before authentication) with 431', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        `${node.url}/healthz`,
        { headers: { 'x-padding': 'x'.repeat(4096) } },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 431);
  });
});

describe('presence cannot be spoofed', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode();
  });
  after(() => node.close());

  it('drops awareness entries for a client id another connection owns', async () => {
    const victim = await stockClient(node.wsUrl, 'spoof');
    const watcher = await stockClient(node.wsUrl, 'spoof');
    victim.provider.awareness.setLocalStateField('name', 'victim');
    const id = victim.doc.clientID;
    await waitFor(
      () => watcher.provider.awareness.getStates().get(id)?.name === 'victim',
      'victim presence',
    );
    const attacker = await rawClient(node.wsUrl, 'spoof');
    const clock = (victim.provider.awareness.meta.get(id)?.clock ?? 0) + 10;
    attacker.send(
      encodeAwareness(
        encodeAwarenessEntries([{ clientId: id, clock, state: { name: 'mallory' } }]),
      ),
    );
    attacker.send(
      encodeAwareness(encodeAwarenessEntries([{ clientId: id, clock: clock + 1, state: null }])),
    );
    await sleep(200);
    assert.equal(watcher.provider.awareness.getStates().get(id)?.name, 'victim');
    assert.equal(
      node.server.hub.peek(docName('spoof'))?.awareness.getStates().get(id)?.name,
      'victim',
    );
    attacker.close();
    victim.destroy();
    watcher.destroy();
  });
});
