/**
 * This node's own appends to a pushed stream (own-appends.ts): the reply to an
 * append moves the position past the entry, in stream order even when replies
 * and other nodes' entries interleave; pushes wait only while an append is in
 * flight, and not longer than the wait; a stream forgotten meanwhile ignores
 * the replies of appends sent before.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createOwnAppends } from '../src/cluster/redis/own-appends.js';
import type { PushedEntry } from '../src/cluster/redis/stream-push.js';
import { sleep } from './helpers/wait.js';

const push = (previous: string, id: string): PushedEntry => ({
  previous,
  entry: { id, fields: new Map() },
});

describe('own appends of a pushed stream', () => {
  it('moves the position past answered entries that follow it, and only those', () => {
    const own = createOwnAppends(1000);
    const first = own.start('s');
    const second = own.start('s');
    // Answered out of order of the stream: the second append's entry follows another node's.
    own.settle(second, { previous: '5-0', id: '6-0' });
    own.settle(first, { previous: '1-0', id: '2-0' });
    assert.equal(own.pass('s', '1-0'), '2-0', 'up to its own entry, not past 5-0');
    assert.equal(own.pass('s', '2-0'), '2-0');
    // Another node's entries 3-0 … 5-0 came (pushed or read): then its own 6-0 follows.
    assert.equal(own.pass('s', '5-0'), '6-0');
  });

  it('drops answered entries a read already passed', () => {
    const own = createOwnAppends(1000);
    own.settle(own.start('s'), { previous: '1-0', id: '2-0' });
    assert.equal(own.pass('s', '3-0'), '3-0');
    assert.equal(own.pass('s', '1-0'), '1-0', 'the link 1-0 → 2-0 is gone');
  });

  it('holds pushes while an append is in flight, in order, and hands them back', () => {
    const own = createOwnAppends(1000);
    assert.equal(own.waits('s'), false, 'nothing in flight');
    const ticket = own.start('s');
    assert.equal(own.waits('s'), true);
    own.hold('s', [push('2-0', '3-0')]);
    own.hold('s', [push('3-0', '4-0')]);
    assert.equal(own.holds('s'), true);
    own.settle(ticket, { previous: '1-0', id: '2-0' });
    assert.equal(own.waits('s'), false, 'no append in flight any more');
    assert.deepEqual(
      own.take('s').map((p) => p.entry.id),
      ['3-0', '4-0'],
    );
    assert.equal(own.holds('s'), false);
  });

  it('does not hold pushes longer than the wait', async () => {
    const own = createOwnAppends(50);
    own.start('s'); // its reply never comes
    own.hold('s', [push('2-0', '3-0')]);
    assert.deepEqual(own.overdue(), []);
    await sleep(80);
    assert.equal(own.waits('s'), false);
    assert.deepEqual(own.overdue(), ['s']);
  });

  it('ignores the reply of an append sent before the stream was forgotten', () => {
    const own = createOwnAppends(1000);
    const before = own.start('s');
    own.forget('s');
    const after = own.start('s');
    own.settle(before, { previous: '1-0', id: '2-0' });
    assert.equal(own.pass('s', '1-0'), '1-0');
    assert.equal(own.waits('s'), true, 'the later append is still in flight');
    own.settle(after, { previous: '1-0', id: '3-0' });
    assert.equal(own.pass('s', '1-0'), '3-0');
  });
});
