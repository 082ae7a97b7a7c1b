/** Streaming aggregation: unique visitors per page. Monotonic (a keyed set-add), so `local`. */
import { defineFunction } from '@stateweave/server/define';
import * as z from 'zod/mini';

const name = z.string().check(z.minLength(1), z.maxLength(200));

export default defineFunction({
  name: 'trackVisit',
  input: z.object({ page: name, visitor: name }),
  doc: (input) => `analytics/${input.page}`,
  handler({ doc, now }, { visitor }) {
    const visitors = doc.getMap<number>('visitors');
    if (!visitors.has(visitor)) visitors.set(visitor, now());
    return { unique: visitors.size };
  },
});
