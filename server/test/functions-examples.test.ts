/** The demo's functions (demo-app/functions), loaded with --functions semantics on one node. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startNode, type TestNode } from './helpers/node.js';
import { stockClient } from './helpers/clients.js';
import { sleep, waitFor } from './helpers/wait.js';
import { DEMO_FUNCTIONS, errorCode, invoke } from './helpers/functions.js';

describe('demo functions', () => {
  let node: TestNode;
  before(async () => {
    node = await startNode({ functionsDir: DEMO_FUNCTIONS });
  });
  after(async () => {
    await node.close();
  });

  it('never oversells a show under 100 concurrent bookings (bookSeat, owner)', async () => {
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        invoke(node.url, 'bookSeat', { show: 'premiere', customer: `c${i}`, capacity: 10 }),
      ),
    );
    assert.deepEqual(
      results.map((r) => r.status).filter((s) => s !== 200),
      [],
    );
    const booked = results.map((r) => r.body as { ok: boolean; seat?: number }).filter((b) => b.ok);
    assert.equal(booked.length, 10);
    assert.deepEqual(
      booked.map((b) => b.seat).sort((a, b) => a! - b!),
      [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
    );
    const doc = (await (await fetch(`${node.url}/v1/docs/shows/premiere`)).json()) as {
      bookings: Record<string, number>;
    };
    assert.equal(Object.keys(doc.bookings).length, 10);
  });

  it('counts unique visitors per page (trackVisit) and refuses bad input with 400', async () => {
    for (const visitor of ['ann', 'bob', 'ann', 'cid', 'bob'])
      await invoke(node.url, 'trackVisit', { page: 'home', visitor });
    assert.deepEqual(
      (await invoke(node.url, 'trackVisit', { page: 'home', visitor: 'ann' })).body,
      { unique: 3 },
    );
    const bad = await invoke(node.url, 'trackVisit', { page: 'home' });
    assert.equal(bad.status, 400);
    assert.equal(errorCode(bad), 'INVALID_INPUT');
    assert.match((bad.body as { error: { message: string } }).error.message, /visitor/);
  });

  it('pairs sensor readings within the window, and a duplicate converges (joinSensors)', async () => {
    const send = (id: string, sensor: 'a' | 'b', t: number) =>
      invoke(node.url, 'joinSensors', { stream: 'plant', id, sensor, t, value: 1, windowMs: 200 });
    await send('a1', 'a', 0);
    await send('b1', 'b', 150);
    await send('b2', 'b', 5000);
    await send('a2', 'a', 4900);
    const dup = await send('a1', 'a', 0);
    assert.deepEqual(dup.body, { pairs: 2, made: 0 });
    const doc = (await (await fetch(`${node.url}/v1/docs/sensors/plant`)).json()) as {
      pairs: Record<string, unknown>;
    };
    assert.deepEqual(Object.keys(doc.pairs).sort(), ['a1|b1', 'a2|b2']);
  });

  it('counts visitors and joined readings per stable window (visitorWindows, sensorWindows)', async () => {
    // Start well inside a 10 s window, so every write below falls into it.
    const left = 10_000 - (Date.now() % 10_000);
    if (left < 3000) await sleep(left + 50);
    const t0 = Date.now();
    for (const visitor of ['ann', 'bob', 'cid'])
      await invoke(node.url, 'trackVisit', { page: 'windowed', visitor });
    const send = (id: string, sensor: 'a' | 'b') =>
      invoke(node.url, 'joinSensors', { stream: 'windowed', id, sensor, t: t0, value: 2 });
    await send('a1', 'a');
    await send('b1', 'b');
    const key = String(Math.floor(t0 / 10_000) * 10_000);
    const windowsOf = async (doc: string) =>
      (
        (await (await fetch(`${node.url}/v1/docs/${doc}`)).json()) as {
          windows?: Record<string, Record<string, unknown>>;
        }
      ).windows ?? {};
    // Windows are 10 s: the first closes at most 10 s from now.
    await waitFor(
      async () => key in (await windowsOf('analytics/windowed')),
      'the visitor window to fire',
      30_000,
      200,
    );
    assert.deepEqual((await windowsOf('analytics/windowed'))[key], {
      start: Number(key),
      end: Number(key) + 10_000,
      newVisitors: 3,
      total: 3,
      corrections: 0,
    });
    await waitFor(
      async () => key in (await windowsOf('sensors/windowed')),
      'the sensor window to fire',
      30_000,
      200,
    );
    assert.deepEqual((await windowsOf('sensors/windowed'))[key], {
      start: Number(key),
      end: Number(key) + 10_000,
      readings: 2,
      pairs: 1,
      meanSum: 4,
    });
  });

  it('answers permission lookups from the ACL document (can, query)', async () => {
    const admin = await stockClient(node.wsUrl, 'acl/team');
    admin.doc.getMap('grants').set('ann', ['read', 'write']);
    admin.doc.getMap('grants').set('root', ['*']);
    const ask = async (subject: string, action: string) =>
      (
        (await invoke(node.url, 'can', { acl: 'team', subject, action })).body as {
          allowed: boolean;
        }
      ).allowed;
    await waitFor(async () => (await ask('ann', 'write')) === true, 'the ACL to reach the node');
    assert.equal(await ask('ann', 'delete'), false);
    assert.equal(await ask('root', 'delete'), true);
    assert.equal(await ask('nobody', 'read'), false);
    admin.destroy();
  });
});
