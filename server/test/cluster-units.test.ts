/** In-process units of the cluster layer: placement, peer authentication, peer frames, backoff. */
import { docName } from './helpers/doc-name.js';
import { roomOptions } from './helpers/room.js';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createBackoff } from '../src/cluster/backoff.js';
import { checkClusterSettings } from '../src/cluster/cluster-config.js';
import { parseServeConfig, toServerOptions } from '../src/config.js';
import { createHmac } from 'node:crypto';
import { createPeerAuth } from '../src/cluster/peer-auth.js';
import { createSeenNonces } from '../src/cluster/seen-nonces.js';
import { freshTimestamp, peerMac, sameMac } from '../src/cluster/peer-mac.js';
import { decodePeerFrame, encodePeerDoc, encodePeerLeave } from '../src/cluster/peer-codec.js';
import { createPlacement, rank } from '../src/cluster/placement.js';
import { encodeSyncStep1 } from '@stateweave/client/protocol';
import * as Y from 'yjs';
import { Room } from '../src/hub/room.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import { nextConnectionId } from '../src/connection-id.js';
import { validateNodeId as nid } from '../src/node-id.js';

const docs = Array.from({ length: 2000 }, (_, i) => docName(`doc-${i}`));

describe('placement (rendezvous hashing)', () => {
  it('gives every node the same homes for a document, whatever order it lists members in', () => {
    const a = createPlacement({
      selfId: nid('n1'),
      replicationFactor: 2,
      members: () => [nid('n2'), nid('n3'), nid('n4')],
    });
    const b = createPlacement({
      selfId: nid('n3'),
      replicationFactor: 2,
      members: () => [nid('n4'), nid('n1'), nid('n2')],
    });
    for (const doc of docs.slice(0, 200)) assert.deepEqual(a.homesFor(doc), b.homesFor(doc));
  });

  it('caps the replication factor at the cluster size', () => {
    const p = createPlacement({
      selfId: nid('n1'),
      replicationFactor: 3,
      members: () => [nid('n2')],
    });
    assert.deepEqual(p.homesFor(docName('x')).sort(), ['n1', 'n2']);
    assert.equal(p.isHome(docName('x')), true);
  });

  it("spreads documents evenly and moves only the departed node's share when one leaves", () => {
    const members = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const counts = new Map<string, number>();
    for (const doc of docs) {
      const first = rank(doc, members)[0]!;
      counts.set(first, (counts.get(first) ?? 0) + 1);
    }
    for (const n of members)
      assert.ok(
        Math.abs((counts.get(n) ?? 0) - docs.length / 5) < docs.length / 10,
        `${n}: ${counts.get(n)}`,
      );
    let moved = 0;
    for (const doc of docs) {
      const before = rank(doc, members)[0];
      const after = rank(
        doc,
        members.filter((n) => n !== 'n5'),
      )[0];
      if (before !== after) {
        moved++;
        assert.equal(before, 'n5', 'only documents whose primary left move');
      }
    }
    assert.equal(moved, counts.get('n5'));
  });

  it('makes the first reachable home the primary', () => {
    const p = createPlacement({
      selfId: nid('n9'),
      replicationFactor: 3,
      members: () => [nid('n1'), nid('n2'), nid('n3'), nid('n4')],
    });
    const doc = docs.find((d) => !p.isHome(d))!;
    const homes = p.homesFor(doc);
    assert.equal(
      p.primaryFor(doc, () => true),
      homes[0],
    );
    assert.equal(
      p.primaryFor(doc, (id) => id !== homes[0]),
      homes[1],
    );
    assert.equal(
      p.primaryFor(doc, () => false),
      undefined,
    );
  });
});

describe('peer authentication', () => {
  const secret = 'shared-secret-0123456789';
  it('accepts a dial signed with the shared secret and verifies the answer', () => {
    const a = createPeerAuth({ nodeId: nid('a'), secret });
    const b = createPeerAuth({ nodeId: nid('b'), secret });
    const { header, nonce } = a.dial('b');
    const verified = b.verifyDial(header);
    assert.equal(verified.nodeId, 'a');
    assert.equal(verified.to, 'b');
    assert.equal(a.verifyAck(b.ack(verified.nonce), nonce), 'b');
  });

  it('accepts a dial once: a replay of the same header is refused, a fresh dial is not', () => {
    const a = createPeerAuth({ nodeId: nid('a'), secret });
    const b = createPeerAuth({ nodeId: nid('b'), secret });
    const { header } = a.dial('b');
    b.verifyDial(header);
    assert.throws(() => b.verifyDial(header), { code: 'UNAUTHORIZED', reason: 'replayed' });
    assert.equal(b.verifyDial(a.dial('b').header).nodeId, 'a');
  });

  it('binds a dial to its receiver: the receiver named is in the signed bytes', () => {
    const a = createPeerAuth({ nodeId: nid('a'), secret });
    const c = createPeerAuth({ nodeId: nid('c'), secret });
    // c sees it was meant for b (and must refuse it); naming c instead breaks the MAC.
    assert.equal(c.verifyDial(a.dial('b').header).to, 'b');
    const forged = a.dial('b').header.replace('.b.', '.c.');
    assert.throws(() => c.verifyDial(forged), { code: 'UNAUTHORIZED', reason: 'invalid' });
  });

  it('refuses another secret, a stale timestamp, a replayed answer, and itself', () => {
    const a = createPeerAuth({ nodeId: nid('a'), secret });
    const b = createPeerAuth({ nodeId: nid('b'), secret: 'another-secret-0123456789' });
    assert.throws(() => b.verifyDial(a.dial('b').header), { code: 'UNAUTHORIZED' });
    const old = createPeerAuth({ nodeId: nid('a'), secret, now: () => Date.now() - 120_000 });
    assert.throws(
      () => createPeerAuth({ nodeId: nid('b'), secret }).verifyDial(old.dial('b').header),
      {
        code: 'UNAUTHORIZED',
      },
    );
    const good = createPeerAuth({ nodeId: nid('b'), secret });
    const first = a.dial('b');
    const second = a.dial('b');
    assert.throws(() => a.verifyAck(good.ack(first.nonce), second.nonce), { code: 'UNAUTHORIZED' });
    assert.throws(
      () => createPeerAuth({ nodeId: nid('a'), secret }).verifyDial(a.dial('a').header),
      {
        code: 'UNAUTHORIZED',
      },
    );
  });
});

describe('seen nonces (each signed request accepted once)', () => {
  it('refuses a nonce a second time, per sender, and forgets it once out of the window', () => {
    let now = 1_000_000;
    const seen = createSeenNonces({ windowMs: 60_000, now: () => now });
    assert.equal(seen.claim('a', 'x', now), true);
    assert.equal(seen.claim('a', 'x', now), false, 'a replay');
    assert.equal(seen.claim('b', 'x', now), true, 'another sender, same nonce');
    now += 61_000;
    assert.equal(seen.claim('c', 'y', now), true);
    assert.equal(seen.size, 1, 'the expired entries were dropped');
  });

  it('stays within its cap and never accepts a replay of a nonce it forgot early', () => {
    const now = 1_000_000;
    const seen = createSeenNonces({ windowMs: 60_000, maxEntries: 100, now: () => now });
    for (let i = 0; i < 1000; i++) assert.equal(seen.claim('a', `n${i}`, now - 1000 + i), true);
    assert.equal(seen.size, 100);
    // n0…n899 were forgotten to keep the cap: replaying any of them is refused all the same.
    for (let i = 0; i < 900; i += 37) assert.equal(seen.claim('a', `n${i}`, now - 1000 + i), false);
    assert.equal(seen.claim('a', 'n999', now - 1), false, 'a remembered one');
    assert.equal(seen.claim('a', 'fresh', now), true, 'a newer request still passes');
  });
});

describe('peer MACs (peer-mac.ts, shared by peer links, forwarded calls and registry requests)', () => {
  const secret = 'shared-secret-0123456789';
  it('signs the scheme and the parts, newline-joined, so the signatures of the first versions still verify', () => {
    const bytes = (text: string) => createHmac('sha256', secret).update(text).digest('base64url');
    assert.equal(
      peerMac(secret, 'forward', ['bump', 'key-1', '{"n":1}']),
      bytes('forward\nbump\nkey-1\n{"n":1}'),
    );
    assert.equal(
      peerMac(secret, 'stateweave-peer-v1', ['dial', 'a', '1', 'n']),
      bytes('stateweave-peer-v1\ndial\na\n1\nn'),
    );
    // Schemes keep signatures apart even over the same parts.
    assert.notEqual(
      peerMac(secret, 'forward', ['x']),
      peerMac(secret, 'stateweave-registry-v1', ['x']),
    );
    assert.notEqual(
      peerMac(secret, 'forward', ['x']),
      peerMac('another-secret-0123456789', 'forward', ['x']),
    );
  });

  it('compares MACs exactly and timestamps against the clock', () => {
    const mac = peerMac(secret, 'forward', ['x']);
    assert.equal(sameMac(mac, mac), true);
    assert.equal(sameMac(mac, mac.slice(1)), false);
    assert.equal(sameMac(mac, `${mac.slice(0, -1)}${mac.endsWith('A') ? 'B' : 'A'}`), false);
    assert.equal(freshTimestamp('1000', 61_000, 60_000), true);
    assert.equal(freshTimestamp('1000', 61_001, 60_000), false);
    assert.equal(freshTimestamp('62000', 1_000, 60_000), false, 'from the future too');
    assert.equal(freshTimestamp('1e3', 1_000, 60_000), false, 'digits only');
  });
});

describe('peer frames', () => {
  it('round-trips a document message and a leave, and refuses trailing bytes', () => {
    const message = encodeSyncStep1(new Uint8Array([0]));
    assert.deepEqual(decodePeerFrame(encodePeerDoc(docName('a/b'), message)), {
      type: 'doc',
      doc: 'a/b',
      message,
    });
    assert.deepEqual(decodePeerFrame(encodePeerLeave(docName('a/b'))), {
      type: 'leave',
      doc: 'a/b',
    });
    assert.throws(() => decodePeerFrame(new Uint8Array([...encodePeerLeave(docName('x')), 0])), {
      name: 'ProtocolError',
    });
    assert.throws(() => decodePeerFrame(new Uint8Array([0, 0])), { name: 'ProtocolError' });
  });
});

describe('reconnect backoff', () => {
  it('grows exponentially with jitter up to the cap and resets', () => {
    const backoff = createBackoff(100, 3000, () => 1);
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map(() => backoff.next()),
      [100, 200, 400, 800, 1600, 3000, 3000],
    );
    backoff.reset();
    assert.equal(backoff.next(), 100);
    const low = createBackoff(100, 3000, () => 0);
    assert.equal(low.next(), 50);
  });
});

describe('room fan-out with peer origins', () => {
  it('never sends a peer its own update back, but sends it to every other subscriber', async () => {
    const store = await createMemoryStore();
    const room = new Room(docName('echo'), roomOptions(store));
    await room.load();
    const got = { a: 0, b: 0, client: 0 };
    const [peerA, peerB, clientId] = [nextConnectionId(), nextConnectionId(), nextConnectionId()];
    room.subscribe({
      connId: peerA,
      origin: { kind: 'peer', nodeId: nid('a') },
      send: () => got.a++,
    });
    room.subscribe({
      connId: peerB,
      origin: { kind: 'peer', nodeId: nid('b') },
      send: () => got.b++,
    });
    room.subscribe({ connId: clientId, send: () => got.client++ });
    const source = new Y.Doc();
    source.getText('t').insert(0, 'hi');
    await room.applyUpdate(Y.encodeStateAsUpdate(source), { kind: 'peer', nodeId: nid('a') });
    assert.deepEqual(got, { a: 0, b: 1, client: 1 });
    source.getText('t').insert(0, '!');
    await room.applyUpdate(Y.encodeStateAsUpdate(source), {
      kind: 'client',
      connId: clientId,
    });
    assert.deepEqual(got, { a: 1, b: 2, client: 1 });
    await room.flush();
    room.destroy();
    await store.close();
  });
});

describe('cluster settings', () => {
  const base = {
    nodeId: 'n1',
    peers: ['ws://10.0.0.2:1234/'],
    peerSecret: 'peer-secret-0123456789',
    replicationFactor: 3,
    authSecret: undefined,
  };

  it('reads --node-id, --peers, --peer-secret and --replication-factor (and their environment variables)', () => {
    const options = toServerOptions(
      parseServeConfig(
        ['--node-id', 'n1', '--peers', 'ws://a:1, ws://b:2', '--replication-factor', '2'],
        { STATEWEAVE_PEER_SECRET: 's' },
      ),
      () => '',
    );
    assert.equal(options.nodeId, 'n1');
    assert.deepEqual(options.peers, ['ws://a:1', 'ws://b:2']);
    assert.equal(options.peerSecret, 's');
    assert.equal(options.replicationFactor, 2);
  });

  it('accepts a valid cluster and normalises peer URLs', () => {
    assert.deepEqual(checkClusterSettings(base), ['ws://10.0.0.2:1234']);
    assert.deepEqual(
      checkClusterSettings({ ...base, peers: [], peerSecret: undefined, nodeId: 'standalone' }),
      [],
    );
  });

  it('refuses what would make an insecure or ambiguous cluster', () => {
    assert.throws(() => checkClusterSettings({ ...base, peerSecret: undefined }), /peer-secret/);
    assert.throws(
      () => checkClusterSettings({ ...base, peerSecret: 'short' }),
      /at least 16 bytes/,
    );
    assert.throws(
      () => checkClusterSettings({ ...base, authSecret: base.peerSecret }),
      /differ from the client token secret/,
    );
    assert.throws(() => checkClusterSettings({ ...base, nodeId: 'standalone' }), /node-id/);
    assert.throws(() => checkClusterSettings({ ...base, nodeId: 'has space' }), /node id/);
    assert.throws(() => checkClusterSettings({ ...base, peers: ['http://x:1'] }), /ws:\/\//);
    assert.throws(() => checkClusterSettings({ ...base, peers: ['not a url'] }), /not a URL/);
  });
});
