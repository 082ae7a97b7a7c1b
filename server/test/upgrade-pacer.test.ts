/**
 * The upgrade pacer (a reconnect storm must not hold health checks behind it):
 * at most `perTurn` upgrades run per turn of the event loop, the rest in later
 * turns in arrival order, and other work queued meanwhile runs in between.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createUpgradePacer } from '../src/transport/upgrade-pacer.js';
import { waitFor } from './helpers/wait.js';

describe('upgrade pacer', () => {
  it('runs a burst a share per turn, in order, and lets other work in between', async () => {
    const pacer = createUpgradePacer(4);
    const ran: number[] = [];
    const between: number[] = [];
    for (let i = 0; i < 10; i++) pacer.admit(() => ran.push(i));
    assert.deepEqual(ran, [0, 1, 2, 3], 'this turn: its share only');
    assert.equal(pacer.waiting, 6);
    // Other work queued now (as a health check would be) runs after the next share
    // and before the one after it: the burst never holds the loop for all of itself.
    setImmediate(() => between.push(ran.length));
    await waitFor(() => ran.length === 10, 'the burst to finish', 2000);
    assert.deepEqual(ran, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'in arrival order');
    assert.deepEqual(between, [8], 'the other work ran between the second and third shares');
    assert.equal(pacer.waiting, 0);
  });

  it('runs at once again once a turn has passed', async () => {
    const pacer = createUpgradePacer(2);
    const ran: string[] = [];
    pacer.admit(() => ran.push('a'));
    pacer.admit(() => ran.push('b'));
    pacer.admit(() => ran.push('c'));
    assert.deepEqual(ran, ['a', 'b']);
    await waitFor(() => ran.length === 3, 'the third upgrade', 2000);
    await new Promise((resolve) => setImmediate(resolve));
    pacer.admit(() => ran.push('d'));
    assert.deepEqual(ran, ['a', 'b', 'c', 'd'], 'a fresh turn has a fresh share');
  });
});
