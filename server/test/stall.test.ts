/**
 * Rate limits across a stall of the node's event loop: messages a client sent
 * at a legal rate while the node could not read them arrive in one instant
 * when it resumes, and must not close the client as RATE_LIMITED. Unit tests
 * of the bucket and the stall clock, and a node process paused with SIGSTOP.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import WebSocket from 'ws';
import * as Y from 'yjs';
import * as encoding from 'lib0/encoding';
import * as syncProtocol from 'y-protocols/sync';
import { createTokenBucket } from '../src/limits/token-bucket.js';
import { stalledMs } from '../src/limits/stall-clock.js';
import { spawnNode, stopChild, tempDir } from './helpers/node.js';

describe('token bucket across a stall', () => {
  it('a stall of S seconds lets the client spend what it earned in S, once', () => {
    let t = 1000;
    const bucket = createTokenBucket(10, 5, t, 0);
    let allowed = 0;
    for (let i = 0; i < 5; i++) if (bucket.take(1, t, 0)) allowed++;
    assert.equal(allowed, 5, 'the burst');
    // The node stalled for 3 s: the client earned 30 tokens meanwhile.
    t += 3000;
    allowed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take(1, t, 3000)) allowed++;
    assert.equal(allowed, 30, 'what the client earned while the node stalled');
  });

  it('quiet time without a stall earns no more than the burst', () => {
    let t = 1000;
    const bucket = createTokenBucket(10, 5, t, 0);
    t += 3000;
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take(1, t, 0)) allowed++;
    assert.equal(allowed, 5);
  });

  it('credit from a stall left unspent expires', () => {
    let t = 1000;
    const bucket = createTokenBucket(10, 5, t, 0);
    t += 3000;
    assert.equal(bucket.take(1, t, 3000), true); // 34 left, above the burst
    t += 5000; // long after the stall: back to the burst
    let allowed = 0;
    for (let i = 0; i < 100; i++) if (bucket.take(1, t, 3000)) allowed++;
    assert.equal(allowed, 5);
  });

  it('the stall clock counts a blocked event loop, also before its timer runs', async () => {
    const before = stalledMs();
    await new Promise((r) => setTimeout(r, 150)); // the clock's timer is running
    const start = performance.now();
    while (performance.now() - start < 800); // block the loop for 0.8 s
    const during = stalledMs(); // the timer has not run yet
    assert.ok(during - before >= 400, `counted ${during - before} ms of an 800 ms block`);
    await new Promise((r) => setTimeout(r, 250));
    assert.ok(stalledMs() >= during, 'never decreases');
  });
});

describe('a node paused with SIGSTOP', () => {
  const dirs: Array<{ remove(): Promise<void> }> = [];
  after(async () => {
    for (const d of dirs) await d.remove();
  });

  /** Sync step 1 frames: cheap, legal, and each one counts as a message. */
  const step1 = (): Buffer => {
    const enc = encoding.createEncoder();
    encoding.writeVarUint(enc, 0);
    syncProtocol.writeSyncStep1(enc, new Y.Doc());
    return Buffer.from(encoding.toUint8Array(enc));
  };

  const open = async (wsUrl: string, doc: string) => {
    const ws = new WebSocket(`${wsUrl}/${doc}`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return { ws, closed, code: undefined as number | undefined };
  };

  it('keeps a client that sent at a legal rate while the node was stopped, and still limits a flood', async () => {
    const dir = await tempDir();
    dirs.push(dir);
    // 20 messages/s with a burst of 20: a 3 s stop queues 3 s × 15 = 45 messages.
    const node = await spawnNode(dir.path, [
      '--max-messages-per-second',
      '20',
      '--message-burst',
      '20',
    ]);
    try {
      const polite = await open(node.wsUrl, 'stall-polite');
      let politeCode: number | undefined;
      void polite.closed.then((c) => (politeCode = c));
      const frame = step1();
      const sender = setInterval(() => {
        if (polite.ws.readyState === WebSocket.OPEN) polite.ws.send(frame);
      }, 1000 / 15);
      try {
        await new Promise((r) => setTimeout(r, 500));
        node.child.kill('SIGSTOP');
        await new Promise((r) => setTimeout(r, 3000));
        node.child.kill('SIGCONT');
        // Long enough for the node to read everything queued, and then some.
        await new Promise((r) => setTimeout(r, 2000));
      } finally {
        clearInterval(sender);
      }
      assert.equal(politeCode, undefined, `the polite client was closed with ${politeCode}`);
      assert.equal(polite.ws.readyState, WebSocket.OPEN);

      // The limit still holds: 200 messages at once, no stall, is a flood.
      const flood = await open(node.wsUrl, 'stall-flood');
      for (let i = 0; i < 200; i++) flood.ws.send(frame);
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([
        flood.closed,
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve('still open after 10 s'), 10_000);
        }),
      ]);
      clearTimeout(timer);
      assert.equal(code, 4420, 'RATE_LIMITED');
      polite.ws.close();
    } finally {
      node.child.kill('SIGCONT');
      await stopChild(node);
    }
  });
});
