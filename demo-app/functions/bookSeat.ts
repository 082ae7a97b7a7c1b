/**
 * A check-then-act invariant: a show never sells more seats than its capacity.
 * `owner` consistency: invocations on one show run one at a time on its owner
 * node, so the check and the write cannot interleave with another booking.
 */
import { defineFunction } from '@stateweave/server/define';
import { object, str } from './validate.js';

export default defineFunction({
  name: 'bookSeat',
  consistency: 'owner',
  input: object((v) => ({
    show: str(v, 'show'),
    customer: str(v, 'customer'),
    capacity: typeof v.capacity === 'number' && v.capacity > 0 ? Math.floor(v.capacity) : 10,
  })),
  doc: (input) => `shows/${input.show}`,
  handler({ doc }, { customer, capacity }) {
    const show = doc.getMap<number>('show');
    if (!show.has('capacity')) show.set('capacity', capacity);
    const seats = doc.getMap<number>('bookings');
    const mine = seats.get(customer);
    if (mine !== undefined) return { ok: true, seat: mine };
    if (seats.size >= show.get('capacity')!) return { ok: false, reason: 'sold out' };
    const seat = seats.size + 1;
    seats.set(customer, seat);
    return { ok: true, seat };
  },
});
