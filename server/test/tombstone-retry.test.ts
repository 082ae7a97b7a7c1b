/**
 * A failed link-up exchange of tombstones (cluster/tombstones.ts) is tried again
 * with backoff while the peer stays a member, at once when the peer comes up
 * again meanwhile, and not at all once it has left (its next link-up sends). The
 * registry runs on a real store; the peer is a scripted `request`, because what
 * is tested is when the registry asks, not how a backplane carries it
 * (cluster-tombstones.test.ts runs the exchange between node processes).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as Y from 'yjs';
import type { Hub } from '../src/hub/hub.js';
import { encodeTombstone } from '../src/hub/tombstone.js';
import { validateNodeId, type NodeId } from '../src/node-id.js';
import type { RpcReply, RpcRequest } from '../src/cluster/rpc-codec.js';
import { createTombstones, type Tombstones } from '../src/cluster/tombstones.js';
import { createMemoryStore } from '../src/storage/level-store.js';
import { docName } from './helpers/doc-name.js';
import { silentLogger } from './helpers/node.js';
import { waitFor } from './helpers/wait.js';

const PEER = validateNodeId('n2');

interface Asked {
  readonly at: number;
  readonly tombstones: number;
}

/** A registry holding one stored tombstone; `answer` decides each request's fate. */
const registry = async (
  answer: (n: number) => RpcReply | Error,
  members: () => readonly NodeId[],
): Promise<{ tombstones: Tombstones; asked: Asked[] }> => {
  const store = await createMemoryStore();
  const doc = docName('notes/gone');
  const source = new Y.Doc();
  source.getText('t').insert(0, 'deleted');
  const tombstone = {
    doc,
    stateVector: Y.encodeStateVector(source),
    deletedAt: Date.now(),
    by: 'user:test',
  };
  await store.remove(doc, { writers: ['user:test'], tombstone: encodeTombstone(tombstone) });
  const asked: Asked[] = [];
  const request = (_to: NodeId, req: RpcRequest): Promise<RpcReply> => {
    assert.equal(req.type, 'tombstones');
    asked.push({
      at: Date.now(),
      tombstones: req.type === 'tombstones' ? req.tombstones.length : -1,
    });
    const reply = answer(asked.length);
    return reply instanceof Error ? Promise.reject(reply) : Promise.resolve(reply);
  };
  const tombstones = createTombstones({
    store: () => store,
    hub: (): Hub => {
      throw new Error('no hub in this test');
    },
    peers: () => ({ others: members, request }),
    logger: silentLogger(),
    ttlMs: 24 * 3600 * 1000,
    timeoutMs: 1000,
  });
  await tombstones.load();
  assert.equal(tombstones.size, 1);
  return { tombstones, asked };
};

const busy = new Error('request timed out');
const done: RpcReply = { type: 'done' };

describe('tombstones at link-up when the exchange fails', { timeout: 60_000 }, () => {
  it('tries again with backoff while the peer is a member, and sends once it answers', async () => {
    // Two failures, then the peer answers: the cursor ask (no cursor: a new peer) and the send.
    const { tombstones, asked } = await registry(
      (n) => (n <= 2 ? busy : done),
      () => [PEER],
    );
    try {
      tombstones.onPeerUp(PEER);
      await waitFor(
        () => asked.some((a) => a.tombstones === 1),
        'the tombstone to be sent',
        15_000,
      );
      assert.deepEqual(
        asked.map((a) => a.tombstones),
        [0, 0, 0, 1],
        'two failed asks, a third, then the send',
      );
      // Backoff with equal jitter: 0.5–1 s before the first retry, 1–2 s before the second.
      assert.ok(asked[1]!.at - asked[0]!.at >= 450, `waited ${asked[1]!.at - asked[0]!.at} ms`);
      assert.ok(asked[2]!.at - asked[1]!.at >= 950, `waited ${asked[2]!.at - asked[1]!.at} ms`);
    } finally {
      tombstones.close();
    }
  });

  it('runs at once when the peer comes up again during the wait', async () => {
    const { tombstones, asked } = await registry(
      (n) => (n === 1 ? busy : done),
      () => [PEER],
    );
    try {
      tombstones.onPeerUp(PEER);
      await waitFor(() => asked.length === 1, 'the first ask', 5000);
      // Let the failure land and the retry timer (≥ 500 ms) be set, then the peer is back.
      await new Promise((resolve) => setTimeout(resolve, 100));
      const upAt = Date.now();
      tombstones.onPeerUp(PEER);
      await waitFor(() => asked.some((a) => a.tombstones === 1), 'the tombstone to be sent', 5000);
      assert.ok(asked[1]!.at - upAt < 450, `asked ${asked[1]!.at - upAt} ms after the link-up`);
      assert.deepEqual(
        asked.map((a) => a.tombstones),
        [0, 0, 1],
      );
    } finally {
      tombstones.close();
    }
  });

  it('does not retry for a peer that left; its next link-up sends', async () => {
    let members: readonly NodeId[] = [PEER];
    const { tombstones, asked } = await registry(
      (n) => {
        if (n === 1) members = [];
        return n === 1 ? busy : done;
      },
      () => members,
    );
    try {
      tombstones.onPeerUp(PEER);
      await waitFor(() => asked.length === 1, 'the first ask', 5000);
      // Past the longest first retry delay (1 s): nothing more was asked.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(asked.length, 1, 'no retry for a node that is not a member');
      members = [PEER];
      tombstones.onPeerUp(PEER);
      await waitFor(() => asked.some((a) => a.tombstones === 1), 'the tombstone to be sent', 5000);
    } finally {
      tombstones.close();
    }
  });
});
