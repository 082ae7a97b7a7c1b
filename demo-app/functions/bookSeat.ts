/**
 * A check-then-act invariant: a show never sells more seats than its capacity.
 * `owner` consistency: invocations on one show run one at a time on its owner
 * node, so the check and the write cannot interleave with another booking.
 */
import { defineFunction } from '@stateweave/server/define';
import * as z from 'zod/mini';

const name = z.string().check(z.minLength(1), z.maxLength(200));

export default defineFunction({
  name: 'bookSeat',
  consistency: 'owner',
  input: z.object({
    show: name,
    customer: name,
    /** Set by the first booking of a show. @default 10 */
    capacity: z.optional(z.number().check(z.int(), z.positive(), z.maximum(100_000))),
  }),
  doc: (input) => `shows/${input.show}`,
  handler({ doc }, { customer, capacity = 10 }) {
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
