import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createExpiryQueue, type Expiring } from '../src/transport/expiry-queue.js';
import { prng } from './helpers/fuzz.js';

interface Item extends Expiring {
  readonly name: string;
}
const item = (name: string): Item => ({ name, expiryIndex: -1 });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('expiry queue (token deadlines on one timer)', () => {
  it('expires each item once, in deadline order, not before its time', async () => {
    const fired: Array<{ name: string; late: number }> = [];
    const at = new Map<string, number>();
    const queue = createExpiryQueue<Item>((x) =>
      fired.push({ name: x.name, late: Date.now() - at.get(x.name)! }),
    );
    const start = Date.now();
    for (const [name, delay] of [
      ['c', 60],
      ['a', 20],
      ['b', 40],
    ] as const) {
      at.set(name, start + delay);
      queue.set(item(name), start + delay);
    }
    assert.equal(queue.size, 3);
    await sleep(150);
    assert.deepEqual(
      fired.map((f) => f.name),
      ['a', 'b', 'c'],
    );
    for (const f of fired) assert.ok(f.late >= 0, `${f.name} fired ${-f.late} ms early`);
    assert.equal(queue.size, 0);
  });

  it('moves an item on set, forgets it on delete, and may be changed from the callback', async () => {
    const fired: string[] = [];
    const late = item('late');
    const queue = createExpiryQueue<Item>((x) => {
      fired.push(x.name);
      if (x.name === 'first') queue.set(late, Date.now() + 10); // re-armed from inside a firing
    });
    const now = Date.now();
    const gone = item('gone');
    const moved = item('moved');
    queue.set(item('first'), now + 10);
    queue.set(gone, now + 5);
    queue.set(moved, now + 5);
    queue.set(moved, now + 40);
    queue.delete(gone);
    queue.delete(gone); // twice: a no-op
    assert.equal(gone.expiryIndex, -1);
    await sleep(100);
    assert.deepEqual(fired, ['first', 'late', 'moved']);
    assert.equal(queue.size, 0);
  });

  it('keeps heap order through random sets, moves and deletes (seeded)', async () => {
    const seed = 0x5eed;
    const random = prng(seed);
    let clock = 0;
    const fired: Item[] = [];
    const queue = createExpiryQueue<Item>(
      (x) => fired.push(x),
      () => clock,
    );
    const expected = new Map<Item, number>();
    const all = Array.from({ length: 300 }, (_, i) => item(`i${i}`));
    for (let step = 0; step < 3000; step++) {
      const x = all[Math.floor(random() * all.length)]!;
      if (random() < 0.25) {
        queue.delete(x);
        expected.delete(x);
      } else {
        const at = 1 + Math.floor(random() * 30);
        queue.set(x, at);
        expected.set(x, at);
      }
      assert.equal(queue.size, expected.size, `size after step ${step} (seed ${seed})`);
    }
    clock = 1e9; // everything is due when the one timer (≤ 30 ms) fires
    await sleep(80);
    assert.equal(fired.length, expected.size, `seed ${seed}`);
    assert.deepEqual(new Set(fired), new Set(expected.keys()));
    const times = fired.map((x) => expected.get(x)!);
    assert.deepEqual(
      times,
      [...times].sort((a, b) => a - b),
      `fired in deadline order (seed ${seed})`,
    );
    for (const x of all) assert.equal(x.expiryIndex, -1);
  });
});
