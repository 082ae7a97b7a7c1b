/**
 * A document name is checked once, where it enters the node: an HTTP route, a
 * WebSocket URL, a frame from a peer. A name that fails the rule is refused
 * there with its documented answer (400 INVALID_DOC_NAME; a peer's request
 * answered INVALID_DOC_NAME; a peer's frame without an answer refused and
 * logged), no room is opened for it, and the node keeps serving everything else,
 * the peer that sent it too.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { WebSocket } from 'ws';
import * as Y from 'yjs';
import { createPeerAuth } from '../src/cluster/peer-auth.js';
import { encodePeerFrame } from '../src/cluster/peer-codec.js';
import { encodeChannelFrame } from '../src/cluster/channel-codec.js';
import { encodePresenceReport } from '../src/cluster/presence-codec.js';
import {
  decodeRpcFrame,
  encodeRpcFrame,
  isRpcFrame,
  type RpcFrame,
  type RpcRequest,
} from '../src/cluster/rpc-codec.js';
import { validateNodeId as nid } from '../src/node-id.js';
import { stockClient } from './helpers/clients.js';
import { PEER_SECRET } from './helpers/cluster.js';
import { docName } from './helpers/doc-name.js';
import { startNode, type TestNode } from './helpers/node.js';
import { tryUpgrade } from './helpers/upgrade.js';
import { waitFor } from './helpers/wait.js';

/** A valid name and an invalid one of the same length: frames are built valid, then patched. */
const VALID = 'x/ab';
const INVALID = 'x/..';

/** `frame` with the bytes of VALID replaced by INVALID (a frame no encoder would make). */
const withInvalidName = (frame: Uint8Array): Uint8Array => {
  const at = Buffer.from(frame).indexOf(VALID);
  assert.ok(at >= 0, 'the frame carries the name');
  const out = Uint8Array.from(frame);
  out.set(Buffer.from(INVALID), at);
  return out;
};

describe('document names at the edges', () => {
  let node: TestNode;
  const logLines: Array<{ msg?: string; reason?: string }> = [];

  before(async () => {
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n'))
          if (line) logLines.push(JSON.parse(line) as { msg?: string; reason?: string });
        done();
      },
    });
    node = await startNode({
      nodeId: 'edge',
      peers: [],
      peerSecret: PEER_SECRET,
      replicationFactor: 1,
      // Presence placement reads peers' presence reports, which name documents too.
      placement: 'presence',
      region: 'eu',
      logger: pino({ level: 'warn' }, sink),
    });
  });
  after(() => node.close());

  /** Two stock clients of a valid document sync both ways, and HTTP reads it: the node still serves. */
  const stillServes = async (name: string): Promise<void> => {
    const a = await stockClient(node.wsUrl, name);
    const b = await stockClient(node.wsUrl, name);
    try {
      a.doc.getText('text').insert(0, 'a');
      await waitFor(() => b.doc.getText('text').toString() === 'a', `b to see a on ${name}`);
      b.doc.getText('text').insert(1, 'b');
      await waitFor(() => a.doc.getText('text').toString() === 'ab', `a to see b on ${name}`);
      const res = await fetch(`${node.url}/v1/docs/${name}`);
      assert.equal(res.status, 200);
      assert.deepEqual(await res.json(), { text: 'ab' });
    } finally {
      a.destroy();
      b.destroy();
    }
  };

  it('refuses a bad name in an HTTP route with 400 INVALID_DOC_NAME', async () => {
    const before = node.server.hub.openDocuments;
    // Names a URL keeps as they are (a client would resolve `x/..` before sending it).
    for (const name of ['a//b', 'trailing/', 'bad%20name', 'a%00b', 'x'.repeat(256)]) {
      const res = await fetch(`${node.url}/v1/docs/${name}`);
      assert.equal(res.status, 400, name);
      const body = (await res.json()) as { error: { code: string } };
      assert.equal(body.error.code, 'INVALID_DOC_NAME', name);
    }
    assert.equal(node.server.hub.openDocuments, before, 'no room opened');
    await stillServes('edges/http');
  });

  it('refuses a bad name in a WebSocket URL with 400 INVALID_DOC_NAME before the handshake', async () => {
    const before = node.server.hub.openDocuments;
    for (const name of ['a//b', 'trailing/', 'bad%20name', 'a%00b'])
      assert.deepEqual(
        await tryUpgrade(`${node.wsUrl}/${name}`),
        { open: false, status: 400, code: 'INVALID_DOC_NAME' },
        name,
      );
    assert.equal(node.server.hub.openDocuments, before, 'no room opened');
    await stillServes('edges/ws');
  });

  it("refuses a bad name in a peer's frames, answers its request INVALID_DOC_NAME and keeps the link", async () => {
    const dialer = createPeerAuth({ nodeId: nid('p9'), secret: PEER_SECRET });
    const upgrade = await tryUpgrade(`${node.wsUrl}/_stateweave/peer`, {
      'x-stateweave-peer': dialer.dial('edge').header,
    });
    assert.ok(upgrade.open, 'the peer link opens');
    const { ws } = upgrade;
    const replies = new Map<number, RpcFrame>();
    ws.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data);
      if (!isRpcFrame(bytes)) return;
      const frame = decodeRpcFrame(bytes);
      if (frame.kind !== 'request') replies.set(frame.id, frame);
    });
    let nextId = 1;
    const ask = async (request: RpcRequest): Promise<RpcFrame> => {
      const id = nextId++;
      ws.send(encodeRpcFrame({ kind: 'request', id, request }));
      await waitFor(() => replies.has(id), `the answer to ${request.type} #${id}`, 5000);
      return replies.get(id)!;
    };
    const refusals = (msg: string): number =>
      logLines.filter((l) => l.msg === msg && l.reason?.includes('..')).length;

    try {
      const before = node.server.hub.openDocuments;
      const stateVector = Y.encodeStateVector(new Y.Doc());
      const message = Uint8Array.of(0, 0, 1, 0); // a sync step 1 of an empty document

      // Frames without an answer: a mesh frame, a channel frame, a presence report.
      ws.send(
        withInvalidName(encodePeerFrame({ type: 'subscribe', doc: docName(VALID), after: 0 })),
      );
      ws.send(withInvalidName(encodePeerFrame({ type: 'doc', doc: docName(VALID), message })));
      await waitFor(() => refusals('peer frame refused') === 2, 'both mesh frames refused', 5000);
      ws.send(withInvalidName(encodeChannelFrame({ type: 'ask', doc: docName(VALID), message })));
      await waitFor(() => refusals('peer frame refused') === 3, 'the channel frame refused', 5000);
      ws.send(
        withInvalidName(
          encodePresenceReport({ region: 'eu', users: new Map([[docName(VALID), 1]]) }),
        ),
      );
      await waitFor(() => refusals('presence report refused') === 1, 'the report refused', 5000);

      // A request is answered with the name's error code.
      const refused = await ask({ type: 'state-vector', doc: INVALID });
      assert.equal(refused.kind, 'error');
      assert.equal(refused.kind === 'error' && refused.code, 'INVALID_DOC_NAME');
      const diff = await ask({ type: 'diff', doc: INVALID, stateVector });
      assert.equal(diff.kind === 'error' && diff.code, 'INVALID_DOC_NAME');
      // A tombstone's name is part of its bytes: the whole request is refused as malformed.
      const tombstone = { doc: docName(VALID), stateVector, deletedAt: Date.now(), by: 'p9' };
      ws.send(
        withInvalidName(
          encodeRpcFrame({
            kind: 'request',
            id: 999,
            request: { type: 'tombstones', tombstones: [tombstone] },
          }),
        ),
      );
      await waitFor(() => refusals('rpc frame refused') === 1, 'the tombstones refused', 5000);
      assert.equal(replies.has(999), false, 'a malformed request has no answer');

      assert.equal(node.server.hub.openDocuments, before, 'no room opened for a bad name');
      assert.equal(ws.readyState, WebSocket.OPEN, 'the link stays up');
      // The same peer is still served: a valid request on the same link is answered.
      const served = await ask({ type: 'state-vector', doc: 'edges/peer' });
      assert.equal(served.kind, 'reply', JSON.stringify(served));
    } finally {
      ws.terminate();
    }
    await stillServes('edges/peer-after');
  });
});
