/**
 * Low-latency lookup: may `subject` do `action`? A read-only query over an ACL
 * document (map `grants`: subject → list of actions, `*` for all), answered from
 * this node's replica.
 */
import { defineFunction } from '@stateweave/server/define';
import * as z from 'zod/mini';

const name = z.string().check(z.minLength(1), z.maxLength(200));

export default defineFunction({
  name: 'can',
  kind: 'query',
  input: z.object({ acl: name, subject: name, action: name }),
  doc: (input) => `acl/${input.acl}`,
  handler({ doc }, { subject, action }) {
    const actions = doc.getMap<string[]>('grants').get(subject) ?? [];
    return { allowed: actions.includes(action) || actions.includes('*') };
  },
});
