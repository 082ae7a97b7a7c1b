/**
 * Reconnect pacing: delays grow exponentially up to a cap, with jitter from an
 * injected random source, so that many clients spread out and a test can
 * compute exactly which delays to expect.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { createClient, type ConnectionStatus } from '@stateweave/client';
import { createBackoff } from '../dist/src/backoff.js';
import { deadUrl, seededRandom, waitFor } from './helpers.js';

describe('backoff delays', () => {
  it('doubles from baseMs up to maxMs; jitter takes off at most the jitter fraction', () => {
    const low = createBackoff({ baseMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0 });
    const high = createBackoff({ baseMs: 100, maxMs: 1000, jitter: 0.5, random: () => 0.999999 });
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 60].map((n) => low.delayMs(n)),
      [50, 100, 200, 400, 500, 500, 500],
    );
    assert.deepEqual(
      [0, 1, 2, 3, 4, 5, 60].map((n) => high.delayMs(n)),
      [100, 200, 400, 800, 1000, 1000, 1000],
    );
    const none = createBackoff({ baseMs: 100, maxMs: 1000, jitter: 0, random: () => 0.7 });
    assert.deepEqual(
      [0, 1, 2].map((n) => none.delayMs(n)),
      [100, 200, 400],
    );
    assert.equal(createBackoff({ baseMs: 100, random: () => 0.5 }).promptMs(), 50);
  });

  it('spreads a thousand clients over the window instead of one instant', () => {
    const random = seededRandom(42);
    const backoff = createBackoff({ baseMs: 1000, maxMs: 30_000, random });
    const delays = Array.from({ length: 1000 }, () => backoff.delayMs(0));
    assert.ok(Math.min(...delays) >= 500 && Math.max(...delays) <= 1000);
    // No 10 ms slot of the 500 ms window gets more than 5% of the clients.
    const slots = new Map<number, number>();
    for (const d of delays) slots.set(Math.floor(d / 10), (slots.get(Math.floor(d / 10)) ?? 0) + 1);
    assert.ok(Math.max(...slots.values()) <= 50, `busiest slot: ${Math.max(...slots.values())}`);
    assert.ok(slots.size >= 45, `${slots.size} slots used`);
  });
});

describe('reconnecting to a dead node', () => {
  it('spaces attempts out by the backoff delays drawn from the injected random source', async () => {
    const url = await deadUrl();
    const attempts: number[] = [];
    class CountingWebSocket extends WebSocket {
      constructor(url: string) {
        attempts.push(performance.now());
        super(url);
      }
    }
    const draws: number[] = [];
    const random = seededRandom(7);
    const backoffOptions = {
      baseMs: 80,
      maxMs: 640,
      jitter: 0.5,
      random: () => {
        const r = random();
        draws.push(r);
        return r;
      },
    };
    const client = createClient({ url, WebSocket: CountingWebSocket, backoff: backoffOptions });
    const handle = client.open('backoff');
    const statuses: ConnectionStatus[] = [];
    handle.on('status', (s) => statuses.push(s));

    // 0 + 80 + 160 + 320 + 640 + 640 ms at most: 7 attempts within ~2 s.
    await waitFor(() => attempts.length >= 7, '7 connection attempts', 6000);
    await client.destroy();

    // Replay the same draws through the same formula: these are the delays the client chose.
    const replay = createBackoff({
      ...backoffOptions,
      random: (() => {
        let i = 0;
        return () => draws[i++]!;
      })(),
    });
    const expected = attempts.slice(1, 7).map((_, n) => replay.delayMs(n));
    const gaps = attempts.slice(1, 7).map((t, i) => t - attempts[i]!);
    for (const [i, gap] of gaps.entries()) {
      // A timer never fires early (1 ms of rounding aside); it may fire late on a busy machine.
      assert.ok(
        gap >= expected[i]! - 2,
        `gap ${i} was ${gap.toFixed(1)} ms, the backoff chose ${expected[i]} ms`,
      );
      assert.ok(
        gap <= expected[i]! + 250,
        `gap ${i} was ${gap.toFixed(1)} ms, the backoff chose ${expected[i]} ms`,
      );
    }
    // The chosen delays double until the cap, each within [cap/2, cap].
    const caps = [80, 160, 320, 640, 640, 640];
    for (const [i, d] of expected.entries())
      assert.ok(
        d >= caps[i]! / 2 && d <= caps[i]!,
        `delay ${i}: ${d} outside [${caps[i]! / 2}, ${caps[i]}]`,
      );
    assert.ok(gaps[3]! > gaps[0]! * 2, 'later attempts are spaced further apart');

    assert.ok(statuses.includes('disconnected') && statuses.includes('connecting'));
    assert.ok(!statuses.includes('connected'));
    assert.equal(handle.status, 'disconnected');
  });

  it('stops trying once closed', async () => {
    const url = await deadUrl();
    let attempts = 0;
    class CountingWebSocket extends WebSocket {
      constructor(url: string) {
        attempts++;
        super(url);
      }
    }
    const client = createClient({
      url,
      WebSocket: CountingWebSocket,
      backoff: { baseMs: 20, maxMs: 40 },
    });
    const handle = client.open('backoff-close');
    await waitFor(() => attempts >= 2, 'two attempts');
    await handle.close();
    const after = attempts;
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(attempts, after, 'no attempt after close');
    await client.destroy();
  });
});
