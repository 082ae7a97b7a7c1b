/** Streaming aggregation: unique visitors per page. Monotonic (a keyed set-add), so `local`. */
import { defineFunction } from '@stateweave/server/define';
import { object, str } from './validate.js';

export default defineFunction({
  name: 'trackVisit',
  input: object((v) => ({ page: str(v, 'page'), visitor: str(v, 'visitor') })),
  doc: (input) => `analytics/${input.page}`,
  handler({ doc, now }, { visitor }) {
    const visitors = doc.getMap<number>('visitors');
    if (!visitors.has(visitor)) visitors.set(visitor, now());
    return { unique: visitors.size };
  },
});
