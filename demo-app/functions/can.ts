/**
 * Low-latency lookup: may `subject` do `action`? A read-only query over an ACL
 * document (map `grants`: subject → list of actions, `*` for all), answered from
 * this node's replica.
 */
import { defineFunction } from '@stateweave/server/define';
import { object, str } from './validate.js';

export default defineFunction({
  name: 'can',
  kind: 'query',
  input: object((v) => ({
    acl: str(v, 'acl'),
    subject: str(v, 'subject'),
    action: str(v, 'action'),
  })),
  doc: (input) => `acl/${input.acl}`,
  handler({ doc }, { subject, action }) {
    const actions = doc.getMap<string[]>('grants').get(subject) ?? [];
    return { allowed: actions.includes(action) || actions.includes('*') };
  },
});
